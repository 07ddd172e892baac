"""Interoperability: our client against Orthanc's DICOMweb plugin, the same requests against
our server giving equivalent answers, and dicomweb-client (PyPI) against our server."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pydicom = pytest.importorskip("pydicom")

from test_web_server import SOURCES, make_study  # noqa: E402

from dicomfast.web import Client, create_app  # noqa: E402
from dicomfast.web.client import DicomWebError  # noqa: E402
from dicomfast.web.server import BackgroundServer  # noqa: E402

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OrthancProcess:
    """Orthanc with its DICOMweb plugin on a loopback port, storage in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = self.url + "/dicom-web"
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "dicomfast-test", "HttpPort": self.port, "DicomServerEnabled": False,
            "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "StorageCompression": False, "HttpCompressionEnabled": False,
            "Plugins": [str(PLUGIN)], "ConcurrentJobs": 1, "SaveJobs": False,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                         "WadoRoot": "/wado", "StudiesMetadata": "Full",
                         "SeriesMetadata": "Full"},
        }
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> OrthancProcess:
        self.log = open(self.folder / "orthanc.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([str(ORTHANC), str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        probe = Client(self.dicomweb, retries=0, timeout=2)
        while True:
            try:
                probe.search_studies()
                return self
            except DicomWebError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.__exit__()
                    log = (self.folder / "orthanc.log").read_text()[-2000:]
                    raise RuntimeError(f"Orthanc did not start: {log}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


needs_orthanc = pytest.mark.skipif(not (ORTHANC.exists() and PLUGIN.exists()),
                                   reason="Orthanc or its DICOMweb plugin is not installed")


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    """Orthanc and our server, holding the same two studies, stored by our client."""
    if not (ORTHANC.exists() and PLUGIN.exists()):
        pytest.skip("Orthanc or its DICOMweb plugin is not installed")
    tmp = tmp_path_factory.mktemp("interop")
    studies = [make_study(tmp / "a", "IOP-A", names=SOURCES[:4], StudyDate="20220202"),
               make_study(tmp / "b", "IOP-B", names=SOURCES[4:], PatientName="Second^Pat")]
    with OrthancProcess(tmp / "orthanc") as orthanc, \
            BackgroundServer(create_app(tmp / "archive")) as ours:
        clients = {"orthanc": Client(orthanc.dicomweb, timeout=20),
                   "ours": Client(ours.url + "/dicom-web", timeout=20)}
        for client in clients.values():
            for paths in studies:
                answer = client.store(paths)
                assert len(answer["00081199"]["Value"]) == len(paths)
        yield clients, studies, tmp


def _norm(v):
    # Orthanc sends some US/IS values as strings ("128"); compare the DICOM values.
    if isinstance(v, dict):
        return v.get("Alphabetic")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _v(obj: dict, tag: str):
    values = (obj.get(tag) or {}).get("Value")
    return None if values is None else tuple(_norm(v) for v in values)


def _by(rows: list[dict], key: str) -> dict:
    return {_v(r, key)[0]: r for r in rows}


def _same(rows_a: list[dict], rows_b: list[dict], key: str, tags: list[str]) -> None:
    a, b = _by(rows_a, key), _by(rows_b, key)
    assert a.keys() == b.keys()
    for uid in a:
        for tag in tags:
            va, vb = _v(a[uid], tag), _v(b[uid], tag)
            if tag == "00080061" and va and vb:
                va, vb = tuple(sorted(va)), tuple(sorted(vb))
            assert va == vb, (tag, va, vb)


@needs_orthanc
def test_qido_answers_match_orthanc(peers):
    clients, studies, _ = peers
    o, d = clients["orthanc"], clients["ours"]
    study_tags = ["0020000D", "00100020", "00100010", "00080020", "00201206", "00201208",
                  "00080061"]
    _same(o.search_studies(), d.search_studies(), "0020000D", study_tags)
    for query in ({"PatientID": "IOP-A"}, {"PatientName": "Second*"},
                  {"StudyDate": "20220101-20221231"}, {"PatientID": "none"}):
        _same(o.search_studies(query), d.search_studies(query), "0020000D", study_tags)
    study = pydicom.dcmread(studies[0][0]).StudyInstanceUID
    _same(o.search_series(study=study), d.search_series(study=study), "0020000E",
          ["0020000E", "00080060", "00201209"])
    for ref in (pydicom.dcmread(p) for p in studies[0]):
        kw = {"study": study, "series": ref.SeriesInstanceUID}
        _same(o.search_instances(**kw), d.search_instances(**kw), "00080018",
              ["00080016", "00080018", "00200013", "00280010", "00280011"])
    # Paging: the same number of results per page (the orders may differ).
    assert len(o.search_instances(limit=3)) == len(d.search_instances(limit=3)) == 3


@needs_orthanc
def test_wado_answers_match_orthanc(peers):
    clients, studies, tmp = peers
    o, d = clients["orthanc"], clients["ours"]
    for paths in studies:
        study = pydicom.dcmread(paths[0]).StudyInstanceUID
        got_o = o.retrieve(study, output_dir=tmp / f"o-{study}")
        got_d = d.retrieve(study, output_dir=tmp / f"d-{study}")
        assert sorted(p.name for p in got_o) == sorted(p.name for p in got_d)
        for p in got_d:
            other = pydicom.dcmread(tmp / f"o-{study}" / p.name)
            mine = pydicom.dcmread(p)
            assert mine.SOPInstanceUID == other.SOPInstanceUID
            assert np.array_equal(mine.pixel_array, other.pixel_array)
        for path in paths:
            ref = pydicom.dcmread(path)
            args = (study, ref.SeriesInstanceUID, ref.SOPInstanceUID)
            # Byte-identical to what was stored, on our side.
            assert (tmp / f"d-{study}" / f"{ref.SOPInstanceUID}.dcm").read_bytes() == \
                path.read_bytes()
            (mo,), (md,) = o.metadata(*args), d.metadata(*args)
            for tag in ("00100020", "00100010", "0020000D", "00080018", "00280010",
                        "00280011", "00280100", "00280004"):
                assert _v(mo, tag) == _v(md, tag), tag
            assert "BulkDataURI" in md["7FE00010"]
            n = int(ref.get("NumberOfFrames") or 1)
            if ref.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
                # Uncompressed frames: the same bytes from both servers.
                numbers = list(range(1, n + 1))
                assert o.frames(*args, numbers) == d.frames(*args, numbers)


@needs_orthanc
def test_stow_errors_like_orthanc(peers):
    clients, _, tmp = peers
    for client in clients.values():
        with pytest.raises(DicomWebError) as info:
            client.store([b"this is not DICOM"])
        assert info.value.status in (400, 409)
    # A study URL that the instance does not belong to: nothing stored by either.
    other = make_study(tmp / "c", "IOP-C", names=SOURCES[:1])
    study = "1.2.826.0.1.3680043.8.498.999"
    for client in clients.values():
        try:
            answer = client.store(other, study=study)
        except DicomWebError as exc:
            assert exc.status in (400, 409)
        else:
            assert "00081199" not in answer or not answer["00081199"].get("Value")
        assert client.search_studies({"PatientID": "IOP-C"}) == []


def test_dicomweb_client_against_our_server(tmp_path):
    dicomweb_client = pytest.importorskip("dicomweb_client")
    paths = make_study(tmp_path / "in", "DWC-1", names=SOURCES[:3])
    refs = [pydicom.dcmread(p) for p in paths]
    with BackgroundServer(create_app(tmp_path / "archive")) as srv:
        web = dicomweb_client.DICOMwebClient(url=srv.url + "/dicom-web")
        web.store_instances(datasets=refs)
        studies = web.search_for_studies(search_filters={"PatientID": "DWC-1"})
        assert len(studies) == 1
        study = studies[0]["0020000D"]["Value"][0]
        assert study == refs[0].StudyInstanceUID
        series = web.search_for_series(study_instance_uid=study)
        assert {s["0020000E"]["Value"][0] for s in series} == \
            {r.SeriesInstanceUID for r in refs}
        for ref in refs:
            got = web.retrieve_instance(study, ref.SeriesInstanceUID, ref.SOPInstanceUID)
            assert got.SOPInstanceUID == ref.SOPInstanceUID
            assert np.array_equal(got.pixel_array, ref.pixel_array)
            meta = web.retrieve_instance_metadata(study, ref.SeriesInstanceUID,
                                                  ref.SOPInstanceUID)
            assert meta["00100020"]["Value"] == ["DWC-1"]
            assert meta["00080018"]["Value"] == [ref.SOPInstanceUID]
            # The BulkDataURIs resolve through dicomweb-client too.
            back = pydicom.Dataset.from_json(
                meta, bulk_data_uri_handler=lambda uri: bytes(web.retrieve_bulkdata(uri)[0]))
            assert back.Rows == ref.Rows
            if not ref.file_meta.TransferSyntaxUID.is_compressed:
                assert back.PixelData == ref.PixelData
        native = refs[0]
        (frame,) = web.retrieve_instance_frames(
            study, native.SeriesInstanceUID, native.SOPInstanceUID, frame_numbers=[1],
            media_types=("application/octet-stream",))
        arr = native.pixel_array
        assert np.array_equal(np.frombuffer(frame, arr.dtype).reshape(arr.shape), arr)
        instances = web.search_for_instances(study_instance_uid=study, limit=2, offset=1)
        assert len(instances) == 2

