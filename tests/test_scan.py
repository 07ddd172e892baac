"""dicomfast.scan: many files to a table.

The scan of the whole corpus must give, for every file and tag, the value that
dicomfast.read and pydicom give; failures are rows, not exceptions; the table
converts to Arrow, pandas, Parquet and CSV; and a folder of 20,000 files is
scanned in batches with memory that does not grow with the number of files.
"""

from __future__ import annotations

import csv
import os
import resource
import tracemalloc
import warnings
from pathlib import Path

import pydicom
import pytest
from corpus import all_files, file_id, find
from pydicom.multival import MultiValue

import dicomfast
from dicomfast.dataset import Sequence
from dicomfast.errors import DicomfastError, InvalidDicomError
from dicomfast.scan import ScanResult, iter_scan, scan, write_csv, write_parquet

# How a file is encoded (implicit VR under an explicit syntax, odd values) is the
# reader's business and tested elsewhere; here the values must agree.
pytestmark = [pytest.mark.filterwarnings("ignore::dicomfast.errors.DicomfastWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TAGS = ["PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID",
        "SOPInstanceUID", "Modality", "StudyDate", "Rows", "Columns", "ImageType",
        "PixelSpacing", "SliceThickness", "InstanceNumber", "WindowCenter",
        "SpecificCharacterSet", "SmallestImagePixelValue", "StudyDescription",
        "AcquisitionTime"]
MULTI = {"ImageType", "PixelSpacing", "WindowCenter", "SpecificCharacterSet"}
FLOATS = {"PixelSpacing", "SliceThickness", "WindowCenter"}
# SmallestImagePixelValue is "US or SS": Pixel Representation decides (PS3.5 §A.1 c)
INTS = {"Rows", "Columns", "InstanceNumber", "SmallestImagePixelValue"}

FILES = [str(p) for p in all_files()]


def _expected(keyword: str, value):
    """A value as ds.<keyword> gives it (dicomfast or pydicom), in the scan's column type."""
    if value is None or isinstance(value, (Sequence, pydicom.Sequence)):
        return None
    many = isinstance(value, (list, MultiValue))
    items = list(value) if many else [value]

    def one(v):
        if keyword in FLOATS:
            return float(v) if isinstance(v, (int, float)) else None
        if keyword in INTS:
            return int(v) if isinstance(v, int) else None
        return str(v)

    if keyword in MULTI:
        if not many and value == "":
            return []
        return [one(v) for v in items]
    if many:
        return "\\".join(str(v) for v in items) if keyword not in FLOATS | INTS else None
    return one(value)


@pytest.fixture(scope="module")
def corpus_scan() -> ScanResult:
    return scan(FILES, TAGS, threads=2)


def test_every_file_has_a_row_in_order(corpus_scan):
    assert len(corpus_scan) == len(FILES)
    assert corpus_scan.column("path") == FILES
    assert corpus_scan.column("file_size") == [os.path.getsize(p) for p in FILES]


def test_corpus_equals_dicomfast_read(corpus_scan):
    checked = 0
    for row in corpus_scan:
        path = row["path"]
        try:
            ds = dicomfast.read(path, stop_before_pixels=True)
            values = {k: ds.get(k) for k in TAGS}
        except (DicomfastError, ValueError) as exc:
            assert row["error_type"] is not None, (path, exc)
            continue
        assert row["error_type"] is None, (path, row["error"])
        for keyword in TAGS:
            assert row[keyword] == _expected(keyword, values[keyword]), (file_id(Path(path)),
                                                                         keyword)
        ts = ds.file_meta.get("TransferSyntaxUID") if ds.file_meta is not None else None
        assert row["transfer_syntax_uid"] == (None if ts is None else str(ts))
        sop = ds.get("SOPClassUID")
        if sop is None and ds.file_meta is not None:
            sop = ds.file_meta.get("MediaStorageSOPClassUID")
        assert row["sop_class_uid"] == (None if sop is None else str(sop))
        checked += 1
    assert checked >= len(FILES) - 10


def test_corpus_equals_pydicom(corpus_scan):
    checked = 0
    for row in corpus_scan:
        if row["error_type"] is not None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(row["path"], stop_before_pixels=True)
                values = {k: ds.get(k) for k in TAGS}
        except Exception:
            continue  # files pydicom refuses are compared with dicomfast.read above
        for keyword in TAGS:
            assert row[keyword] == _expected(keyword, values[keyword]), (
                file_id(Path(row["path"])), keyword)
        checked += 1
    assert checked >= len(FILES) - 15


def test_failures_are_rows(tmp_path):
    good = str(find("CT_small.dcm"))
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not DICOM at all\n" * 20)
    (tmp_path / "noise.bin").write_bytes(os.urandom(5000))
    # a File Meta group naming a transfer syntax that does not exist
    (tmp_path / "fake.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x08\x00"
                                        + b"1.2.3.4\0" + os.urandom(300))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.dcm").write_bytes(Path(good).read_bytes())
    missing = str(tmp_path / "missing.dcm")

    table = scan([tmp_path, missing], ["PatientID"], threads=2)
    rows = {Path(r["path"]).name: r for r in table}
    assert set(rows) == {"empty.dcm", "notes.txt", "noise.bin", "fake.dcm", "ok.dcm",
                         "missing.dcm"}
    assert rows["ok.dcm"]["error_type"] is None
    assert rows["ok.dcm"]["PatientID"] == dicomfast.read(good).PatientID
    for name in ("empty.dcm", "notes.txt", "noise.bin"):
        assert rows[name]["error_type"] == "InvalidDicomError"
        assert rows[name]["PatientID"] is None and rows[name]["error"]
    assert rows["fake.dcm"]["error_type"] == "UnsupportedTransferSyntaxError"
    assert rows["missing.dcm"]["error_type"] == "FileNotFoundError"
    assert rows["missing.dcm"]["file_size"] is None
    assert rows["notes.txt"]["file_size"] == (tmp_path / "notes.txt").stat().st_size
    assert table.n_errors == 5 and len(table.errors()) == 5

    skipped = scan([tmp_path, missing], ["PatientID"], on_error="skip")
    assert skipped.column("path") == [rows["ok.dcm"]["path"]]
    with pytest.raises(InvalidDicomError):
        scan(tmp_path, ["PatientID"], on_error="raise", threads=1)
    with pytest.raises(ValueError):
        scan(tmp_path, on_error="ignore")


def test_recursive_and_order(tmp_path):
    src = Path(find("CT_small.dcm")).read_bytes()
    for rel in ("b.dcm", "a/z.dcm", "a/b/c.dcm", "c.dcm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(src)
    names = [os.path.relpath(p, tmp_path) for p in scan(tmp_path).column("path")]
    assert names == ["a/b/c.dcm", "a/z.dcm", "b.dcm", "c.dcm"]
    top = [os.path.relpath(p, tmp_path) for p in scan(tmp_path, recursive=False).column("path")]
    assert top == ["b.dcm", "c.dcm"]
    assert len(scan(tmp_path / "nothing-here-either", threads=1)) == 1  # a missing path: a row


def test_tags_by_keyword_tag_or_text():
    path = str(find("CT_small.dcm"))
    ds = dicomfast.read(path)
    table = scan(path, [0x00100020, "(0010,0010)", (0x0028, 0x0010), "Modality", "0x00280011",
                        0x00091001, "Modality"])
    assert table.column_names[4:-2] == ("PatientID", "PatientName", "Rows", "Modality",
                                        "Columns", "(0009,1001)")
    assert table.column("Rows") == table.column(0x00280010) == table.column("(0028,0010)")
    row = next(iter(table))
    assert row["PatientName"] == str(ds.PatientName) and type(row["PatientName"]) is str
    assert row["Rows"] == ds.Rows and row["Columns"] == ds.Columns
    assert row["(0009,1001)"] is None or isinstance(row["(0009,1001)"], str)
    with pytest.raises(KeyError):
        table.column("PatientAge")
    with pytest.raises(ValueError):
        scan(path, ["ReferencedImageSequence"])  # a sequence is no column
    with pytest.raises((KeyError, ValueError)):
        scan(path, ["NoSuchKeyword"])


def test_long_header_and_no_pixel_data(tmp_path):
    """Headers longer than the head the scanner reads first are read in full."""
    ds = dicomfast.read(find("CT_small.dcm"))
    ds.add_new(0x00090010, "LO", "dicomfast test")
    # before (0028,xxxx) and Pixel Data, longer than both heads the scanner tries
    ds.add_new(0x00091011, "OB", os.urandom(1_200_000))
    ds.save(tmp_path / "long.dcm")
    del ds.PixelData
    ds.save(tmp_path / "nopixels.dcm")
    big = dicomfast.read(find("CT_small.dcm"))
    big.add_new(0x7FE10010, "OB", os.urandom(300_000))  # private data after Pixel Data
    big.save(tmp_path / "after.dcm")

    for stop in (True, False):
        table = scan(tmp_path, ["PatientID", "Rows", "Columns", (0x7FE1, 0x0010)],
                     stop_before_pixels=stop)
        assert table.n_errors == 0
        for row in table:
            ref = dicomfast.read(row["path"])
            assert row["Rows"] == ref.Rows and row["PatientID"] == ref.PatientID
            assert row["file_size"] == os.path.getsize(row["path"])
            after = row["(7FE1,0010)"]
            if Path(row["path"]).name == "after.dcm" and not stop:
                assert after == ref[0x7FE10010].value.hex()
            else:
                assert after is None


def test_force_reads_bare_data_sets():
    bare = [str(p) for p in all_files() if p.name in ("ExplVR_LitEndNoMeta.dcm", "no_meta.dcm")]
    if not bare:
        pytest.skip("no bare data sets in the corpus")
    assert scan(bare, ["PatientID"]).n_errors == len(bare)
    forced = scan(bare, ["PatientID"], force=True)
    assert forced.n_errors == 0
    for row in forced:
        assert row["PatientID"] == _expected(
            "PatientID", dicomfast.read(row["path"], force=True).get("PatientID"))
        assert row["transfer_syntax_uid"] is None


def test_threads_batches_and_progress():
    files = FILES[:120]
    one = scan(files, TAGS, threads=1)
    calls = []
    batches = list(iter_scan(files, TAGS, threads=3, batch_size=25,
                             progress=lambda *a: calls.append(a)))
    assert [len(b) for b in batches] == [25, 25, 25, 25, 20]
    rows = [r for b in batches for r in b]
    assert rows == list(one)
    assert calls[-1][0] == len(files) and calls[-1][2] == one.n_errors
    assert calls[-1][1] == sum(s or 0 for s, e in zip(one.column("file_size"),
                                                      one.column("error_type"), strict=True)
                               if e is None)
    assert len(list(iter_scan([], TAGS))) == 1  # an empty scan is one empty batch
    assert len(scan([], TAGS)) == 0


# -- conversions -------------------------------------------------------------------------

def test_to_arrow_pandas_parquet_csv(tmp_path, corpus_scan):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = corpus_scan.to_arrow()
    assert table.num_rows == len(corpus_scan)
    assert table.column_names == list(corpus_scan.column_names)
    assert table.schema.field("Rows").type == pa.int64()
    assert table.schema.field("SliceThickness").type == pa.float64()
    assert table.schema.field("ImageType").type == pa.list_(pa.string())
    assert table.schema.field("PixelSpacing").type == pa.list_(pa.float64())
    assert table.column("PatientName").to_pylist() == corpus_scan.column("PatientName")
    assert table.column("PixelSpacing").to_pylist() == corpus_scan.column("PixelSpacing")

    out = tmp_path / "scan.parquet"
    corpus_scan.to_parquet(out)
    assert pq.read_table(out).equals(table)

    # streamed: one row group per batch, the same table
    streamed = tmp_path / "streamed.parquet"
    n = write_parquet(iter_scan(FILES, TAGS, batch_size=100), streamed)
    assert n == len(FILES)
    assert pq.ParquetFile(streamed).num_row_groups == -(-len(FILES) // 100)
    assert pq.read_table(streamed).equals(table)

    pd = pytest.importorskip("pandas")
    frame = corpus_scan.to_pandas()
    assert list(frame.columns) == list(corpus_scan.column_names)
    assert str(frame["Rows"].dtype) == "Int64" and frame["SliceThickness"].dtype == float
    for name in ("Rows", "PatientID", "ImageType"):
        assert [None if v is pd.NA else v for v in frame[name]] == corpus_scan.column(name)

    path = tmp_path / "scan.csv"
    corpus_scan.to_csv(path)
    with open(path, newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    assert tuple(lines[0]) == corpus_scan.column_names and len(lines) == len(corpus_scan) + 1
    k = corpus_scan.column_names.index("ImageType")
    first = next(i for i, v in enumerate(corpus_scan.column("ImageType")) if v)
    assert lines[first + 1][k] == "\\".join(corpus_scan.column("ImageType")[first])
    assert write_csv(iter_scan(FILES[:10], ["Rows"]), tmp_path / "b.csv") == 10


def test_missing_pyarrow_says_which_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match=r"dicomfast\[arrow\]"):
        scan(FILES[:1]).to_arrow()


# -- many files, flat memory -------------------------------------------------------------

def _streamed_peak(paths) -> tuple[int, int, int]:
    """(rows, failed, traced peak bytes) of a streamed scan."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rows = errors = 0
        for batch in iter_scan(paths, TAGS, threads=2, batch_size=1000):
            assert len(batch) <= 1000
            rows += len(batch)
            errors += batch.n_errors
        return rows, errors, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_20000_files_in_flat_memory(tmp_path, record_property):
    sources = [p for p in all_files() if p.stat().st_size < 64 * 1024][:50]
    folder = tmp_path / "many"
    for k in range(200):
        (folder / f"{k:03d}").mkdir(parents=True)
    n = 20_000
    for k in range(n):
        os.link(sources[k % len(sources)], folder / f"{k % 200:03d}" / f"{k:05d}.dcm")
    bad = {k for k, p in enumerate(sources) if scan(str(p)).n_errors}

    quarter = sorted(folder.iterdir())[:50]
    rows, errors, peak_5000 = _streamed_peak(quarter)
    assert rows == n // 4
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows, errors, peak = _streamed_peak(folder)
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    record_property("scan_5000_tracemalloc_peak_bytes", peak_5000)
    record_property("scan_20000_tracemalloc_peak_bytes", peak)
    record_property("scan_20000_rss_growth_kib", rss_growth_kib)
    print(f"\nstreamed scan: traced peak {peak_5000 / 2**20:.1f} MiB for 5,000 files, "
          f"{peak / 2**20:.1f} MiB for 20,000; peak RSS growth {rss_growth_kib / 1024:.1f} MiB")
    assert rows == n
    assert errors == sum(1 for k in range(n) if k % len(sources) in bad)
    # Flat: four times the files, not four times the memory (one batch of 1,000 rows
    # plus the chunks in flight either way; when those peak together varies).
    assert peak < 2 * peak_5000 + 2**20
    assert peak < 16 * 2**20
    assert rss_growth_kib < 64 * 1024


# -- the command line --------------------------------------------------------------------

def _cli(argv, stream):
    import argparse

    from dicomfast.scan_cli import add_subcommands

    parser = argparse.ArgumentParser(prog="dicomfast")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, stream=stream)


def test_cli_scan(tmp_path):
    import io

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (folder / name).write_bytes(Path(find(name)).read_bytes())
    (folder / "readme.txt").write_text("hello")
    out = tmp_path / "index.csv"
    log = io.StringIO()
    assert _cli(["scan", str(folder), "--tags", "PatientID,(0028,0010)", "--out", str(out),
                 "--threads", "2"], log) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in rows] == ["CT_small.dcm", "MR_small.dcm", "readme.txt"]
    assert rows[0]["Rows"] == str(dicomfast.read(folder / "CT_small.dcm").Rows)
    assert rows[2]["error_type"] == "InvalidDicomError"
    assert "3 files" in log.getvalue() and "1 failed (1 InvalidDicomError)" in log.getvalue()

    if pytest.importorskip("pyarrow"):
        import pyarrow.parquet as pq

        assert _cli(["scan", str(folder), "--out", str(tmp_path / "t.parquet")], log) == 0
        assert pq.read_table(tmp_path / "t.parquet").num_rows == 3
    assert _cli(["scan", str(folder), "--out", str(tmp_path / "t.xlsx")], log) == 2
    assert _cli(["scan", str(folder), "--tags", "NoSuchKeyword", "--out", str(out)], log) == 2
