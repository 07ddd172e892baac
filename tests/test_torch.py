"""dicomfast.torch: DicomDataset and the threaded batch decoder.

Pixel values are compared with pydicom's pixel_array (and pydicom's
apply_modality_lut for rescaled values); DataLoader worker processes are
started with "spawn", so the dataset must really pickle.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import find, require_codec
from pydicom.pixels import apply_modality_lut

torch = pytest.importorskip("torch")

import dicomfast  # noqa: E402
from dicomfast.dataset import Dataset, Sequence  # noqa: E402
from dicomfast.errors import DicomfastError  # noqa: E402
from dicomfast.scan import scan  # noqa: E402
from dicomfast.torch import DicomDataset, decode_batch, rescale_params  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::dicomfast.errors.DicomfastWarning")

J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
NAMES = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
         "emri_small_RLE.dcm", "SC_rgb_rle.dcm"]


def _path(name: str) -> Path:
    p = find(name)
    assert p is not None, name
    return p


def _pydicom_array(path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("name", NAMES)
def test_item_matches_pydicom(name):
    if "jp2k" in name:
        require_codec(J2K_LOSSLESS)
    ds = DicomDataset([_path(name)])
    item = ds[0]
    expected = _pydicom_array(_path(name))
    assert isinstance(item, torch.Tensor)
    assert item.shape == expected.shape
    assert item.dtype == torch.from_numpy(expected).dtype
    assert np.array_equal(item.numpy(), expected)


def test_rescale_matches_pydicom_modality_lut():
    path = _path("CT_small.dcm")
    ref = pydicom.dcmread(path)
    expected = apply_modality_lut(ref.pixel_array, ref)
    assert ref.RescaleIntercept != 0  # the file really rescales
    for dtype, tol in ((None, 1e-4), (torch.float64, 0), (np.float16, 0.5)):
        item = DicomDataset([path], rescale=True, dtype=dtype)[0]
        assert item.dtype == (torch.float32 if dtype is None else
                              torch.float16 if dtype is np.float16 else dtype)
        np.testing.assert_allclose(item.double().numpy(), expected, atol=tol, rtol=1e-3)


def test_rescale_per_frame_functional_groups():
    # Enhanced multi-frame (PS3.3 §C.7.6.16.2.9): a slope and intercept per frame.
    src = dicomfast.read(_path("emri_small.dcm"))
    n = int(src.NumberOfFrames)
    frames = []
    for i in range(n):
        pvt = Dataset()
        pvt.RescaleSlope = i + 1
        pvt.RescaleIntercept = -10 * i
        pvt.RescaleType = "US"
        group = Dataset()
        group.PixelValueTransformationSequence = Sequence([pvt])
        frames.append(group)
    src.PerFrameFunctionalGroupsSequence = Sequence(frames)
    slopes, intercepts = rescale_params(src)
    assert list(slopes) == [i + 1 for i in range(n)]
    raw = torch.from_numpy(_pydicom_array(_path("emri_small.dcm")).astype(np.float64))
    expected = raw * torch.arange(1, n + 1).view(-1, 1, 1) - 10 * torch.arange(n).view(-1, 1, 1)
    got = decode_batch([src], rescale=True, dtype=torch.float64)
    assert torch.equal(got, expected)


def test_dtype_and_transform():
    ds = DicomDataset([_path("MR_small.dcm")], dtype="float32", transform=lambda t: t[None])
    item = ds[0]
    assert item.dtype == torch.float32 and item.shape == (1, 64, 64)
    assert torch.equal(item[0], torch.from_numpy(_pydicom_array(_path("MR_small.dcm"))).float())
    with pytest.raises(IndexError):
        ds[1]


def test_pickles_small_and_loads_in_spawned_workers(tmp_path):
    require_codec(J2K_LOSSLESS)  # half the files are JPEG 2000
    files = []
    for k in range(8):
        name = NAMES[k % 2 + 2]  # RLE and J2K, both 64 x 64 int16
        files.append(tmp_path / f"{k}.dcm")
        shutil.copyfile(_path(name), files[-1])
    ds = DicomDataset(files, dtype=torch.float32)
    assert len(pickle.dumps(ds)) < 4096
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3], ds[3])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2,
                                         multiprocessing_context="spawn", timeout=120)
    batches = list(loader)
    assert len(batches) == 2
    expected = torch.stack([ds[i] for i in range(8)])
    assert torch.equal(torch.cat(batches), expected)


def test_batch_decodes_into_one_buffer(tmp_path):
    require_codec(J2K_LOSSLESS)
    files = [_path("MR_small_RLE.dcm"), _path("MR_small_jp2klossless.dcm"),
             _path("MR_small.dcm")] * 3
    expected = torch.from_numpy(np.stack([_pydicom_array(p) for p in files]))
    got = decode_batch(files, threads=2)
    assert torch.equal(got, expected)
    assert got.is_pinned() == torch.cuda.is_available()
    # The same buffer back: the codecs wrote into its memory.
    again = decode_batch(files, out=got, threads=2)
    assert again is got and again.data_ptr() == got.data_ptr()
    assert torch.equal(again, expected)
    as_float = torch.empty(expected.shape, dtype=torch.float32)
    assert decode_batch(files, out=as_float, dtype=torch.float32) is as_float
    assert torch.equal(as_float, expected.float())
    with pytest.raises(ValueError):
        decode_batch(files, out=torch.empty((2, 64, 64), dtype=torch.int16))
    # Frames of several multi-frame files come one after the other.
    multi = decode_batch([_path("emri_small_RLE.dcm"), _path("emri_small_RLE.dcm")])
    assert multi.shape == (20, 64, 64)
    assert torch.equal(multi[10:], torch.from_numpy(_pydicom_array(_path("emri_small_RLE.dcm"))))


def test_batch_rescale_and_errors():
    ct = _path("CT_small.dcm")
    ref = pydicom.dcmread(ct)
    got = decode_batch([ct, ct], rescale=True)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got[1].numpy(), apply_modality_lut(ref.pixel_array, ref),
                               rtol=1e-6)
    with pytest.raises(ValueError):
        decode_batch([ct], rescale=True, dtype=torch.int16)
    with pytest.raises(DicomfastError):  # 128 x 128 does not stack with 64 x 64
        decode_batch([ct, _path("MR_small.dcm")])


def test_batches_iterate_and_shuffle():
    files = [_path("MR_small_RLE.dcm"), _path("MR_small.dcm"), _path("CT_small.dcm")][:2] * 5
    ds = DicomDataset(files)
    plain = [b.clone() for b in ds.batches(4)]
    assert [len(b) for b in plain] == [4, 4, 2]
    assert torch.equal(torch.cat(plain), torch.stack([ds[i] for i in range(len(ds))]))
    assert [len(b) for b in ds.batches(4, drop_last=True)] == [4, 4]
    g = torch.Generator().manual_seed(0)
    shuffled = torch.cat([b.clone() for b in ds.batches(3, shuffle=True, generator=g)])
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    assert torch.equal(shuffled, torch.stack([ds[i] for i in order]))


def test_scan_table_sources(tmp_path):
    for k, name in enumerate(NAMES[:3]):
        shutil.copyfile(_path(name), tmp_path / f"{k}.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM")
    table = scan(tmp_path, ["Rows"], threads=1)
    assert table.n_errors == 1
    expected = [str(tmp_path / f"{k}.dcm") for k in range(3)]
    for source in (table, table.to_pandas(), table.to_arrow()):
        ds = DicomDataset(source)
        assert list(ds.paths) == expected
        assert torch.equal(ds[2], torch.from_numpy(_pydicom_array(expected[2])))
    assert list(DicomDataset(tmp_path).paths) == [*expected, str(tmp_path / "notes.txt")]
