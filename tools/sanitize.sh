#!/usr/bin/env bash
# Build dicomfast with AddressSanitizer + UndefinedBehaviorSanitizer and run the tests
# that reach the C core under it. Fails on any test failure and on any sanitizer report.
#
#   bash tools/sanitize.sh                 # build + the default subset below
#   bash tools/sanitize.sh tests/test_rle.py -k foo   # build + these pytest args instead
#
# Environment:
#   PYTHON     the interpreter whose site-packages hold the test dependencies
#              (default: .venv/bin/python as made by tools/dev.sh, else python3)
#   ASAN_DIR   where the build, the instrumented package and the run venv go
#              (default: build/asan)
#   SANITIZE_SKIP_BUILD=1   reuse an existing build
#
# How: the package is built by pip/scikit-build-core with
# -Ccmake.define.DICOMFAST_SANITIZE=address,undefined (CMakeLists.txt) into
# $ASAN_DIR/site. A throwaway venv ($ASAN_DIR/venv) sees first $ASAN_DIR/site, then
# the test dependencies of $PYTHON (through a .pth file, so an editable install of
# dicomfast there is not picked up). CPython itself is not instrumented, so the gcc
# ASan and UBSan runtimes are preloaded; leak detection is off because the
# interpreter keeps its allocations until exit.
#
# The default subset is every test module that drives the C core (scanner, codecs,
# encapsulation, byte swapping, deflate, PDU framing) plus the hostile-input and fuzz
# regression families; the network, service and interop suites spend their time in
# Python and in peers, not in C. It takes about 4-5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
ASAN_DIR=${ASAN_DIR:-build/asan}
case "$ASAN_DIR" in /*) ;; *) ASAN_DIR="$ROOT/$ASAN_DIR" ;; esac
SITE="$ASAN_DIR/site"
VENV="$ASAN_DIR/venv"
LOGDIR="$ASAN_DIR/logs"

DEFAULT_TESTS=(
  tests/test_scan.py tests/test_malformed.py tests/test_read_corpus.py
  tests/test_read_sources.py tests/test_encaps.py tests/test_rle.py tests/test_ljpeg.py
  tests/test_j2k.py tests/test_jpeg.py tests/test_jpegls.py tests/test_deflate.py
  tests/test_pixels_native.py tests/test_net_pdu.py tests/test_net_durable.py tests/test_charset.py
  tests/test_hostile.py tests/test_fuzz_regressions.py
  tests/test_deid.py tests/test_split_read.py  # the native header rewrite (_deid.pyx)
)

# ---- build ---------------------------------------------------------------------------
if [ "${SANITIZE_SKIP_BUILD:-0}" != 1 ] || [ ! -d "$SITE/dicomfast" ]; then
  echo "sanitize: building dicomfast with ASan+UBSan into $SITE"
  rm -rf "$SITE"
  mkdir -p "$ASAN_DIR"
  # No build isolation when the interpreter already has the build requirements
  # (offline-friendly); otherwise pip fetches them.
  iso=()
  if "$PYTHON" -c "import scikit_build_core, Cython" 2>/dev/null; then iso=(--no-build-isolation); fi
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  "$PYTHON" -m pip install -q --no-deps "${iso[@]}" --target "$SITE" \
    -Cbuild-dir="$ASAN_DIR/cmake" \
    -Ccmake.build-type=RelWithDebInfo \
    -Ccmake.define.DICOMFAST_SANITIZE=address,undefined \
    "$ROOT"
fi

# ---- the run venv --------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  base=$("$PYTHON" -c "import sys; print(getattr(sys, '_base_executable', sys.executable))")
  "$base" -m venv --without-pip "$VENV"
fi
venv_site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
{
  echo "$SITE"
  # Every site-packages folder $PYTHON sees (its venv's and, with
  # --system-site-packages, the base interpreter's), in its order.
  "$PYTHON" -c "import sys; print('\n'.join(dict.fromkeys(p for p in sys.path if p.endswith(('site-packages', 'dist-packages')))))"
} > "$venv_site/dicomfast_sanitize.pth"
PY="$VENV/bin/python"

# ---- sanitizer runtimes --------------------------------------------------------------
libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$libasan" "$libubsan"; do
  [ -e "$lib" ] || { echo "sanitize: $lib not found (gcc's sanitizer runtimes missing)" >&2; exit 2; }
done
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
export LD_PRELOAD="$libasan $libubsan"
# halt_on_error: the first report fails the process; log_path keeps the reports of
# child processes (tests spawn interpreters) where the check below finds them.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1:log_path=$LOGDIR/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGDIR/ubsan"
# Route Python object allocations through malloc so ASan sees them too.
export PYTHONMALLOC=malloc
# `python -m` would put the working directory, this checkout with its uninstrumented
# dicomfast/ folder, first on sys.path (Python >= 3.11 honours this variable).
export PYTHONSAFEPATH=1

# The instrumented build, not another one, must be what the tests import.
native=$("$PY" -c "import dicomfast._native._scan as m; print(m.__file__)")
case "$native" in
  "$SITE"/*) echo "sanitize: testing $native" ;;
  *) echo "sanitize: imported $native instead of the build in $SITE" >&2; exit 2 ;;
esac

# Peak-memory assertions measure the allocator, and ASan's (quarantine, redzones) is
# not the one they are written for.
DESELECT=(--deselect tests/test_scan.py::test_20000_files_in_flat_memory)
if [ $# -gt 0 ]; then args=("$@"); else args=("${DEFAULT_TESTS[@]}" "${DESELECT[@]}"); fi
status=0
# -p no:cacheprovider: nothing is written into the tree.
"$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra -p no:cacheprovider" \
  -p no:benchmark "${args[@]}" || status=$?

reports=$(find "$LOGDIR" -type f -size +0 2>/dev/null | sort)
if [ -n "$reports" ]; then
  echo "sanitize: sanitizer reports:" >&2
  for f in $reports; do echo "== $f" >&2; head -60 "$f" >&2; done
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize: pytest failed (status $status)" >&2
  exit "$status"
fi
echo "sanitize: no sanitizer reports"
