"""PyTorch DataLoader throughput: dicomfast.torch vs pydicom + pylibjpeg.

    pytest benchmarks/bench_torch.py --benchmark-enable -p no:cacheprovider -s
    python benchmarks/bench_torch.py            # the same, printed as images/s and ratios

Two series of 64 single-frame 512 x 512 16-bit CT images (the corpus's
693_J2KR.dcm, JPEG 2000 lossless, and 693_UNCR.dcm written as RLE Lossless),
read through a DataLoader (batch size 16, 2 worker processes kept alive between
epochs) as float32 tensors:

- dicomfast: ``DicomDataset(paths, dtype=torch.float32)``;
- pydicom + pylibjpeg: a Dataset whose items are
  ``pydicom.pixels.pixel_array(path, decoding_plugin="pylibjpeg")`` as tensors
  (pylibjpeg-openjpeg for J2K, pylibjpeg-rle for RLE);
- dicomfast's batch path, no worker processes: ``DicomDataset.batches(16,
  threads=2)``, each batch decoded on two threads into one reused tensor.

One epoch is timed (the workers started before); one group per series.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from corpus import find  # noqa: E402

import dicomfast  # noqa: E402
from dicomfast.torch import DicomDataset  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

N_IMAGES = 64
BATCH = 16
WORKERS = 2
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


class PydicomDataset(torch.utils.data.Dataset):
    """The peer: pydicom reads, pylibjpeg decodes, torch.from_numpy converts."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from pydicom.pixels import pixel_array

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(self.paths[i], decoding_plugin="pylibjpeg")
        return torch.from_numpy(arr).to(torch.float32)


def make_series(folder: Path) -> dict[str, list[str]]:
    """{series name: paths}: copies of one J2K and one RLE image."""
    j2k = find("693_J2KR.dcm")
    uncompressed = find("693_UNCR.dcm")
    if j2k is None or uncompressed is None:
        pytest.skip("pydicom-data's 693_J2KR.dcm / 693_UNCR.dcm are needed")
    rle = folder / "rle_source.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dicomfast.read(uncompressed).save(rle, transfer_syntax=RLE_LOSSLESS)
    out = {}
    for name, src in (("J2K", j2k), ("RLE", rle)):
        sub = folder / name
        sub.mkdir()
        paths = []
        for k in range(N_IMAGES):
            paths.append(str(sub / f"{k:04d}.dcm"))
            shutil.copyfile(src, paths[-1])
        out[name] = paths
    return out


def _drain(loader) -> int:
    n = 0
    for batch in loader:
        n += len(batch)
    return n


def contenders(paths: list[str]) -> dict[str, object]:
    """name -> a callable that runs one epoch; DataLoaders made (and their workers
    started) here, outside the timing."""
    ours = DicomDataset(paths, dtype=torch.float32)
    theirs = PydicomDataset(paths)
    made = {}
    for name, ds in (("dicomfast DataLoader", ours), ("pydicom + pylibjpeg DataLoader", theirs)):
        loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=WORKERS,
                                             persistent_workers=True, timeout=300)
        _drain(loader)  # start the workers, warm the page cache
        made[name] = (lambda loader=loader: _drain(loader))
    made["dicomfast batches, 2 threads, no workers"] = lambda: sum(
        len(b) for b in ours.batches(BATCH, threads=2))
    return made


def report(seconds: dict[str, float], out=sys.stdout) -> None:
    for series, results in seconds.items():
        print(f"\n{series} series, {N_IMAGES} images of 512 x 512 (best of the rounds):",
              file=out)
        for name, s in results.items():
            print(f"  {name:42s} {N_IMAGES / s:8.0f} images/s", file=out)
        peer = results.get("pydicom + pylibjpeg DataLoader")
        if peer:
            for name, s in results.items():
                if name.startswith("dicomfast"):
                    print(f"  {name}: {peer / s:5.1f}x pydicom + pylibjpeg", file=out)


# -- pytest-benchmark ---------------------------------------------------------------------

RESULTS: dict[str, dict[str, float]] = {}
_TMP = tempfile.TemporaryDirectory(prefix="bench_torch_")


@pytest.fixture(scope="module")
def series():
    return make_series(Path(_TMP.name))


@pytest.fixture(scope="module")
def runs(series):
    made: dict[str, dict[str, object]] = {}

    def get(series_name: str) -> dict[str, object]:
        # One series' loaders (and worker processes) at a time, made when first needed.
        if series_name not in made:
            made.clear()
            made[series_name] = contenders(series[series_name])
        return made[series_name]

    return get


def _run(benchmark, runs, series_name: str, name: str) -> None:
    fn = runs(series_name)[name]
    benchmark.extra_info["images"] = N_IMAGES
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        RESULTS.setdefault(series_name, {})[name] = stats.stats.min


NAMES = ["dicomfast DataLoader", "pydicom + pylibjpeg DataLoader",
         "dicomfast batches, 2 threads, no workers"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.benchmark(group="DataLoader, J2K lossless 512x512 CT series")
def test_dataloader_j2k(benchmark, runs, name):
    _run(benchmark, runs, "J2K", name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.benchmark(group="DataLoader, RLE lossless 512x512 CT series")
def test_dataloader_rle(benchmark, runs, name):
    _run(benchmark, runs, "RLE", name)


def test_report():
    if not RESULTS:
        pytest.skip("run with --benchmark-enable for the figures")
    report(RESULTS)


def main() -> None:
    rounds = 5
    with tempfile.TemporaryDirectory() as tmp:
        best: dict[str, dict[str, float]] = {}
        for series_name, paths in make_series(Path(tmp)).items():
            made = contenders(paths)
            for _ in range(rounds):  # interleaved: a busy moment hits every contender
                for name, fn in made.items():
                    t = time.perf_counter()
                    fn()
                    took = time.perf_counter() - t
                    slot = best.setdefault(series_name, {})
                    slot[name] = min(slot.get(name, float("inf")), took)
        report(best)


if __name__ == "__main__":
    main()
