"""C-STORE throughput on loopback: DCMTK, dicomfast and pynetdicom, as SCU and SCP.

Two object sets, made once from a real 512x512 CT of the corpus (693_UNCR.dcm):
``small``, 500 single images of ~0.5 MB, and ``large``, 20 multi-frame objects of
20-50 MB. Every SCP runs as its own process and writes what it receives to a folder
(dicomfast's with fsync, rename and folder fsync before each acknowledgement;
DCMTK's and pynetdicom's without fsync). The SCU is timed from the first
connection to the last response. DCMTK runs with TCP_NODELAY=1 (Debian's build
leaves Nagle on otherwise, which caps it near 20 stores/s on loopback).

pynetdicom appears twice: as a script using its fastest paths (the SCU sends
from file paths, the SCP writes ``event.encoded_dataset()`` without decoding), the
"pynetdicom pair" the ratios use; and as the storescu / storescp applications it
ships, run with their defaults as a user would (they decode and re-encode each
data set), like DCMTK's.

    pytest benchmarks/bench_net.py --benchmark-enable -p no:cacheprovider
    python benchmarks/bench_net.py [--rounds 3] [--sets small,large]   # the ratio table

Set DICOMFAST_BENCH_NET_DIR to keep the generated objects elsewhere than /tmp.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

DATA = Path(os.environ.get("DICOMFAST_BENCH_NET_DIR",
                           Path(tempfile.gettempdir()) / "dicomfast-bench-net"))
HOST = "127.0.0.1"
SETS = {"small": 500, "large": 20}


# -- objects -------------------------------------------------------------------------------

def _source():
    import pydicom
    from corpus import find

    path = find("693_UNCR.dcm")
    if path is None:
        pytest.skip("corpus file 693_UNCR.dcm (pydicom-data) missing")
    return pydicom.dcmread(path)


def objects(kind: str) -> list[Path]:
    """The benchmark objects, generated on first use."""
    from pydicom.uid import generate_uid

    n = SETS[kind]
    folder = DATA / kind
    files = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
    if len(files) == n:
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ds = _source()
    frame = ds.PixelData
    for i in range(n):
        uid = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        if kind == "large":
            # Multi-frame Grayscale Word Secondary Capture: the CT frame repeated,
            # 40 to 100 frames of 0.5 MB, i.e. 20 to 50 MB.
            frames = 40 + (60 * i) // max(n - 1, 1)
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = \
                "1.2.840.10008.5.1.4.1.1.7.3"
            ds.NumberOfFrames = frames
            ds.PixelData = frame * frames
        ds.save_as(folder / f"{i:04d}.dcm", enforce_file_format=True)
    return sorted(folder.glob("*.dcm"))


# -- processes -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SCP exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no SCP on port {port}")


def _dcmtk(tool: str) -> str:
    for path in (f"/usr/bin/{tool}", f"/usr/local/bin/{tool}", shutil.which(tool)):
        if path and os.path.exists(path):
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            if "dcmtk" in out.lower():
                return path
    pytest.skip(f"DCMTK {tool} not installed")
    raise AssertionError


def _dcmtk_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


_PYNETDICOM_SCP = """
import sys
from pathlib import Path
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
out = Path(sys.argv[2])
def on_store(event):
    (out / (event.request.AffectedSOPInstanceUID + ".dcm")).write_bytes(event.encoded_dataset())
    return 0
ae = AE(ae_title="PYNETSCP")
for cx in StoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
ae.add_supported_context("1.2.840.10008.5.1.4.1.1.7.3", ALL_TRANSFER_SYNTAXES)
ae.add_supported_context(Verification)
ae.maximum_pdu_size = int(sys.argv[3])
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 600
ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, on_store)])
"""


@contextlib.contextmanager
def scp(kind: str, out: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """A running SCP process of `kind`: 'dcmtk', 'dcmtk-fork', 'dicomfast', 'pynetdicom'
    (unlimited PDUs), 'pynetdicom-16k' (its default maximum PDU, 16382 bytes), or
    'pynetdicom-app' (the storescp application pynetdicom ships, its defaults)."""
    port = _free_port()
    if kind.startswith("dcmtk"):
        cmd = [_dcmtk("storescp"), "-od", str(out), "+xa"]
        if kind == "dcmtk-fork":
            cmd.append("--fork")
        proc = subprocess.Popen(cmd + [str(port)], env=_dcmtk_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif kind == "dicomfast":
        proc = subprocess.Popen([sys.executable, "-m", "dicomfast.net.cli", "storescp",
                                 "--port", str(port), "--output-dir", str(out), "--host", HOST],
                                cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    elif kind == "pynetdicom-app":
        proc = subprocess.Popen([sys.executable, "-m", "pynetdicom", "storescp", str(port),
                                 "-od", str(out), "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        pdu = "16382" if kind.endswith("16k") else "0"
        proc = subprocess.Popen([sys.executable, "-c", _PYNETDICOM_SCP, str(port), str(out), pdu],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- SCUs ----------------------------------------------------------------------------------

def dcmtk_scu(port: int, files: list[Path], associations: int = 1) -> None:
    parts = [files[i::associations] for i in range(associations)]
    procs = [subprocess.Popen([_dcmtk("storescu"), HOST, str(port),
                               *map(str, part)], env=_dcmtk_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for part in parts]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")


def dicomfast_scu(port: int, files: list[Path], associations: int = 1) -> None:
    """dicomfast's SCU in this process: one event loop, `associations` at once."""
    import asyncio

    from dicomfast.net import AE

    ae = AE("DFSCU", dimse_timeout=600)
    parts = [files[i::associations] for i in range(associations)]

    async def run() -> list:
        batches = await asyncio.gather(*(ae.store_async(HOST, port, p) for p in parts))
        return [r for batch in batches for r in batch if not r.ok]

    failures = asyncio.run(run())
    if failures:
        raise RuntimeError(f"{len(failures)} failed: {failures[0]}")


def pynetdicom_scu(port: int, files: list[Path], associations: int = 1,
                   max_pdu: int = 0) -> None:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE

    ae = AE(ae_title="PYNETSCU")
    ae.maximum_pdu_size = max_pdu
    ae.dimse_timeout = 600
    classes = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID)
               for f in files[:1] + files[-1:]}
    for c in classes:
        ae.add_requested_context(c, ExplicitVRLittleEndian)
    assoc = ae.associate(HOST, port, ae_title="PYNETSCP")
    if not assoc.is_established:
        raise RuntimeError("pynetdicom association failed")
    try:
        for f in files:
            status = assoc.send_c_store(f)
            if "Status" not in status or status.Status != 0:
                raise RuntimeError(f"pynetdicom C-STORE of {f.name} failed: {status!r} "
                                   f"(association {'up' if assoc.is_established else 'down'})")
    finally:
        assoc.release()


def pynetdicom_app_scu(port: int, files: list[Path], associations: int = 1) -> None:
    """pynetdicom's own storescu application, as a user runs it (start-up included, as
    for DCMTK's storescu)."""
    proc = subprocess.run([sys.executable, "-m", "pynetdicom", "storescu", HOST, str(port),
                           *map(str, files), "-q", "-td", "600"],
                          capture_output=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"pynetdicom storescu failed: {proc.stderr.decode()[-500:]}")


# (name, SCU, SCP kind, concurrent associations)
PAIRS: list[tuple[str, Callable[..., None], str, int]] = [
    ("DCMTK -> DCMTK", dcmtk_scu, "dcmtk", 1),
    ("dicomfast -> DCMTK", dicomfast_scu, "dcmtk", 1),
    ("DCMTK -> dicomfast", dcmtk_scu, "dicomfast", 1),
    ("dicomfast -> dicomfast", dicomfast_scu, "dicomfast", 1),
    ("dicomfast -> dicomfast, 4 associations", dicomfast_scu, "dicomfast", 4),
    ("DCMTK -> DCMTK --fork, 4 associations", dcmtk_scu, "dcmtk-fork", 4),
    ("pynetdicom -> pynetdicom", pynetdicom_scu, "pynetdicom", 1),
    ("pynetdicom -> pynetdicom, default 16 KiB PDUs",
     lambda port, files, n: pynetdicom_scu(port, files, n, max_pdu=16382), "pynetdicom-16k", 1),
    ("pynetdicom storescu -> storescp (its applications)", pynetdicom_app_scu,
     "pynetdicom-app", 1),
]


def _own_cpu() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(pair: tuple[str, Callable[..., None], str, int], files: list[Path],
            rounds: int) -> list[tuple[float, float, float]]:
    """(seconds, SCU CPU seconds, SCP CPU seconds) per round.

    Each round gets a fresh SCP process writing to a fresh folder, and nothing is
    deleted until the whole run is over: ext4 slows down creating files in a block
    group where many were just deleted (it skips recently freed inodes), which
    would otherwise penalise whichever pair runs after a clean-up.
    """
    _name, scu, scp_kind, associations = pair
    times = []
    for _ in range(rounds):
        out = _round_folder()
        with scp(scp_kind, out) as (port, proc):
            cpu0, own0 = _cpu_seconds(proc.pid), _own_cpu()
            start = time.perf_counter()
            scu(port, files, associations)
            elapsed = time.perf_counter() - start
            times.append((elapsed, _own_cpu() - own0, _cpu_seconds(proc.pid) - cpu0))
        got = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
        if got != len(files):
            raise RuntimeError(f"{pair[0]}: {got} of {len(files)} objects received")
    return times


_ROUNDS = [0]


def _round_folder() -> Path:
    _ROUNDS[0] += 1
    out = DATA / "received" / f"{os.getpid()}-{_ROUNDS[0]}"
    out.mkdir(parents=True)
    return out


# -- pytest-benchmark ----------------------------------------------------------------------

def _id(name: str) -> str:
    return name.lower().replace(" -> ", "-to-").replace(",", "").replace(" --", "-")\
        .replace(" ", "-")


@pytest.mark.parametrize("kind", list(SETS))
@pytest.mark.parametrize("pair", PAIRS, ids=[_id(p[0]) for p in PAIRS])
def test_c_store_throughput(benchmark, kind, pair):
    pytest.importorskip("pydicom")
    if pair[0].startswith("pynetdicom"):
        pytest.importorskip("pynetdicom")
    files = objects(kind)
    size = sum(f.stat().st_size for f in files)
    benchmark.group = f"C-STORE, {kind} set ({len(files)} objects, {size / 1e6:.0f} MB)"
    _name, scu, scp_kind, associations = pair
    out = _round_folder()
    with scp(scp_kind, out) as (port, _proc):
        benchmark.extra_info["MB"] = size / 1e6
        benchmark.extra_info["files"] = len(files)
        benchmark.pedantic(scu, args=(port, files, associations), rounds=1, iterations=1,
                           warmup_rounds=0)
    shutil.rmtree(DATA / "received", ignore_errors=True)


# -- the table -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="C-STORE throughput table")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sets", default="small,large")
    parser.add_argument("--pairs", default="",
                        help="comma-separated substrings; runs the pairs whose name has one")
    args = parser.parse_args(argv)
    shutil.rmtree(DATA / "received", ignore_errors=True)
    try:
        _table(args)
    finally:
        shutil.rmtree(DATA / "received", ignore_errors=True)
    return 0


def _table(args: argparse.Namespace) -> None:
    wanted = [w for w in args.pairs.split(",") if w]
    pairs = [p for p in PAIRS if not wanted or any(w in p[0] for w in wanted)]
    for kind in args.sets.split(","):
        files = objects(kind)
        size = sum(f.stat().st_size for f in files) / 1e6
        runs: dict[str, list[tuple[float, float, float]]] = {p[0]: [] for p in pairs}
        # Round-robin, so the machine's mood and the file system's state (which
        # drift over a run) weigh on every pair alike.
        for r in range(args.rounds):
            for pair in pairs:
                runs[pair[0]].extend(measure(pair, files, 1))
                t, scu_cpu, scp_cpu = runs[pair[0]][-1]
                print(f"  {kind} round {r + 1}: {pair[0]}: {t:.2f} s, CPU SCU {scu_cpu:.2f} s "
                      f"SCP {scp_cpu:.2f} s", flush=True)
        ref = runs.get("DCMTK -> DCMTK") or next(iter(runs.values()))
        pyn = runs.get("pynetdicom -> pynetdicom")
        pyn_app = runs.get("pynetdicom storescu -> storescp (its applications)")

        def ratio(base: list, got: list) -> float:
            # Median over rounds of the same-round ratio: each round's pairs ran back
            # to back, under the same load.
            return statistics.median(b[0] / g[0] for b, g in zip(base, got, strict=True))

        print(f"\n{kind} set: {len(files)} objects, {size:.0f} MB; MB/s and files/s: best "
              f"of {args.rounds} rounds; ratios: median of the per-round throughput ratios")
        print("| pair | MB/s | files/s | x DCMTK pair | x pynetdicom pair "
              "| x pynetdicom applications | CPU s SCU + SCP |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, got in runs.items():
            best = min(t for t, _, _ in got)
            scu_cpu = statistics.median(c for _, c, _ in got)
            scp_cpu = statistics.median(c for _, _, c in got)
            vs_pyn = f"{ratio(pyn, got):.1f}" if pyn else "-"
            vs_app = f"{ratio(pyn_app, got):.1f}" if pyn_app else "-"
            print(f"| {name} | {size / best:.0f} | {len(files) / best:.0f} | "
                  f"{ratio(ref, got):.2f} | {vs_pyn} | {vs_app} | "
                  f"{scu_cpu:.2f} + {scp_cpu:.2f} |")
        print()


if __name__ == "__main__":
    sys.exit(main())
