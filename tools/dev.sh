#!/usr/bin/env bash
# Set up and run dicomfast on a fresh Debian machine.
#   bash tools/dev.sh demo   # build, install, and dump the bundled sample files
#   bash tools/dev.sh test   # build, install with test extras, and run the test suite
# Installs the system packages it needs when missing (apt-get; root or sudo),
# then builds into a fresh virtual environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Codec libraries dicomfast links, and the DICOM tools the tests use as oracles and peers.
APT_PACKAGES=(build-essential pkg-config zlib1g-dev libopenjp2-7-dev libopenjph-dev
              libcharls-dev libjpeg62-turbo-dev dcmtk libgdcm-tools python3-venv
              orthanc orthanc-dicomweb clang libclang-rt-14-dev)

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

PYTHON=${PYTHON:-python3}
rm -rf .venv
"$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip

case "${1:-test}" in
  demo)
    python -m pip install -q .
    dicomfast demo
    ;;
  test)
    python -m pip install -q '.[test]'
    shift || true
    # tests/conftest.py makes the tests folder the working directory, so that
    # subprocesses import the installed build, not the source tree.
    pytest -q tests "$@"
    # The C core under ASan + UBSan, then the fixed-seed libFuzzer smoke run
    # (docs/robustness.md); only for the whole suite, not a pytest selection.
    if [ $# -eq 0 ]; then
      bash tools/sanitize.sh
      bash tools/fuzz.sh smoke
    fi
    ;;
  *)
    echo "usage: bash tools/dev.sh demo|test [pytest args]" >&2
    exit 2
    ;;
esac
