"""VOI LUT speed: dicomfast.pixels.luts vs pydicom's apply_voi_lut on a 512 x 512 x 300
CT volume (int16, Rescale Slope 1 / Intercept -1024, a 40/400 window), same run.

    pytest benchmarks/bench_luts.py --benchmark-enable -p no:cacheprovider
    python benchmarks/bench_luts.py            # prints the ratios

Groups: the window on stored int16 values (dicomfast tabulates the 65536 values
an int16 can hold, then gathers), on float64 Hounsfield units (a fused
multiply-add-clip in cache-sized blocks), and the Modality LUT then the window
(one table for both). The float64 results equal pydicom's exactly for integer
input and to a few ulp for float input (see tests/test_luts.py).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut as pd_modality
from pydicom.pixels import apply_voi_lut as pd_voi

from dicomfast.pixels import luts

SHAPE = (300, 512, 512)


def volume() -> tuple[np.ndarray, Dataset]:
    rng = np.random.default_rng(0)
    arr = rng.integers(-1024, 3072, SHAPE, dtype=np.int16)
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -1024
    return arr, ds


ARR, DS = volume()
HU = pd_modality(ARR, DS)
OUT = np.empty(SHAPE, np.float64)


def cases() -> dict[str, dict[str, object]]:
    return {
        "window on stored int16": {
            "pydicom": lambda: pd_voi(ARR, DS),
            "dicomfast": lambda: luts.apply_voi_lut(ARR, DS),
            "dicomfast out=": lambda: luts.apply_voi_lut(ARR, DS, out=OUT),
            "dicomfast uint8": lambda: luts.apply_voi_lut(ARR, DS, dtype=np.uint8),
        },
        "window on float64 HU": {
            "pydicom": lambda: pd_voi(HU, DS),
            "dicomfast": lambda: luts.apply_voi_lut(HU, DS),
            "dicomfast out=": lambda: luts.apply_voi_lut(HU, DS, out=OUT),
            "dicomfast float32": lambda: luts.apply_voi_lut(HU, DS, dtype=np.float32),
        },
        "modality LUT then window": {
            "pydicom": lambda: pd_voi(pd_modality(ARR, DS), DS),
            "dicomfast": lambda: luts.apply_modality_voi_lut(ARR, DS),
        },
    }


CASES = cases()
PARAMS = [(group, name) for group, runs in CASES.items() for name in runs]


@pytest.mark.parametrize("group, name", PARAMS, ids=[f"{g}-{n}" for g, n in PARAMS])
def test_voi(benchmark, group, name):
    benchmark.group = f"VOI, 512x512x300: {group}"
    benchmark.pedantic(CASES[group][name], rounds=3, iterations=1, warmup_rounds=1)


def main() -> None:
    for group, runs in CASES.items():
        best = {}
        for _ in range(3):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        print(group)
        for name, t in best.items():
            ratio = best["pydicom"] / t
            print(f"  {name:20s} {t * 1000:8.1f} ms   {ratio:5.1f}x pydicom")


if __name__ == "__main__":
    main()
