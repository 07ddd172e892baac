"""C-FIND at STUDY level over 10,000 indexed studies: answers per second from
dicomfast qrscp, Orthanc and DCMTK dcmqrscp, answering the same query in the same
run.

Two clients, the same for every server: DCMTK findscu (C++, quiet: the server's
speed shows) and dicomfast's SCU (counting the pending responses without decoding
them), each timed from the association request to the final response (findscu:
its whole process run). The query is universal matching with six return keys, so
every study is answered.

dcmqrscp's index file holds at most 500 studies per storage area (DB_UpperMaxStudies
in DCMTK's dcmqrdbi.h; dcmqridx aborts beyond it), so it answers over the first 500
of the studies, and dicomfast is measured over the same 500 as well (groups
``cfind-study-500-*``); the 10,000-study groups (``cfind-study-10k-*``) have dicomfast
and Orthanc.

The 10,000 studies (one small instance each, copies of a corpus file with varied
names and dates) are written once; each server indexes the same files (dicomfast:
``dicomfast index``; dcmqrscp: dcmqridx; Orthanc: C-STORE into it). Every server
runs as its own process.

    pytest benchmarks/bench_qr.py --benchmark-enable -p no:cacheprovider
    python benchmarks/bench_qr.py [--rounds 3]          # the ratio table

Set DICOMFAST_BENCH_QR_DIR to keep the generated files elsewhere than /tmp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

DATA = Path(os.environ.get("DICOMFAST_BENCH_QR_DIR",
                           Path(tempfile.gettempdir()) / "dicomfast-bench-qr"))
HOST = "127.0.0.1"
N_STUDIES = 10_000
DCMQRSCP_MAX = 500     # DB_UpperMaxStudies
QUERY = {"StudyInstanceUID": "", "PatientName": "", "PatientID": "", "StudyDate": "",
         "AccessionNumber": "", "StudyDescription": ""}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def studies() -> Path:
    """The 10,000 one-instance studies (generated on first use)."""
    folder = DATA / "files"
    done = DATA / "files.done"
    if done.exists():
        return folder
    import pydicom
    from corpus import find

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(find("CT_small.dcm"))
    del ds.PixelData
    names = ["Smith^John", "Doe^Jane", "Muller^Karl", "Garcia^Ana", "Chen^Li"]
    for s in range(N_STUDIES):
        uid = f"1.2.826.0.1.3680043.8.498.88.{s + 1}"
        ds.PatientName = f"{names[s % 5]}{s // 5}"
        ds.PatientID = f"P{s:05d}"
        ds.StudyInstanceUID = uid
        ds.SeriesInstanceUID = uid + ".1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid + ".1.1"
        ds.StudyDate = f"{2000 + s % 25}{1 + s % 12:02d}{1 + s % 28:02d}"
        ds.AccessionNumber = f"A{s:06d}"
        ds.StudyDescription = f"Study {s % 17}"
        ds.save_as(folder / f"{s:05d}.dcm", enforce_file_format=True)
    done.touch()
    return folder


@contextlib.contextmanager
def _process(args: list[str], port: int, **kw) -> Iterator[int]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def dicomfast_server(n: int = N_STUDIES) -> Iterator[tuple[int, str]]:
    arc = DATA / f"dicomfast-{n}"
    if not (arc / "index.sqlite").exists():
        shutil.rmtree(arc, ignore_errors=True)
        arc.mkdir(parents=True)
        for f in sorted(studies().glob("*.dcm"))[:n]:
            os.link(f, arc / f.name)
        subprocess.run([sys.executable, "-m", "dicomfast", "index", str(arc), "--no-progress"],
                       check=True, timeout=600)
    port = _free_port()
    with _process([sys.executable, "-m", "dicomfast", "qrscp", "--port", str(port), "--dir",
                   str(arc), "--host", HOST, "--aet", "DFQRSCP"], port):
        yield port, "DFQRSCP"


@contextlib.contextmanager
def dcmqrscp_server() -> Iterator[tuple[int, str]]:
    db = DATA / "dcmqrscp"
    if not (db / "index.dat").exists():
        shutil.rmtree(db, ignore_errors=True)
        db.mkdir(parents=True)
        files = sorted(studies().glob("*.dcm"))[:DCMQRSCP_MAX]
        for f in files:
            os.link(f, db / f.name)
        names = [str(db / f.name) for f in files]
        subprocess.run(["/usr/bin/dcmqridx", str(db)] + names, check=True, timeout=600)
    port = _free_port()
    cfg = DATA / "dcmqrscp.cfg"
    cfg.write_text(f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
                   "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
                   f"AETable BEGIN\nDCMQRSCP {db} RW ({DCMQRSCP_MAX}, 1024mb) ANY\nAETable END\n")
    with _process(["/usr/bin/dcmqrscp", "-c", str(cfg), str(port)], port,
                  env={**os.environ, "TCP_NODELAY": "1"}):
        yield port, "DCMQRSCP"


@contextlib.contextmanager
def orthanc_server() -> Iterator[tuple[int, str]]:
    base = DATA / "orthanc"
    http, dicom = _free_port(), _free_port()
    (base / "storage").mkdir(parents=True, exist_ok=True)
    cfg = base / "orthanc.json"
    cfg.write_text(json.dumps({
        "Name": "bench", "StorageDirectory": str(base / "storage"),
        "IndexDirectory": str(base / "storage"), "HttpPort": http, "DicomPort": dicom,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "Plugins": [],
        "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
        "DicomModalities": {"bench": ["BENCH", HOST, 1]},
        "LimitFindResults": 0, "LimitFindInstances": 0, "StorageCompression": False}))
    with _process(["/usr/sbin/Orthanc", str(cfg)], dicom):
        done = base / "stored.done"
        if not done.exists():
            from dicomfast.net import AE

            results = AE("BENCH").store(HOST, dicom, [studies()], called_ae="ORTHANC")
            assert all(r.ok for r in results)
            done.touch()
        yield dicom, "ORTHANC"


#: (group, server): the peers compared over the same studies.
SERVERS = {
    ("cfind-study-10k", "dicomfast"): (dicomfast_server, N_STUDIES),
    ("cfind-study-10k", "orthanc"): (orthanc_server, N_STUDIES),
    ("cfind-study-500", "dicomfast"): (lambda: dicomfast_server(DCMQRSCP_MAX), DCMQRSCP_MAX),
    ("cfind-study-500", "dcmqrscp"): (dcmqrscp_server, DCMQRSCP_MAX),
}


def findscu_all(port: int, called_ae: str, count: bool = False) -> int | None:
    """One C-FIND by DCMTK findscu. Quiet (its logging would be timed too), unless
    `count`: then the number of answers, from its log."""
    keys = [a for k in QUERY for a in ("-k", k)]
    run = subprocess.run(["/usr/bin/findscu", "-S", "-v" if count else "-q", "-aec", called_ae,
                          "-k", "QueryRetrieveLevel=STUDY", *keys, HOST, str(port)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TCP_NODELAY": "1"})
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return (run.stdout + run.stderr).count("(Pending)") if count else None


def find_all(port: int, called_ae: str) -> int:
    """One C-FIND, answers counted (not decoded): the number of answers."""
    from dicomfast.net import AE
    from dicomfast.net import dimse_c as C
    from dicomfast.net.services import qrscu

    async def run() -> int:
        ae = AE("BENCH", dimse_timeout=600)
        assoc = await ae.associate(HOST, port, [(C.STUDY_ROOT_FIND, ["1.2.840.10008.1.2.1"])],
                                   called_ae=called_ae)
        async with assoc:
            stream = await qrscu.start_find(assoc, QUERY, level="STUDY", raw=True)
            return sum([1 async for _ in stream])

    return asyncio.run(run())


CLIENTS = {"findscu": findscu_all, "dicomfast": find_all}


@pytest.fixture(scope="module", params=list(SERVERS), ids=lambda k: f"{k[0]}-{k[1]}")
def server(request):
    group, name = request.param
    if name != "dicomfast" and not os.path.exists(
            {"orthanc": "/usr/sbin/Orthanc", "dcmqrscp": "/usr/bin/dcmqrscp"}[name]):
        pytest.skip(f"{name} not installed")
    start, n = SERVERS[request.param]
    with start() as (port, aet):
        yield group, name, n, port, aet


@pytest.mark.parametrize("client", list(CLIENTS))
def test_cfind_study_level(benchmark, server, client):
    group, name, n, port, aet = server
    if client == "findscu" and not os.path.exists("/usr/bin/findscu"):
        pytest.skip("DCMTK findscu not installed")
    benchmark.group = f"{group}-{client}"
    if client == "findscu":
        assert findscu_all(port, aet, count=True) == n
    answers = benchmark.pedantic(CLIENTS[client], args=(port, aet), rounds=3, iterations=1,
                                 warmup_rounds=1)
    assert answers in (n, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates = {}
    for (group, name), (start, n) in SERVERS.items():
        with start() as (port, aet):
            assert findscu_all(port, aet, count=True) == n
            for client, run in CLIENTS.items():
                run(port, aet)  # warm up
                times = []
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    got = run(port, aet)
                    times.append(time.perf_counter() - t)
                    assert got in (n, None), (group, name, client, got)
                rates[(group, client, name)] = n / statistics.median(times)
    for (group, client, name), rate in rates.items():
        print(f"{group:16s} client {client:10s} {name:10s} {rate:10.0f} answers/s")
    for group, peer in (("cfind-study-10k", "orthanc"), ("cfind-study-500", "dcmqrscp")):
        for client in CLIENTS:
            print(f"{group} ({client} client): dicomfast / {peer} = "
                  f"{rates[(group, client, 'dicomfast')] / rates[(group, client, peer)]:.2f}x")


if __name__ == "__main__":
    main()
