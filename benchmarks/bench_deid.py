"""De-identification speed: dicomfast vs dicognito and vs a pydicom script doing the same
actions, on copies of the corpus, in the same run: file to file (what a user waits
for: the file system's cost is in it), and bytes to bytes in memory (the work itself).

    pytest benchmarks/bench_deid.py --benchmark-enable -p no:cacheprovider
    python benchmarks/bench_deid.py            # prints the ratios

DICOMFAST_BENCH_DEID_FILES sets how many files (copies of the corpus files both
libraries read, cycled; default 1000; the issue's figure is for 10000), and
DICOMFAST_BENCH_DEID_ROUNDS how many rounds main() runs (default 3): ratios are
the median of the rounds' own ratios. DICOMFAST_BENCH_DEID_DIR puts the copies and
the outputs in that folder (default: the system's temporary folder), to time the
storage that matters to you.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from corpus import all_files  # noqa: E402

import dicomfast  # noqa: E402
from dicomfast.deid import Deidentifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
N_FILES = int(os.environ.get("DICOMFAST_BENCH_DEID_FILES", "1000"))
GROUP = f"de-identify {N_FILES} corpus files, file to file"
GROUP_MEM = f"de-identify {N_FILES} corpus files, bytes to bytes in memory"


def _usable() -> list[Path]:
    """Corpus files every peer de-identifies without an error (dicognito stops on
    some odd values the corpus has on purpose)."""
    out = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        for path in all_files():
            try:
                ds = dicomfast.read(path)
                if not ds.get("SOPInstanceUID") or ds.get("BurnedInAnnotation") == "YES":
                    continue
                for fn in (run_dicomfast, run_dicognito, run_pydicom_same_actions):
                    fn([path], Path(tmp))
            except Exception:
                continue
            out.append(path)
    return out


def make_copies(folder: Path, n: int = N_FILES) -> list[Path]:
    """`n` files: the usable corpus files copied, cycled, each under its own name, in
    folders of 100 as series are (a folder per file would time mostly the making of
    the command's output folders: a mkdir costs as much as writing a file here)."""
    sources = _usable()
    copies = []
    for k in range(n):
        dst = folder / f"{k // 100:03d}" / f"{k:05d}-{sources[k % len(sources)].name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[k % len(sources)], dst)
        copies.append(dst)
    return copies


def run_dicomfast(files: list[Path], out: Path) -> None:
    deid = Deidentifier(burned_in="ignore")
    for k, path in enumerate(files):
        deid.write_deidentified(path, out / f"{k:05d}.dcm")


def run_dicomfast_cli(files: list[Path], out: Path) -> None:
    """`dicomfast deid IN OUT` on the folder the copies are in, as a user runs it: its
    own process, one worker process per CPU (--jobs), start-up included."""
    import subprocess

    subprocess.run([sys.executable, "-m", "dicomfast", "deid", str(files[0].parent.parent),
                    str(out / "tree"), "--burned-in", "ignore",
                    "--jobs", str(os.cpu_count() or 1)], check=True, capture_output=True)


def run_dicognito(files: list[Path], out: Path) -> None:
    try:
        from dicognito.anonymizer import Anonymizer
    except ImportError:
        return

    anonymizer = Anonymizer()
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / f"{k:05d}.dcm")


def run_pydicom_same_actions(files: list[Path], out: Path) -> None:
    """The Basic Profile as dicomfast resolves it (X, Z, D, U, private removal), applied
    with pydicom: the same actions, the other library's read/modify/write."""
    deid = Deidentifier()
    dummies = {"PN": "ANONYMIZED", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "DA": "19000101",
               "TM": "000000", "DT": "19000101000000", "CS": "ANONYMIZED", "AE": "ANONYMIZED"}

    def walk(ds: pydicom.Dataset) -> None:
        ds.remove_private_tags()
        for el in list(ds):
            tag = int(el.tag)
            action = deid._action(tag)
            if el.VR == "SQ" and action in (None, "K", "C", "D", "U*"):
                for item in el.value:
                    walk(item)
            elif action == "X" or (action is None and not tag & 0xFFFF):
                del ds[el.tag]
            elif action == "Z":
                el.value = None
            elif action in ("U", "U*") or (action == "D" and el.VR == "UI"):
                if el.value:
                    el.value = deid.uid_map[str(el.value)] if el.VM == 1 else [
                        deid.uid_map[str(v)] for v in el.value]
            elif action == "D":
                el.value = dummies.get(el.VR, "0" if el.VR in ("IS", "DS") else el.value)

    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        walk(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(out / f"{k:05d}.dcm")


def _empty(folder: Path) -> None:
    """Free a run's output space but keep its files. On ext4 without a journal,
    inodes freed recently are skipped one by one at every later file creation in
    their group (the kernel's recently_deleted(); here it lasted many minutes
    after a deletion), and a run that deleted 10,000 files added 100-300 us to
    each file the next peer created: a cost of the previous run, not of that
    peer. Everything is removed at the end."""
    for path in folder.rglob("*"):
        if path.is_file():
            os.truncate(path, 0)


def memory_runs(files: list[Path]) -> dict:
    """The three peers on the files' bytes, writing to memory."""
    import io

    blobs = [p.read_bytes() for p in files]

    def ours() -> None:
        deid = Deidentifier(burned_in="ignore")
        for blob in blobs:
            deid.deidentify_bytes(blob)

    def ours_dataset() -> None:
        """Through the Dataset API: read, de-identify, write."""
        deid = Deidentifier(burned_in="ignore")
        for blob in blobs:
            ds = dicomfast.read(blob)
            deid.deidentify(ds)
            ds.to_bytes()

    def dicognito() -> None:
        from dicognito.anonymizer import Anonymizer

        anonymizer = Anonymizer()
        for blob in blobs:
            ds = pydicom.dcmread(io.BytesIO(blob))
            anonymizer.anonymize(ds)
            ds.save_as(io.BytesIO())

    return {"dicomfast": ours, "dicomfast, Dataset API": ours_dataset, "dicognito": dicognito}


@pytest.fixture(scope="module")
def corpus_copies(tmp_path_factory):
    return make_copies(tmp_path_factory.mktemp("deid-in"))


def _bench(benchmark, fn, files, tmp_path_factory):
    def once():
        out = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
        fn(files, out)
    benchmark.pedantic(once, rounds=3, iterations=1)


@pytest.mark.benchmark(group=GROUP)
def test_deid_dicomfast(benchmark, corpus_copies, tmp_path_factory):
    _bench(benchmark, run_dicomfast, corpus_copies, tmp_path_factory)


@pytest.mark.benchmark(group=GROUP)
def test_deid_dicomfast_command(benchmark, corpus_copies, tmp_path_factory):
    _bench(benchmark, run_dicomfast_cli, corpus_copies, tmp_path_factory)


@pytest.mark.benchmark(group=GROUP)
def test_deid_dicognito(benchmark, corpus_copies, tmp_path_factory):
    pytest.importorskip("dicognito")
    _bench(benchmark, run_dicognito, corpus_copies, tmp_path_factory)


@pytest.mark.benchmark(group=GROUP)
def test_deid_pydicom_same_actions(benchmark, corpus_copies, tmp_path_factory):
    _bench(benchmark, run_pydicom_same_actions, corpus_copies, tmp_path_factory)


@pytest.mark.benchmark(group=GROUP_MEM)
def test_deid_in_memory_dicomfast(benchmark, corpus_copies):
    benchmark.pedantic(memory_runs(corpus_copies)["dicomfast"], rounds=3, iterations=1)


@pytest.mark.benchmark(group=GROUP_MEM)
def test_deid_in_memory_dicomfast_dataset_api(benchmark, corpus_copies):
    benchmark.pedantic(memory_runs(corpus_copies)["dicomfast, Dataset API"], rounds=3,
                       iterations=1)


@pytest.mark.benchmark(group=GROUP_MEM)
def test_deid_in_memory_dicognito(benchmark, corpus_copies):
    pytest.importorskip("dicognito")
    benchmark.pedantic(memory_runs(corpus_copies)["dicognito"], rounds=3, iterations=1)


def main() -> None:
    warnings.simplefilter("ignore")
    rounds = int(os.environ.get("DICOMFAST_BENCH_DEID_ROUNDS", "3"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("DICOMFAST_BENCH_DEID_DIR")) as tmp:
        files = make_copies(Path(tmp) / "in")
        size = sum(p.stat().st_size for p in files) / 1e6
        print(f"{len(files)} files, {size:.0f} MB; {rounds} rounds, peers interleaved in each")
        runs = {"dicomfast": run_dicomfast, "dicomfast deid command": run_dicomfast_cli,
                "dicognito": run_dicognito,
                "pydicom, same actions": run_pydicom_same_actions,
                "plain byte copy": lambda fs, out: [
                    shutil.copyfile(p, out / f"{k:05d}.dcm") for k, p in enumerate(fs)]}
        memory = memory_runs(files)
        times: dict[str, list[float]] = {name: [] for name in runs}
        mem_times: dict[str, list[float]] = {name: [] for name in memory}
        for _ in range(rounds):
            for name, fn in runs.items():
                out = Path(tempfile.mkdtemp(dir=tmp))
                # The previous peer's outputs on the disk first: past a share of the
                # memory, dirty pages make the kernel pause whoever writes next
                # (balance_dirty_pages), which would charge them to this peer.
                os.sync()
                start = time.perf_counter()
                fn(files, out)
                times[name].append(time.perf_counter() - start)
                _empty(out)
            for name, fn in memory.items():
                start = time.perf_counter()
                fn()
                mem_times[name].append(time.perf_counter() - start)
        for label, table in (("file to file", times), ("in memory   ", mem_times)):
            for name, t in table.items():
                print(f"{label}  {name:24s} {min(t):8.2f} s  {len(files) / min(t):9.0f} files/s"
                      " (best round)")

        def ratio(table: dict[str, list[float]], slow: str, fast: str) -> str:
            # Each round's peers ran back to back: the ratio within a round is what
            # the machine's changing load disturbs least.
            per_round = sorted(a / b for a, b in zip(table[slow], table[fast], strict=True))
            return (f"{statistics.median(per_round):.1f}x (rounds: "
                    f"{', '.join(f'{r:.1f}' for r in per_round)}; best round against "
                    f"best round: {min(table[slow]) / min(table[fast]):.1f}x)")

        for name in ("dicognito", "pydicom, same actions"):
            print(f"file to file: dicomfast {ratio(times, name, 'dicomfast')} faster than {name}")
        print(f"file to file: the dicomfast deid command ({os.cpu_count()} processes) "
              f"{ratio(times, 'dicognito', 'dicomfast deid command')} faster than dicognito "
              "in one")
        print(f"in memory: dicomfast {ratio(mem_times, 'dicognito', 'dicomfast')} faster than "
              "dicognito")
        print("in memory, through the Dataset API: dicomfast "
              f"{ratio(mem_times, 'dicognito', 'dicomfast, Dataset API')} faster than dicognito")
        copy_share = statistics.median(
            c / d for c, d in zip(times["plain byte copy"], times["dicognito"], strict=True))
        print(f"(copying the bytes alone takes {copy_share:.0%} of dicognito's file-to-file time)")


if __name__ == "__main__":
    main()
