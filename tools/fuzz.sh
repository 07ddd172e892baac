#!/usr/bin/env bash
# Build and run the libFuzzer harnesses of csrc/fuzz/.
#
#   bash tools/fuzz.sh TARGET SECONDS     # one target
#   bash tools/fuzz.sh all SECONDS        # every default target, SECONDS each
#   bash tools/fuzz.sh smoke              # CI: every default target, a fixed seed and
#                                         # a fixed number of runs (see SMOKE_RUNS)
#   bash tools/fuzz.sh list               # the targets
#
# Each harness is built with clang -fsanitize=fuzzer,address,undefined against the
# C sources it exercises (csrc/src, plus the system codec library for the glue
# targets), then run on a seed corpus made from the real test files
# (tools/fuzz_seeds.py) and the target's dictionary. Any crasher, leak, timeout or
# out-of-memory input is copied into tests/fuzz_regressions/<target>/ under its
# content hash, and the script fails; tests/test_fuzz_regressions.py replays every
# file there through the Python entry point in the normal test suite.
#
# Environment: FUZZ_DIR (default build/fuzz) holds binaries, corpora and logs;
# PYTHON (default .venv/bin/python, else python3) runs the seed generator and must
# import dicomfast; FUZZ_ARGS adds libFuzzer options (e.g. "-seed=1"); CC/CXX default to clang/clang++; FUZZ_JOBS is unused (one
# process per target: the machines that run this have few cores).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

TARGETS=(scan encaps swap rle ljpeg pdu inflate jpeg jpegls j2k)
# Run only when named: fuzz_htj2k drives OpenJPH's decoder in the fuzzer's own
# process, and OpenJPH 0.9 asserts on some malformed packet headers (dicomfast itself
# decodes HTJ2K frames in helper processes; see the header of csrc/fuzz/fuzz_htj2k.c).
EXTRA_TARGETS=(htj2k)

# The CI smoke run: libFuzzer's -seed=1 and this many executions per target, from the
# seeds alone (a fresh corpus), so CI mutates much as a local `bash tools/fuzz.sh smoke`
# does (libFuzzer's schedule still varies a little from run to run: new inputs it keeps
# depend on comparisons it traces). Sized to about 20-40 s each on a 2-core CI
# machine; SMOKE_CAP_S stops a slower machine early.
smoke_runs() {
  case "$1" in
    scan) echo 3000000 ;;  encaps) echo 8000000 ;; swap) echo 6000000 ;;
    rle) echo 600000 ;;    ljpeg) echo 100000 ;;   pdu) echo 4000000 ;;
    inflate) echo 8000000 ;; jpeg) echo 400000 ;;  jpegls) echo 5000 ;;
    j2k) echo 200000 ;;    htj2k) echo 200000 ;;
  esac
}
SMOKE_CAP_S=${SMOKE_CAP_S:-60}
CC=${CC_FUZZ:-clang}
CXX=${CXX_FUZZ:-clang++}
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
case "$FUZZ_DIR" in /*) ;; *) FUZZ_DIR="$ROOT/$FUZZ_DIR" ;; esac
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

usage() {
  echo "usage: bash tools/fuzz.sh TARGET|all SECONDS | smoke | list" >&2
  echo "  (targets: ${TARGETS[*]} ${EXTRA_TARGETS[*]})" >&2
  exit 2
}

# Sources (besides df_common.c and the harness), link flags, dictionary, -max_len.
target_sources() {
  case "$1" in
    scan) echo "csrc/src/df_scan.c" ;;
    encaps) echo "csrc/src/df_encaps.c" ;;
    swap) echo "csrc/src/df_swap.c" ;;
    rle) echo "csrc/src/df_rle.c" ;;
    ljpeg) echo "csrc/src/df_ljpeg.c csrc/src/df_ljpeg_enc.c" ;;
    pdu) echo "csrc/src/df_pdu.c" ;;
    inflate) echo "csrc/src/glue/df_zlib.c" ;;
    jpeg) echo "csrc/src/glue/df_jpeg.c" ;;
    jpegls) echo "csrc/src/glue/df_jpegls.c" ;;
    j2k) echo "csrc/src/df_j2k.c csrc/src/glue/df_j2k_openjpeg.c" ;;
    htj2k) echo "csrc/src/df_j2k.c" ;;   # + the C++ glue, compiled apart
    *) return 1 ;;
  esac
}
target_pkg() {
  case "$1" in
    inflate) echo zlib ;;
    jpeg) echo libjpeg ;;
    jpegls) echo charls ;;
    j2k) echo libopenjp2 ;;
    htj2k) echo openjph ;;
    *) echo "" ;;
  esac
}
target_dict() {
  case "$1" in
    scan|encaps|swap) echo csrc/fuzz/dicom.dict ;;
    rle) echo "" ;;
    ljpeg|jpeg|jpegls) echo csrc/fuzz/jpeg.dict ;;
    j2k|htj2k) echo csrc/fuzz/j2k.dict ;;
    pdu) echo csrc/fuzz/pdu.dict ;;
    inflate) echo "" ;;
  esac
}
target_max_len() {
  case "$1" in
    scan|encaps|j2k|htj2k|jpeg|jpegls|ljpeg) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

SAN_FLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
           -fno-sanitize-recover=undefined -Icsrc/include -Icsrc/fuzz)

build() {
  local t=$1 out="$FUZZ_DIR/bin/fuzz_$t" pkg cflags libs
  mkdir -p "$FUZZ_DIR/bin" "$FUZZ_DIR/obj/$t"
  pkg=$(target_pkg "$t")
  cflags=""; libs=""
  if [ -n "$pkg" ]; then
    if ! pkg-config --exists "$pkg"; then
      echo "fuzz: $t needs the $pkg development package (pkg-config $pkg)" >&2
      return 3
    fi
    cflags=$(pkg-config --cflags "$pkg"); libs=$(pkg-config --libs "$pkg")
    # Debian's openjph.pc has empty Libs (cmake/openjph.cmake works around it too).
    [ "$t" = htj2k ] && [ -z "$libs" ] && libs=-lopenjph
  fi
  # shellcheck disable=SC2046,SC2086
  if [ "$t" = htj2k ]; then
    # OpenJPH is built without RTTI, which UBSan's vptr check needs.
    "$CXX" "${SAN_FLAGS[@]}" -fno-sanitize=vptr -std=c++14 $cflags -c csrc/src/glue/df_htj2k_openjph.cpp \
      -o "$FUZZ_DIR/obj/$t/glue.o"
    "$CC" "${SAN_FLAGS[@]}" $cflags -c csrc/fuzz/fuzz_$t.c -o "$FUZZ_DIR/obj/$t/harness.o"
    "$CC" "${SAN_FLAGS[@]}" -c csrc/src/df_common.c -o "$FUZZ_DIR/obj/$t/common.o"
    "$CC" "${SAN_FLAGS[@]}" -c csrc/src/df_j2k.c -o "$FUZZ_DIR/obj/$t/j2k.o"
    "$CXX" "${SAN_FLAGS[@]}" "$FUZZ_DIR"/obj/$t/*.o $libs -o "$out"
  else
    "$CC" "${SAN_FLAGS[@]}" $cflags csrc/fuzz/fuzz_$t.c csrc/src/df_common.c \
      $(target_sources "$t") $libs -o "$out"
  fi
}

run_target() {
  local t=$1 secs=$2 smoke=${3:-} corpus seeds art log dict args rc n_new
  target_sources "$t" >/dev/null || usage
  echo "fuzz: building $t"
  build "$t" || return $?
  corpus="$FUZZ_DIR/corpus/$t"      # grows across runs (kept in build/, not committed)
  [ -n "$smoke" ] && corpus="$FUZZ_DIR/smoke-corpus/$t" && rm -rf "$corpus"
  seeds="$FUZZ_DIR/seeds/$t"
  art="$FUZZ_DIR/artifacts/$t/"
  log="$FUZZ_DIR/logs/$t.log"
  mkdir -p "$corpus" "$art" "$FUZZ_DIR/logs"
  if [ ! -d "$seeds" ] || [ -n "$(find tests/fuzz_regressions/"$t" -newer "$seeds" -type f 2>/dev/null)" ]; then
    rm -rf "$seeds"
    "$PYTHON" tools/fuzz_seeds.py "$t" "$seeds" --max-bytes "$(target_max_len "$t")"
  fi
  dict=$(target_dict "$t")
  args=(-max_total_time="$secs" -max_len="$(target_max_len "$t")" -timeout=10
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
        -artifact_prefix="$art")
  [ -n "$dict" ] && args+=(-dict="$dict")
  [ -n "$smoke" ] && args+=(-seed=1 -runs="$(smoke_runs "$t")")
  # shellcheck disable=SC2206
  [ -n "${FUZZ_ARGS:-}" ] && args+=($FUZZ_ARGS)
  if [ -n "$smoke" ]; then
    echo "fuzz: running $t: $(smoke_runs "$t") runs, seed 1 (at most ${secs}s)"
  else
    echo "fuzz: running $t for ${secs}s"
  fi
  rc=0
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$FUZZ_DIR/bin/fuzz_$t" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" | sed "s/^/fuzz: $t /" || true
  n_new=0
  for f in "$art"*; do
    [ -f "$f" ] || continue
    mkdir -p "tests/fuzz_regressions/$t"
    base=$(basename "$f")
    kind=${base%%-*}   # crash, leak, timeout, oom, slow-unit
    cp "$f" "tests/fuzz_regressions/$t/$kind-$(sha1sum "$f" | cut -c1-16)"
    rm -f "$f"
    n_new=$((n_new + 1))
  done
  if [ "$rc" -ne 0 ] || [ "$n_new" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc, $n_new new file(s) in tests/fuzz_regressions/$t); log: $log" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==|runtime error|deadly signal" "$log" | head -20 >&2 || true
    return 1
  fi
  echo "fuzz: $t ok"
}

[ $# -ge 1 ] || usage
case "$1" in
  list) printf '%s\n' "${TARGETS[@]}" "${EXTRA_TARGETS[@]}"; exit 0 ;;
esac
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang)" >&2; exit 3; }

run_all() {
  local failed=() t
  for t in "${TARGETS[@]}"; do run_target "$t" "$@" || failed+=("$t"); done
  if [ ${#failed[@]} -gt 0 ]; then echo "fuzz: failed: ${failed[*]}" >&2; exit 1; fi
  echo "fuzz: all ${#TARGETS[@]} targets ok"
}

if [ "$1" = smoke ]; then
  [ $# -eq 1 ] || usage
  run_all "$SMOKE_CAP_S" smoke
  exit 0
fi
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[0-9]+$ ]] || usage
if [ "$1" = all ]; then
  run_all "$2"
else
  run_target "$1" "$2"
fi
