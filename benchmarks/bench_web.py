"""DICOMweb throughput on loopback: dicomfast's server against Orthanc's DICOMweb plugin.

500 real images (copies of small corpus files, each with new UIDs, in 10 studies of
50) are stored with STOW-RS (50 instances per request) and retrieved study by study
with WADO-RS, streamed to disk. Both servers run as their own processes with their
default durability (dicomfast: fsync, rename, folder fsync per instance; Orthanc:
its storage area defaults); the same client (dicomfast.web.Client) drives both, so
the figures compare the servers. A fresh, empty server is started for each round.

    pytest benchmarks/bench_web.py --benchmark-enable -p no:cacheprovider
    python benchmarks/bench_web.py [--rounds 3]          # MB/s and the ratio table
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

DATA = Path(os.environ.get("DICOMFAST_BENCH_WEB_DIR", tempfile.gettempdir())) / \
    "dicomfast-bench-web"
SOURCES = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb.dcm",
           "MR_small_jp2klossless.dcm"]
COUNT, PER_STUDY, BATCH = 500, 50, 50


def objects() -> tuple[list[Path], list[str]]:
    """The 500 files and their study UIDs (made once, kept in DATA)."""
    import pydicom
    from corpus import pydicom_data_dir, pydicom_test_dir
    from pydicom.uid import generate_uid

    folder = DATA / "objects"
    done = folder / "studies.txt"
    if done.exists():
        files = sorted(folder.glob("*.dcm"))
        if len(files) == COUNT:
            return files, done.read_text().split()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    found = [pydicom_test_dir() / n if (pydicom_test_dir() / n).exists()
             else pydicom_data_dir() / n for n in SOURCES]
    sources = [pydicom.dcmread(path) for path in found]
    studies = []
    for k in range(COUNT):
        if k % PER_STUDY == 0:
            studies.append(generate_uid())
            series = generate_uid()
        ds = sources[k % len(sources)]
        ds.StudyInstanceUID = studies[-1]
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = f"BENCH-{k // PER_STUDY}"
        ds.InstanceNumber = k
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    done.write_text("\n".join(studies))
    return sorted(folder.glob("*.dcm")), studies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def dicomfast_server(folder: Path) -> Iterator[str]:
    from dicomfast.web import Client
    from dicomfast.web.client import DicomWebError

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast", "web", "--dir", str(folder),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/dicom-web"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                Client(url, retries=0, timeout=2).search_studies(limit=1)
                break
            except DicomWebError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the dicomfast server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextlib.contextmanager
def orthanc_server(folder: Path) -> Iterator[str]:
    from test_web_interop import ORTHANC, PLUGIN, OrthancProcess

    if not (ORTHANC.exists() and PLUGIN.exists()):
        pytest.skip("Orthanc or its DICOMweb plugin is not installed")
    with OrthancProcess(folder) as orthanc:
        yield orthanc.dicomweb


SERVERS = {"dicomfast": dicomfast_server, "orthanc": orthanc_server}


def stow(url: str, files: list[Path]) -> None:
    from dicomfast.web import Client

    with Client(url, timeout=120) as client:
        for start in range(0, len(files), BATCH):
            answer = client.store(files[start:start + BATCH])
            assert len(answer["00081199"]["Value"]) == len(files[start:start + BATCH])


def wado(url: str, studies: list[str], out: Path) -> None:
    from dicomfast.web import Client

    n = 0
    with Client(url, timeout=120) as client:
        for study in studies:
            n += len(client.retrieve(study, output_dir=out / study))
    assert n == COUNT


def _fresh(name: str) -> Path:
    folder = DATA / "runs" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# -- pytest-benchmark ----------------------------------------------------------------------

@pytest.mark.parametrize("server", list(SERVERS))
def test_stow_rs_throughput(benchmark, server):
    pytest.importorskip("pydicom")
    pytest.importorskip("uvicorn")
    files, _ = objects()
    size = sum(f.stat().st_size for f in files)
    benchmark.group = f"STOW-RS, {len(files)} instances ({size / 1e6:.1f} MB)"
    benchmark.extra_info["MB"] = size / 1e6
    with SERVERS[server](_fresh(server)) as url:
        benchmark.pedantic(stow, args=(url, files), rounds=1, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("server", list(SERVERS))
def test_wado_rs_throughput(benchmark, server):
    pytest.importorskip("pydicom")
    pytest.importorskip("uvicorn")
    files, studies = objects()
    size = sum(f.stat().st_size for f in files)
    benchmark.group = f"WADO-RS, {len(files)} instances ({size / 1e6:.1f} MB)"
    benchmark.extra_info["MB"] = size / 1e6
    with SERVERS[server](_fresh(server)) as url:
        stow(url, files)
        out = _fresh(f"{server}-out")
        benchmark.pedantic(wado, args=(url, studies, out), rounds=1, iterations=1,
                           warmup_rounds=0)


# -- the table -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DICOMweb throughput table")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    files, studies = objects()
    size = sum(f.stat().st_size for f in files) / 1e6
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for name, factory in SERVERS.items():  # interleaved, so drift hits both
            with factory(_fresh(name)) as url:
                t = time.perf_counter()
                stow(url, files)
                rate = size / (time.perf_counter() - t)
                best[name, "STOW"] = max(best.get((name, "STOW"), 0.0), rate)
                out = _fresh(f"{name}-out")
                t = time.perf_counter()
                wado(url, studies, out)
                rate = size / (time.perf_counter() - t)
                best[name, "WADO"] = max(best.get((name, "WADO"), 0.0), rate)
    print(f"{COUNT} instances, {size:.1f} MB, best of {args.rounds} rounds")
    for op in ("STOW", "WADO"):
        ours, theirs = best["dicomfast", op], best["orthanc", op]
        print(f"{op}-RS  dicomfast {ours:7.1f} MB/s   Orthanc {theirs:7.1f} MB/s   "
              f"ratio {ours / theirs:.2f}x")
    shutil.rmtree(DATA / "runs", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
