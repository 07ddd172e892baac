# OpenJPH: HTJ2K decode/encode, Cython module _htj2k. OpenJPH is C++, so this
# module enables CXX for its glue when a C++ compiler exists.
# Discovery: OpenJPH's CMake package, then pkg-config's openjph, then off.
# -DDICOMFAST_OPENJPH=OFF builds without it; HTJ2K frames then decode with
# OpenJPEG when that is built, and HTJ2K encoding raises CodecUnavailableError.
option(DICOMFAST_OPENJPH "Build the HTJ2K codec on OpenJPH" ON)

set(_df_openjph "")
if(NOT DICOMFAST_OPENJPH)
  message(STATUS "dicomfast: OpenJPH: switched off (DICOMFAST_OPENJPH=OFF)")
else()
  include(CheckLanguage)
  check_language(CXX)
  if(NOT CMAKE_CXX_COMPILER)
    message(STATUS "dicomfast: OpenJPH: no C++ compiler for its glue")
  else()
    enable_language(CXX)
    if(NOT CMAKE_CXX_STANDARD)
      set(CMAKE_CXX_STANDARD 11)
    endif()
    find_package(openjph CONFIG QUIET)
    if(TARGET openjph::openjph)
      set(_df_openjph openjph::openjph)
    elseif(TARGET openjph)
      set(_df_openjph openjph)
    endif()
    if(_df_openjph)
      message(STATUS "dicomfast: OpenJPH: ${openjph_VERSION} from CMake package ${openjph_DIR}")
    else()
      message(STATUS "dicomfast: OpenJPH: no CMake package found")
    endif()

    if(NOT _df_openjph AND NOT PKG_CONFIG_FOUND)
      message(STATUS "dicomfast: OpenJPH: pkg-config is not available")
    elseif(NOT _df_openjph)
      pkg_check_modules(DF_OPENJPH QUIET IMPORTED_TARGET openjph)
      if(DF_OPENJPH_FOUND AND DF_OPENJPH_LINK_LIBRARIES)
        set(_df_openjph PkgConfig::DF_OPENJPH)
        message(STATUS "dicomfast: OpenJPH: ${DF_OPENJPH_VERSION} from pkg-config (${DF_OPENJPH_LINK_LIBRARIES})")
      elseif(DF_OPENJPH_FOUND)
        # Debian's 0.9 openjph.pc has empty Libs and Cflags; find the library
        # and headers it describes where pkg-config's directories point, then
        # in the compiler's standard places.
        message(STATUS "dicomfast: OpenJPH: pkg-config's openjph.pc names no library; looking for libopenjph")
        find_library(DF_OPENJPH_LIBRARY NAMES openjph HINTS ${DF_OPENJPH_LIBDIR} ${DF_OPENJPH_LIBRARY_DIRS})
        find_path(DF_OPENJPH_INCLUDE_DIR openjph/ojph_codestream.h
                  HINTS ${DF_OPENJPH_INCLUDEDIR} ${DF_OPENJPH_INCLUDE_DIRS})
        if(DF_OPENJPH_LIBRARY AND DF_OPENJPH_INCLUDE_DIR)
          add_library(dicomfast_openjph UNKNOWN IMPORTED)
          set_target_properties(dicomfast_openjph PROPERTIES
            IMPORTED_LOCATION "${DF_OPENJPH_LIBRARY}"
            INTERFACE_INCLUDE_DIRECTORIES "${DF_OPENJPH_INCLUDE_DIR}")
          set(_df_openjph dicomfast_openjph)
          message(STATUS "dicomfast: OpenJPH: ${DF_OPENJPH_LIBRARY}, headers in ${DF_OPENJPH_INCLUDE_DIR}")
        else()
          message(STATUS "dicomfast: OpenJPH: library '${DF_OPENJPH_LIBRARY}' / headers '${DF_OPENJPH_INCLUDE_DIR}' not found")
        endif()
      else()
        message(STATUS "dicomfast: OpenJPH: pkg-config finds no openjph")
      endif()
    endif()
  endif()
endif()

if(_df_openjph)
  list(APPEND DF_OPTIONAL_SOURCES ${CMAKE_SOURCE_DIR}/csrc/src/glue/df_htj2k_openjph.cpp)
  list(APPEND DF_OPTIONAL_LIBS ${_df_openjph})
  list(APPEND DF_OPTIONAL_DEFS DF_HAVE_OPENJPH=1)
else()
  message(STATUS "dicomfast: OpenJPH: off; HTJ2K via OpenJPH (_htj2k) will not be built")
  list(APPEND DF_SKIP_PYX _htj2k)
endif()
