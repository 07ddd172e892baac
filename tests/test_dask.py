"""dicomfast.dask on a distributed LocalCluster of two worker processes.

The Dask DataFrame must equal the single-process scan of the same files (the
whole test corpus, several partitions, run on both workers); pixel arrays from
the Bag, delayed and Array APIs must equal dicomfast.read's.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from corpus import all_files, find, require_codec

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import dicomfast  # noqa: E402
from dicomfast.dask import file_list, pixel_bag, pixel_delayed, pixel_stack, read_table  # noqa: E402
from dicomfast.scan import scan  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::dicomfast.errors.DicomfastWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TAGS = ["PatientID", "PatientName", "StudyInstanceUID", "Modality", "Rows", "Columns",
        "PixelSpacing", "SliceThickness", "ImageType", "InstanceNumber"]


@pytest.fixture(scope="session")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, death_timeout=60)
    c = distributed.Client(cluster, timeout=60)
    try:
        c.wait_for_workers(2, timeout=60)
        yield c
    finally:
        c.close(timeout=30)
        cluster.close(timeout=30)


def test_table_equals_single_process_scan(client):
    files = [str(p) for p in all_files()]
    frame = read_table(files, TAGS, files_per_partition=max(1, len(files) // 6))
    assert frame.npartitions >= 6
    with distributed.get_task_stream(client) as stream:
        got = frame.compute()
    workers = {t["worker"] for t in stream.data if "dicomfast-scan" in str(t["key"])}
    assert len(workers) == 2  # both worker processes scanned partitions
    expected = scan(files, TAGS, threads=1).to_pandas()
    got = got.reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    assert dict(got.dtypes) == dict(expected.dtypes) == dict(frame.dtypes)
    pd.testing.assert_frame_equal(got, expected)
    assert got["error_type"].notna().sum() == expected["error_type"].notna().sum()


def test_table_from_glob_and_folder(client, tmp_path):
    names = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm"]
    (tmp_path / "sub").mkdir()
    for k, name in enumerate(names):
        shutil.copyfile(find(name), tmp_path / ("sub" if k else "") / f"{k}.dcm")
    (tmp_path / "sub" / "junk.dcm").write_bytes(b"not DICOM at all")
    by_glob = read_table(str(tmp_path / "**" / "*.dcm"), ["Rows"], files_per_partition=1)
    by_folder = read_table(tmp_path, ["Rows"], files_per_partition=2)
    assert by_glob.npartitions == 4 and by_folder.npartitions == 2
    a = by_glob.compute().set_index("path").sort_index()
    b = by_folder.compute().set_index("path").sort_index()
    pd.testing.assert_frame_equal(a, b)
    assert a["error_type"].notna().sum() == 1
    assert a["Rows"].dropna().tolist() == [128, 64, 64]
    assert file_list(str(tmp_path / "*.dcm")) == [str(tmp_path / "0.dcm")]
    empty = read_table(str(tmp_path / "*.none"), ["Rows"]).compute()
    assert len(empty) == 0 and "Rows" in empty.columns


def test_pixels_bag_delayed_and_array(client, tmp_path):
    require_codec("1.2.840.10008.1.2.4.90")  # one file is JPEG 2000
    names = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
             "emri_small_RLE.dcm"]
    files = [str(find(n)) for n in names]
    expected = [dicomfast.read(p).pixel_array for p in files]
    got = pixel_bag(files, files_per_partition=2).compute()
    assert len(got) == 4
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and np.array_equal(g, e)
    pairs = pixel_bag(files, with_paths=True).compute()
    assert [p for p, _ in pairs] == files
    delayed = dask.compute(*pixel_delayed(files))
    assert all(np.array_equal(g, e) for g, e in zip(delayed, expected, strict=True))
    stack = pixel_stack(files[:3] * 3, files_per_chunk=4)
    assert stack.shape == (9, 64, 64) and stack.chunks[0] == (4, 4, 1)
    assert np.array_equal(stack.compute(), np.stack(expected[:3] * 3))
    assert float(stack.mean().compute()) == pytest.approx(np.stack(expected[:3] * 3).mean())
    with pytest.raises(ValueError):
        pixel_stack(files[3:])  # multi-frame


def test_bad_arguments():
    with pytest.raises(ValueError):
        read_table(["x"], ["PatientID"], files_per_partition=0)
    with pytest.raises(ValueError):
        read_table(["x"], ["ReferencedImageSequence"])  # a sequence has no column
