"""Inputs that make a codec library end the process, kept until the library is fixed.

tests/known_library_aborts/ holds frames found by the fuzzers that no check in
dicomfast's glue can refuse beforehand, because the library fails an assert() deep
in data it alone parses:

- openjpeg-2.5.0-ht-mel-*: an HTJ2K frame with more coding passes in a code-block
  than OpenJPEG's HT decoder takes. OpenJPEG 2.5.0 (Debian 12) usually reports it,
  but now and then (depending on where the code-block's buffer lies) fails an
  assert() in ht_dec.c mel_init. dicomfast decodes frames with HT code-blocks in
  helper processes, so through dicomfast this ends a helper and is a DecodeError
  (tests/test_isolated.py); this test tracks the library itself.

Each input is decoded in a child process. A DicomfastError passes; the known abort
is an expected failure (xfail) naming the library; anything else fails.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parent / "known_library_aborts"

_DECODE = r"""
import sys
import numpy as np
from dicomfast._native import _j2k
from dicomfast.errors import DicomfastError
data = open(sys.argv[1], "rb").read()[1:]   # byte 0: the fuzz harness's options
outcomes = set()
# The assert depends on what the decoder's reused buffers held before (it reads
# past the code-block's data), so one decode seldom shows it; a few hundred do.
for _ in range(2000):
    try:
        info = _j2k.info(data)
        n = info["rows"] * info["columns"] * info["components"] * 2
        if 0 < n <= 1 << 24:
            _j2k.decode(data, np.zeros(n, np.uint8))
        outcomes.add("ok")
    except DicomfastError as exc:
        outcomes.add("error")
print(" ".join(sorted(outcomes)))
"""


@pytest.mark.parametrize("path", sorted(FOLDER.glob("openjpeg-*")), ids=lambda p: p.name)
def test_openjpeg_ht_decoder(path):
    j2k = pytest.importorskip("dicomfast._native._j2k", exc_type=ImportError)
    proc = subprocess.run([sys.executable, "-c", _DECODE, str(path)], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode == -signal.SIGABRT and "Assertion" in proc.stderr:
        pytest.xfail(f"OpenJPEG {j2k.library_version()} fails an assert() on this HTJ2K "
                     f"frame: {proc.stderr.strip().splitlines()[-1][:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(proc.stdout.split()) <= {"ok", "error"} and proc.stdout.strip()
