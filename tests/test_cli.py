"""The command line: dump and demo, compared with DCMTK's dcmdump where present."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import find

from dicomfast.cli import main, sample_files


def test_samples_are_shipped_and_small():
    files = sample_files()
    assert len(files) >= 5
    assert sum(p.stat().st_size for p in files) < 1_000_000


def test_dump_lists_nested_items(capsys):
    path = find("rtplan.dcm")
    assert main(["dump", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(300A,00B0) SQ" in out            # Beam Sequence
    assert "    (300A,0111) SQ" in out        # nested Control Point Sequence, indented
    assert "RTPlanLabel" in out


def test_dump_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x08\x001.2.3.4\0")
    assert main(["dump", str(bad)]) == 1
    assert "dicomfast:" in capsys.readouterr().err


def test_demo_runs(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "pixel_array: shape (3, 48, 48)" in out
    assert "Yamada^Tarou" in out


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="DCMTK's dcmdump is not installed")
@pytest.mark.parametrize("sample", sample_files(), ids=lambda p: p.name)
def test_samples_are_valid_for_dcmtk(sample):
    # DCMTK reads every sample without complaint, so the samples are real DICOM.
    run = subprocess.run(["dcmdump", "-q", str(sample)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "PatientName" in run.stdout


def test_module_entry_point():
    # Run outside the source tree so the installed build is the one imported.
    run = subprocess.run([sys.executable, "-m", "dicomfast", "dump", str(sample_files()[0])],
                         capture_output=True, text=True, cwd=Path(__file__).parent)
    assert run.returncode == 0, run.stderr
    assert "(0010,0010) PN" in run.stdout


def test_transcode_folder(tmp_path, capsys):
    import pydicom

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for p in sample_files():
        (src / "sub" / p.name).write_bytes(p.read_bytes())
    dst = tmp_path / "out"
    assert main(["transcode", str(src), str(dst), "--ts", "ExplicitVRBigEndian",
                 "--threads", "2"]) == 0
    written = sorted(dst.rglob("*.dcm"))
    assert len(written) == len(sample_files())
    for p in written:
        assert str(pydicom.dcmread(p).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.2"
    with pytest.raises(SystemExit):
        main(["transcode", str(src), str(dst), "--ts", "NoSuchSyntax"])


def test_transcode_names_each_file_a_warning_concerns(tmp_path, capsys):
    """Two copies of a file cut inside its last value, transcoded on two threads: a
    warning line for each, naming it (Python would show the warning once, without
    the file); warning settings are as before afterwards."""
    import warnings

    cut = find("MR_truncated.dcm")
    if cut is None:
        pytest.skip("MR_truncated.dcm is not in the corpus")
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(cut, src / name)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        assert main(["transcode", str(src), str(tmp_path / "out"), "--ts",
                     "ExplicitVRLittleEndian", "--threads", "2"]) == 0
    assert not escaped
    assert warnings.filters == filters
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert sorted(lines) == [f"dicomfast: warning: {src / name}: the data ends inside the "
                             "last element's value; the value is cut short"
                             for name in ("a.dcm", "b.dcm")]


def test_transcode_with_encoder_options(tmp_path, capsys):
    """--option KEY=VALUE reaches the encoder: JPEG-LS Near-Lossless with NEAR 4 keeps
    every sample within 4; an option the encoder does not take fails the file."""
    import numpy as np
    import pydicom

    src = find("CT_small.dcm")
    out = tmp_path / "near.dcm"
    assert main(["transcode", str(src), str(out), "--ts", "JPEGLSNearLossless",
                 "--allow-lossy", "--option", "near=4"]) == 0
    written = pydicom.dcmread(out)
    assert str(written.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.81"
    diff = np.abs(written.pixel_array.astype(int) - pydicom.dcmread(src).pixel_array)
    assert 0 < diff.max() <= 4
    assert main(["transcode", str(src), str(tmp_path / "bad.dcm"), "--ts",
                 "JPEGLSNearLossless", "--allow-lossy", "--option", "quality=3"]) == 1
    assert "no encoder option 'quality' (its options: near)" in capsys.readouterr().err
    assert not (tmp_path / "bad.dcm").exists()


def test_progress_line():
    import io

    from dicomfast.progress import Progress

    stream = io.StringIO()
    with Progress(4, stream=stream, force=True) as bar:
        for _ in range(4):
            bar.advance(1000)
    assert "4/4 files" in stream.getvalue()
