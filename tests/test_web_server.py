"""The DICOMweb origin server end to end over real HTTP (uvicorn on a loopback port),
driven by urllib3 and checked against pydicom (values, pixels) and Pillow (images)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pydicom = pytest.importorskip("pydicom")
urllib3 = pytest.importorskip("urllib3")

from corpus import pydicom_data_dir, pydicom_test_dir, require_codec  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicomfast.web import create_app  # noqa: E402
from dicomfast.web.multipart import (  # noqa: E402
    boundary_of,
    iter_multipart,
    make_boundary,
    write_multipart,
)
from dicomfast.web.server import BackgroundServer  # noqa: E402

# (file, where): native, RLE, JPEG 2000 lossless, JPEG lossless RGB, RLE RGB multi-frame.
SOURCES = [("CT_small.dcm", "test"), ("MR_small_RLE.dcm", "test"),
           ("MR_small_jp2klossless.dcm", "test"), ("SC_rgb_jpeg_gdcm.dcm", "test"),
           ("SC_rgb_rle_2frame.dcm", "test"), ("rtdose.dcm", "test")]
DICOM = 'multipart/related; type="application/dicom"'


def corpus_file(name: str, where: str = "test") -> Path:
    root = pydicom_test_dir() if where == "test" else pydicom_data_dir()
    if root is None or not (root / name).exists():
        pytest.skip(f"corpus file {name} not installed")
    return root / name


def make_study(folder: Path, patient_id: str, names=SOURCES, series_per_file: bool = True,
               **attrs) -> list[Path]:
    """Copies of corpus files as one new study (new UIDs, the transfer syntax kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    series = generate_uid()
    out = []
    for k, (name, where) in enumerate(names):
        ds = pydicom.dcmread(corpus_file(name, where))
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid() if series_per_file else series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = patient_id
        ds.PatientName = attrs.get("PatientName", f"Test^{patient_id}")
        ds.StudyDate = attrs.get("StudyDate", "20240105")
        ds.InstanceNumber = k + 1
        if "Modality" not in ds:
            ds.Modality = "OT"
        path = folder / f"{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def stow_body(paths: list[Path]) -> tuple[bytes, str]:
    boundary = make_boundary()
    body = b"".join(write_multipart([("application/dicom", p.read_bytes()) for p in paths],
                                    boundary))
    return body, f'{DICOM}; boundary={boundary}'


def parts_of(response) -> list:
    return list(iter_multipart([response.data], boundary_of(response.headers["Content-Type"])))


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm"))


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "archive"
    app = create_app(root, max_body_size=8 << 20, max_part_size=4 << 20)
    with BackgroundServer(app) as srv:
        srv.root = root
        srv.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(30, 30))
        srv.base = srv.url + "/dicom-web"
        yield srv


@pytest.fixture()
def stored(server, tmp_path):
    """Two studies stored over STOW-RS; returns (server, {patient: paths})."""
    studies = {"PAT-A": make_study(tmp_path / "a", "PAT-A", StudyDate="20240105"),
               "PAT-B": make_study(tmp_path / "b", "PAT-B", names=SOURCES[:2],
                                   PatientName="Other^Person", StudyDate="20231201")}
    for paths in studies.values():
        body, ctype = stow_body(paths)
        r = server.http.request("POST", server.base + "/studies", body=body,
                                headers={"Content-Type": ctype})
        assert r.status == 200, r.data
    return server, studies


def get(server, path, accept=None, **fields):
    headers = {"Accept": accept} if accept else {}
    return server.http.request("GET", server.base + path if path.startswith("/") else path,
                               fields=fields or None, headers=headers)


def uid(obj, tag):
    return obj[tag]["Value"][0]


# -- end to end ----------------------------------------------------------------------------

def test_stow_qido_wado_end_to_end(stored):
    require_codec("1.2.840.10008.1.2.4.90")  # SOURCES holds a JPEG 2000 file
    server, studies = stored
    paths = studies["PAT-A"]
    sources = {pydicom.dcmread(p).SOPInstanceUID: p for p in paths}
    r = get(server, "/studies", PatientID="PAT-A")
    assert r.status == 200 and r.headers["Content-Type"] == "application/dicom+json"
    found = json.loads(r.data)
    assert len(found) == 1
    study = uid(found[0], "0020000D")
    assert study == pydicom.dcmread(paths[0]).StudyInstanceUID
    assert uid(found[0], "00201208") == len(paths)          # NumberOfStudyRelatedInstances
    assert found[0]["00100010"]["Value"][0] == {"Alphabetic": "Test^PAT-A"}

    # WADO-RS study retrieve with transfer-syntax=*: every instance, byte-identical
    # to what was stored.
    r = get(server, f"/studies/{study}", accept=DICOM + "; transfer-syntax=*")
    assert r.status == 200
    parts = parts_of(r)
    assert len(parts) == len(paths)
    for part in parts:
        ds = pydicom.dcmread(io.BytesIO(part.data))
        assert part.data == sources[ds.SOPInstanceUID].read_bytes()
        assert f"transfer-syntax={ds.file_meta.TransferSyntaxUID}" in part.content_type

    # With no transfer-syntax parameter: Explicit VR Little Endian (PS3.18 §8.7.3.5.2),
    # the same pixels.
    r = get(server, f"/studies/{study}", accept=DICOM)
    assert r.status == 200
    parts = parts_of(r)
    assert len(parts) == len(paths)
    for part in parts:
        ds = pydicom.dcmread(io.BytesIO(part.data))
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert "transfer-syntax=1.2.840.10008.1.2.1" in part.content_type
        ref = pydicom.dcmread(sources[ds.SOPInstanceUID])
        if "PixelData" in ref:
            np.testing.assert_array_equal(ds.pixel_array, ref.pixel_array)

    # Frames: pixel-exact against pydicom, native samples (octet-stream).
    for sop, path in sources.items():
        ref = pydicom.dcmread(path)
        expected = ref.pixel_array
        n = int(ref.get("NumberOfFrames") or 1)
        series = ref.SeriesInstanceUID
        numbers = ",".join(str(i) for i in range(1, n + 1))
        r = get(server, f"/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}",
                accept='multipart/related; type="application/octet-stream"')
        assert r.status == 200, r.data
        frames = parts_of(r)
        assert len(frames) == n
        shape = expected.shape[1:] if n > 1 else expected.shape
        dtype = expected.dtype.newbyteorder("<")
        for i, frame in enumerate(frames):
            got = np.frombuffer(frame.data, dtype).reshape(shape)
            assert np.array_equal(got, expected[i] if n > 1 else expected), (path.name, i)


def test_frames_as_stored_and_transcoded(stored):
    require_codec("1.2.840.10008.1.2.4.90")  # SOURCES holds a JPEG 2000 file
    server, studies = stored
    by_ts = {}
    for p in studies["PAT-A"]:
        ds = pydicom.dcmread(p)
        by_ts[str(ds.file_meta.TransferSyntaxUID)] = ds
    j2k = by_ts["1.2.840.10008.1.2.4.90"]
    url = (f"/studies/{j2k.StudyInstanceUID}/series/{j2k.SeriesInstanceUID}/instances/"
           f"{j2k.SOPInstanceUID}/frames/1")
    # As stored: the JPEG 2000 codestream pydicom finds in the file.
    r = get(server, url, accept='multipart/related; type="image/jp2"')
    assert r.status == 200
    (part,) = parts_of(r)
    assert part.content_type.startswith("image/jp2")
    stored_frame = next(pydicom.encaps.generate_frames(j2k.PixelData, number_of_frames=1))
    assert part.data.rstrip(b"\0") == stored_frame.rstrip(b"\0")
    # Transcoded on request: RLE Lossless, decoded by pydicom, equals the original pixels.
    r = get(server, url, accept='multipart/related; type="image/dicom-rle"')
    assert r.status == 200, r.data
    (part,) = parts_of(r)
    assert "transfer-syntax=1.2.840.10008.1.2.5" in part.content_type
    check = pydicom.dcmread(io.BytesIO(_save(j2k)))
    check.PixelData = encapsulate([part.data])
    check.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.5"
    assert np.array_equal(check.pixel_array, j2k.pixel_array)
    # Something we cannot produce: 406.
    r = get(server, url, accept='multipart/related; type="video/mpeg"')
    assert r.status == 406


def _save(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_instance_retrieve_transcoded(stored):
    server, studies = stored
    ds = pydicom.dcmread(studies["PAT-A"][1])  # RLE
    url = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/" \
          f"{ds.SOPInstanceUID}"
    r = get(server, url, accept=f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.1")
    assert r.status == 200
    (part,) = parts_of(r)
    got = pydicom.dcmread(io.BytesIO(part.data))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(got.pixel_array, ds.pixel_array)
    assert get(server, url, accept=f"{DICOM}; transfer-syntax=1.2.3.4").status == 406
    assert get(server, url, accept="text/html").status == 406


def test_metadata_and_bulk_data(stored):
    server, studies = stored
    ref = pydicom.dcmread(studies["PAT-A"][0])
    r = get(server, f"/studies/{ref.StudyInstanceUID}/series/{ref.SeriesInstanceUID}/metadata")
    assert r.status == 200
    (meta,) = json.loads(r.data)
    expected = ref.to_json_dict(bulk_data_threshold=1 << 30)
    for key in ("00100020", "0020000D", "00080018", "00280010", "00280030", "00200032"):
        assert meta[key] == expected[key], key
    uri = meta["7FE00010"]["BulkDataURI"]
    r = get(server, uri, accept='multipart/related; type="application/octet-stream"')
    assert r.status == 200
    (part,) = parts_of(r)
    assert part.data == ref.PixelData
    # A path that names no element, or steps outside the instance, is a 404.
    assert get(server, uri.rsplit("/", 1)[0] + "/00091234").status == 404
    assert get(server, uri.rsplit("/", 1)[0] + "/7FE00010/0/00080018").status == 404


def test_rendered_png_and_jpeg(stored):
    PIL = pytest.importorskip("PIL.Image")
    server, studies = stored
    ref = pydicom.dcmread(studies["PAT-A"][0])
    url = f"/studies/{ref.StudyInstanceUID}/series/{ref.SeriesInstanceUID}/instances/" \
          f"{ref.SOPInstanceUID}"
    r = get(server, url + "/rendered", accept="image/png")
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    img = PIL.open(io.BytesIO(r.data))
    assert img.size == (ref.Columns, ref.Rows)
    r = get(server, url + "/frames/1/rendered?window=40,400", accept="image/jpeg")
    assert r.status == 200 and r.data[:2] == b"\xff\xd8"
    assert PIL.open(io.BytesIO(r.data)).size == (ref.Columns, ref.Rows)
    assert get(server, url + "/rendered?window=abc").status == 400
    assert get(server, url + "/frames/2/rendered").status == 404
    assert get(server, url + "/rendered", accept="image/gif").status == 406


def _image(r):
    PIL = pytest.importorskip("PIL.Image")
    assert r.status == 200, r.data[:200]
    return PIL.open(io.BytesIO(r.data))


def test_rendered_viewport(stored):
    """viewport=vw,vh scales the image to fit, its aspect kept; sx,sy,sw,sh takes a
    region first; what would flip the image, or lies outside it, is a 400."""
    server, studies = stored
    ref = pydicom.dcmread(studies["PAT-A"][0])           # CT_small, 128 x 128
    url = f"/studies/{ref.StudyInstanceUID}/series/{ref.SeriesInstanceUID}/instances/" \
          f"{ref.SOPInstanceUID}/rendered"
    full = np.asarray(_image(get(server, url, accept="image/png"))).astype(int)
    assert _image(get(server, url + "?viewport=64,32", accept="image/png")).size == (32, 32)
    half = np.asarray(_image(get(server, url + "?viewport=64,64", accept="image/png")))
    # Scaled down by 2: each pixel the mean of a 2 x 2 block of the full render.
    blocks = full.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(half.astype(int) - blocks).max() <= 1
    region = _image(get(server, url + "?viewport=20,40,10,20,20,40", accept="image/png"))
    assert region.size == (20, 40)
    np.testing.assert_array_equal(np.asarray(region), full[20:60, 10:30])
    for bad in ("0,64", "64", "64,64,0,0,-10,10", "99999,64", "a,b"):
        assert get(server, url + f"?viewport={bad}", accept="image/png").status == 400, bad
    assert get(server, url + "?viewport=10,10,500,500,10,10", accept="image/png").status == 400


def test_thumbnails(stored):
    """A study's and a series' thumbnail show their representative image (the lowest
    numbered series' middle instance), an instance's its middle frame; at most 128
    pixels a side unless a viewport asks otherwise; 404 where there is no image."""
    require_codec("1.2.840.10008.1.2.4.90")  # SOURCES holds a JPEG 2000 file
    server, studies = stored
    study = pydicom.dcmread(studies["PAT-A"][0]).StudyInstanceUID
    base = f"/studies/{study}"
    thumb = _image(get(server, base + "/thumbnail", accept="image/jpeg"))
    assert thumb.format == "JPEG" and max(thumb.size) <= 128
    # Every file of PAT-A is its own series; the lowest series number holds the image.
    refs = [pydicom.dcmread(p) for p in studies["PAT-A"]]
    first = min((r for r in refs if "PixelData" in r),
                key=lambda r: (int(r.get("SeriesNumber") or 0), r.SeriesInstanceUID))
    series_url = f"{base}/series/{first.SeriesInstanceUID}"
    instance_url = f"{series_url}/instances/{first.SOPInstanceUID}"
    same = [get(server, u + "/thumbnail", accept="image/png").data
            for u in (base, series_url, instance_url)]
    assert same[0] == same[1] == same[2]
    multi = next(r for r in refs if int(r.get("NumberOfFrames") or 1) > 1)
    multi_url = f"{base}/series/{multi.SeriesInstanceUID}/instances/{multi.SOPInstanceUID}"
    n = int(multi.NumberOfFrames)
    middle = get(server, multi_url + f"/frames/{(n - 1) // 2 + 1}/thumbnail",
                 accept="image/png").data
    assert get(server, multi_url + "/thumbnail", accept="image/png").data == middle
    big = _image(get(server, instance_url + "/thumbnail?viewport=300,300", accept="image/png"))
    assert max(big.size) == 300
    assert get(server, f"/studies/{generate_uid()}/thumbnail").status == 404


# -- QIDO-RS -----------------------------------------------------------------------------------

def test_qido_matching_paging_and_includefield(stored):
    server, studies = stored
    everything = json.loads(get(server, "/studies").data)
    assert len(everything) == 2
    assert {uid(s, "00100020") for s in everything} == {"PAT-A", "PAT-B"}
    assert len(json.loads(get(server, "/studies", PatientName="other*").data)) == 1
    assert len(json.loads(get(server, "/studies", StudyDate="20240101-").data)) == 1
    assert len(json.loads(get(server, "/studies", **{"00100020": "PAT-B"}).data)) == 1
    assert json.loads(get(server, "/studies", PatientID="NOBODY").data) == []
    # limit / offset page through the same ordering.
    all_instances = json.loads(get(server, "/instances").data)
    assert len(all_instances) == len(studies["PAT-A"]) + len(studies["PAT-B"])
    pages = []
    for offset in range(0, len(all_instances), 3):
        pages += json.loads(get(server, "/instances", limit="3", offset=str(offset)).data)
    assert [uid(i, "00080018") for i in pages] == [uid(i, "00080018") for i in all_instances]
    # Series of one study; study attributes of the path are not repeated as defaults.
    ref = pydicom.dcmread(studies["PAT-A"][0])
    series = json.loads(get(server, f"/studies/{ref.StudyInstanceUID}/series").data)
    assert len(series) == len(studies["PAT-A"])
    assert all("00201209" in s for s in series)
    # includefield: an indexed key and one read from the file header.
    r = get(server, f"/studies/{ref.StudyInstanceUID}/series/{ref.SeriesInstanceUID}/instances",
            includefield="00280030,StudyDescription")
    (inst,) = json.loads(r.data)
    assert inst["00280030"]["Value"] == [float(v) for v in ref.PixelSpacing]
    assert inst["00080018"]["Value"] == [ref.SOPInstanceUID]
    # Series-level search across studies filters on a study-level key.
    rows = json.loads(get(server, "/series", PatientID="PAT-B").data)
    assert len(rows) == 2 and all(uid(s, "00100020") == "PAT-B" for s in rows)


def test_qido_warnings_and_errors(stored):
    server, _ = stored
    r = get(server, "/studies", fuzzymatching="true")
    assert r.status == 200 and "299" in r.headers["Warning"]
    r = get(server, "/instances", PixelSpacing="1")  # not indexed: ignored, with a warning
    assert r.status == 200 and "PixelSpacing" in r.headers["Warning"]
    assert get(server, "/studies", NotAKeyword="1").status == 400
    assert get(server, "/studies", limit="-1").status == 400
    assert get(server, "/studies", fuzzymatching="maybe").status == 400
    assert get(server, "/studies", accept="application/xml").status == 406


# -- STOW-RS failures ---------------------------------------------------------------------------

def test_stow_partial_and_mismatched_study(server, tmp_path):
    paths = make_study(tmp_path / "s", "PAT-S", names=SOURCES[:2])
    boundary = make_boundary()
    body = b"".join(write_multipart([("application/dicom", paths[0].read_bytes()),
                                     ("application/dicom", b"not dicom at all"),
                                     ("application/dicom", paths[1].read_bytes())], boundary))
    r = server.http.request("POST", server.base + "/studies", body=body,
                            headers={"Content-Type": f"{DICOM}; boundary={boundary}"})
    assert r.status == 202
    answer = json.loads(r.data)
    assert len(answer["00081199"]["Value"]) == 2
    (failed,) = answer["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xC000]
    assert len(stored_files(server.root)) == 2
    # A study URL that does not match: nothing stored, 409, reason per instance.
    other = make_study(tmp_path / "o", "PAT-O", names=SOURCES[:1])
    body, ctype = stow_body(other)
    r = server.http.request("POST", server.base + "/studies/1.2.3.4", body=body,
                            headers={"Content-Type": ctype})
    assert r.status == 409
    (failed,) = json.loads(r.data)["00081198"]["Value"]
    assert failed["00081155"]["Value"] == [pydicom.dcmread(other[0]).SOPInstanceUID]
    assert failed["00081197"]["Value"] == [0xC409]
    assert len(stored_files(server.root)) == 2


def _post(server, body, ctype, extra=None):
    headers = {"Content-Type": ctype} if ctype else {}
    headers.update(extra or {})
    return server.http.request("POST", server.base + "/studies", body=body, headers=headers)


def test_bad_stow_requests_store_nothing(server, tmp_path):
    paths = make_study(tmp_path / "m", "PAT-M", names=SOURCES[:2])
    good, ctype = stow_body(paths)
    boundary = boundary_of(ctype)
    cases = [
        (good[:-40], ctype, 400),                                    # cut short
        (good.replace(b"\r\n\r\n", b"\r\n", 1), ctype, 400),         # headers run into data
        (good, "application/dicom", 415),                            # not multipart
        (good, "application/json", 415),
        (good, None, 415),
        (good, f'multipart/related; type="application/dicom+json"; boundary={boundary}', 415),
        (good, 'multipart/related; type="application/dicom"', 400),  # no boundary
        (b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n"
         b"Content-Length: 99999999999\r\n\r\n", ctype, 413),         # huge declared part
        (b"--" + boundary.encode() + b"\r\n\r\n" + b"\0" * (5 << 20) + b"\r\n--"
         + boundary.encode() + b"--", ctype, 413),                   # part over the limit
        (b"garbage", ctype, 400),
    ]
    for body, content_type, status in cases:
        r = _post(server, body, content_type)
        assert r.status == status, (content_type, r.status, r.data)
        assert stored_files(server.root) == []
    # A declared body larger than the limit is refused before it is read (a raw
    # socket: urllib3 would send the real Content-Length).
    import socket

    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {64 << 20}\r\n\r\n".encode())
        s.settimeout(10)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")
    assert stored_files(server.root) == []
    assert json.loads(get(server, "/instances").data) == []


# -- access rules -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/studies/..%2F..%2Fetc", "/studies/1.2.abc", "/studies/1..2", "/studies/" + "1" * 65,
    "/studies/1.2/series/..", "/studies/1.2/series/3/instances/%2Fetc%2Fpasswd/frames/1",
])
def test_paths_outside_the_archive_are_refused(stored, path):
    server, _ = stored
    r = get(server, path)
    assert r.status in (400, 404)
    assert b"root:" not in r.data


def test_auth_token_and_basic(tmp_path):
    app = create_app(tmp_path / "arch", token="s3cret", basic=("alice", "pw"))
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10, 10))
    with BackgroundServer(app) as srv:
        url = srv.url + "/dicom-web/studies"
        r = http.request("GET", url)
        assert r.status == 401 and "Basic" in r.headers["WWW-Authenticate"]
        assert http.request("GET", url, headers={"Authorization": "Bearer nope"}).status == 401
        assert http.request("GET", url, headers={"Authorization": "Bearer s3cret"}).status == 200
        auth = urllib3.make_headers(basic_auth="alice:pw")
        assert http.request("GET", url, headers=auth).status == 200
        bad = urllib3.make_headers(basic_auth="alice:no")
        assert http.request("GET", url, headers=bad).status == 401
        assert http.request("GET", srv.url + "/wado?requestType=WADO").status == 401
        assert http.request("GET", srv.url + "/openapi.json").status == 200


# -- WADO-URI ---------------------------------------------------------------------------------

def test_wado_uri(stored):
    server, studies = stored
    ref_path = studies["PAT-A"][0]
    ref = pydicom.dcmread(ref_path)
    q = {"requestType": "WADO", "studyUID": ref.StudyInstanceUID,
         "seriesUID": ref.SeriesInstanceUID, "objectUID": ref.SOPInstanceUID}
    r = server.http.request("GET", server.url + "/wado",
                            fields={**q, "contentType": "application/dicom"})
    assert r.status == 200 and r.data == ref_path.read_bytes()
    r = server.http.request("GET", server.url + "/wado", fields={**q, "contentType": "image/png"})
    assert r.status == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    r = server.http.request("GET", server.url + "/wado", fields=q)   # default: image/jpeg
    assert r.status == 200 and r.headers["Content-Type"] in ("image/jpeg", "image/png")
    assert server.http.request("GET", server.url + "/wado",
                               fields={**q, "requestType": "X"}).status == 400
    assert server.http.request("GET", server.url + "/wado",
                               fields={**q, "objectUID": "1.2.3"}).status == 404
    assert server.http.request("GET", server.url + "/wado",
                               fields={**q, "anonymize": "yes"}).status == 400


# -- OpenAPI and schemathesis --------------------------------------------------------------------

def test_openapi_lists_every_route(server):
    r = server.http.request("GET", server.url + "/openapi.json")
    doc = json.loads(r.data)
    assert doc["openapi"].startswith("3.")
    from dicomfast.web.app import DicomWebApp

    app = DicomWebApp(server.root)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for method, pattern, _ in app.routes:
        text = pattern.pattern.replace("\\", "").replace("/?\\Z", "").replace("/?Z", "")
        for name in ("study", "series", "instance", "frames", "bulk"):
            text = text.replace(f"(?P<{name}>[^/]+)", f"{{{name}}}")
            text = text.replace(f"(?P<{name}>[0-9A-Fa-f/]+)", f"{{{name}}}")
        assert (method, text) in documented, text


def test_schemathesis_no_server_errors(stored):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, settings

    server, _ = stored

    @schemathesis.serializer("multipart/related")
    def _multipart(ctx, value):  # STOW bodies: whatever bytes the generator made
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    schema.config.update(base_url=server.url)  # type: ignore[attr-defined]
    calls = []
    for op_result in schema.get_all_operations():
        op = op_result.ok()
        strategy = op.as_strategy()

        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @__import__("hypothesis").given(strategy)
        def check(case):
            response = case.call(base_url=server.url, timeout=20)
            calls.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                response.status_code)

        check()
    operations = len(list(schema.get_all_operations()))
    assert operations >= 19 and len(calls) >= 2 * operations


def test_no_temporary_files_left(server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    app = create_app(tmp_path / "arch2", spool_dir=str(spool), max_part_size=1 << 16)
    paths = make_study(tmp_path / "t", "PAT-T", names=SOURCES[:1])
    body, ctype = stow_body(paths)
    with BackgroundServer(app) as srv:
        http = urllib3.PoolManager(retries=False)
        r = http.request("POST", srv.url + "/dicom-web/studies", body=body,
                         headers={"Content-Type": ctype})
        assert r.status == 200
        r = http.request("POST", srv.url + "/dicom-web/studies", body=body[:-10],
                         headers={"Content-Type": ctype})
        assert r.status == 400
    assert os.listdir(spool) == []


def test_mutated_stow_bodies_never_5xx_and_4xx_stores_nothing(server, tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    paths = make_study(tmp_path / "z", "PAT-Z", names=SOURCES[:2])
    good, ctype = stow_body(paths)
    boundary = boundary_of(ctype).encode()
    # Mutations aimed at the framing: cut, splice, and bytes changed near the delimiters.
    hot = [i for i in range(len(good)) if good.startswith(b"--" + boundary, i)]

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(hot), st.integers(-80, 200), st.binary(max_size=12),
           st.integers(0, 40))
    def check(at, offset, junk, cut):
        pos = max(0, min(len(good), at + offset))
        body = good[:pos] + junk + good[pos + len(junk):]
        body = body[:len(body) - cut]
        before = stored_files(server.root)
        r = _post(server, body, ctype)
        assert r.status < 500, r.data
        if r.status >= 400 and r.status != 409:
            assert stored_files(server.root) == before

    check()


def test_instance_syntax_default_follows_the_configuration():
    from dicomfast.web.app import _instance_syntax
    from dicomfast.web.http import parse_accept

    explicit = "1.2.840.10008.1.2.1"
    plain = parse_accept(DICOM)
    assert _instance_syntax(plain, explicit) == explicit      # PS3.18 §8.7.3.5.2
    assert _instance_syntax(plain, "*") is None               # configured: as stored
    assert _instance_syntax(parse_accept(DICOM + "; transfer-syntax=*"), explicit) is None
    rle = parse_accept(DICOM + "; transfer-syntax=1.2.840.10008.1.2.5")
    assert _instance_syntax(rle, explicit) == "1.2.840.10008.1.2.5"
