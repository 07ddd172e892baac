"""The DICOMweb client and the web-* commands, against our server (checked with pydicom)
and against small misbehaving servers (retries, backoff, timeouts)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pydicom = pytest.importorskip("pydicom")

from test_web_server import SOURCES, make_study  # noqa: E402

from dicomfast.cli import main as cli_main  # noqa: E402
from dicomfast.web import Client, create_app  # noqa: E402
from dicomfast.web.client import DicomWebError  # noqa: E402
from dicomfast.web.server import BackgroundServer  # noqa: E402


@pytest.fixture()
def served(tmp_path):
    with BackgroundServer(create_app(tmp_path / "archive")) as srv:
        srv.root = tmp_path / "archive"
        yield srv


def test_store_search_retrieve_metadata_frames(served, tmp_path):
    paths = make_study(tmp_path / "in", "PAT-C")
    refs = {pydicom.dcmread(p).SOPInstanceUID: p for p in paths}
    seen = []
    with Client(served.url + "/dicom-web", timeout=10) as client:
        answer = client.store(paths, progress=lambda item, size: seen.append(size))
        assert len(answer["00081199"]["Value"]) == len(paths)
        assert seen == [p.stat().st_size for p in paths]
        (study,) = client.search_studies({"PatientID": "PAT-C"})
        study_uid = study["0020000D"]["Value"][0]
        assert client.search_studies({"PatientID": "nobody"}) == []
        instances = client.search_instances(study=study_uid, includefield=["Rows"])
        assert {i["00080018"]["Value"][0] for i in instances} == set(refs)
        # Retrieve streams each instance to disk, named by its SOP Instance UID.
        got = client.retrieve(study_uid, output_dir=tmp_path / "out")
        assert sorted(p.name for p in got) == sorted(f"{u}.dcm" for u in refs)
        for p in got:
            assert p.read_bytes() == refs[p.stem].read_bytes()
        assert not [p for p in (tmp_path / "out").iterdir() if p.suffix == ".part"]
        # Metadata with BulkDataURIs the client can follow.
        ref = pydicom.dcmread(paths[0])
        (meta,) = client.metadata(study_uid, ref.SeriesInstanceUID, ref.SOPInstanceUID)
        assert meta["00100020"]["Value"] == ["PAT-C"]
        assert client.bulkdata(meta["7FE00010"]["BulkDataURI"]) == ref.PixelData
        # Frames, pixel-exact against pydicom.
        (frame,) = client.frames(study_uid, ref.SeriesInstanceUID, ref.SOPInstanceUID, [1])
        arr = ref.pixel_array
        assert np.array_equal(np.frombuffer(frame, arr.dtype.newbyteorder("<"))
                              .reshape(arr.shape), arr)
        png = client.rendered(study_uid, ref.SeriesInstanceUID, ref.SOPInstanceUID)
        assert png.startswith(b"\x89PNG")
        # Retrieving with a transfer syntax asks the server to transcode.
        rle = pydicom.dcmread(paths[1])
        (data,) = list(client.iter_instances(study_uid, rle.SeriesInstanceUID,
                                             rle.SOPInstanceUID,
                                             transfer_syntax="1.2.840.10008.1.2.1"))
        back = pydicom.dcmread(io.BytesIO(data))
        assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert np.array_equal(back.pixel_array, rle.pixel_array)
        with pytest.raises(DicomWebError) as info:
            client.metadata("1.2.3.4")
        assert info.value.status == 404


def test_store_reports_failures(served, tmp_path):
    paths = make_study(tmp_path / "in", "PAT-F", names=SOURCES[:1])
    with Client(served.url + "/dicom-web") as client:
        answer = client.store([paths[0], b"garbage"])
        assert len(answer["00081198"]["Value"]) == 1
        with pytest.raises(DicomWebError) as info:
            client.store([b"garbage"])
        assert info.value.status == 409
        assert json.loads(info.value.body)["00081198"]["Value"][0]["00081197"]["Value"] == \
            [0xC000]


class _Flaky:
    """An ASGI app that fails `failures` times with `status`, then serves `inner`."""

    def __init__(self, inner, failures: int, status: int = 503, delay: float = 0.0):
        self.inner, self.failures, self.status, self.delay = inner, failures, status, delay
        self.calls = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls <= self.failures:
            await send({"type": "http.response.start", "status": self.status,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"try later"})
            return
        await self.inner(scope, receive, send)


def test_retries_5xx_with_backoff_then_succeeds(tmp_path):
    app = _Flaky(create_app(tmp_path / "a"), failures=2)
    paths = make_study(tmp_path / "in", "PAT-R", names=SOURCES[:1])
    with BackgroundServer(app) as srv:
        client = Client(srv.url + "/dicom-web", retries=3, backoff=0.05)
        start = time.monotonic()
        answer = client.store(paths)          # the streamed body is rebuilt per attempt
        assert len(answer["00081199"]["Value"]) == 1
        assert app.calls == 3
        assert time.monotonic() - start >= 0.05 + 0.1   # two waits, doubling
        app.calls, app.failures = 0, 10
        with pytest.raises(DicomWebError) as info:
            client.search_studies()
        assert info.value.status == 503 and app.calls == 4  # 1 + 3 retries


def test_4xx_is_not_retried(tmp_path):
    app = _Flaky(create_app(tmp_path / "a"), failures=5, status=400)
    with BackgroundServer(app) as srv:
        with pytest.raises(DicomWebError) as info:
            Client(srv.url + "/dicom-web", retries=3, backoff=0.01).search_studies()
        assert info.value.status == 400 and app.calls == 1


def test_connection_refused_and_timeout(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = Client(f"http://127.0.0.1:{port}/dicom-web", retries=2, backoff=0.02, timeout=2)
    with pytest.raises(DicomWebError) as info:
        client.search_studies()
    assert info.value.status is None
    slow = _Flaky(create_app(tmp_path / "a"), failures=0, delay=1.5)
    with BackgroundServer(slow) as srv:
        start = time.monotonic()
        with pytest.raises(DicomWebError):
            Client(srv.url + "/dicom-web", retries=0, timeout=0.3).search_studies()
        assert time.monotonic() - start < 1.2


def test_basic_auth_client(tmp_path):
    with BackgroundServer(create_app(tmp_path / "a", basic=("u", "p"))) as srv:
        assert Client(srv.url + "/dicom-web", auth=("u", "p")).search_studies() == []
        with pytest.raises(DicomWebError) as info:
            Client(srv.url + "/dicom-web", auth=("u", "x"), retries=0).search_studies()
        assert info.value.status == 401


def test_cli_web_store_find_get(served, tmp_path, capsys):
    paths = make_study(tmp_path / "in", "PAT-CLI", names=SOURCES[:3])
    url = served.url + "/dicom-web"
    assert cli_main(["web-store", url, str(tmp_path / "in")]) == 0
    assert "3 stored, 0 failed" in capsys.readouterr().err
    assert cli_main(["web-find", url, "-k", "PatientID=PAT-CLI", "--json"]) == 0
    (study,) = json.loads(capsys.readouterr().out)
    study_uid = study["0020000D"]["Value"][0]
    assert cli_main(["web-find", url, "--level", "instances", "--study", study_uid]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    out = tmp_path / "got"
    assert cli_main(["web-get", url, "--study", study_uid, "--output-dir", str(out)]) == 0
    assert sorted(p.read_bytes() for p in out.iterdir()) == sorted(p.read_bytes()
                                                                   for p in paths)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"nope")
    assert cli_main(["web-store", url, str(bad)]) == 1
    assert "failure reason" in capsys.readouterr().err


def test_cli_web_serves(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast", "web", "--dir",
                             str(tmp_path / "arch"), "--port", str(port), "--token", "t"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        client = Client(f"http://127.0.0.1:{port}/dicom-web", auth="t", retries=0, timeout=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.search_studies() == []
                break
            except DicomWebError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with pytest.raises(DicomWebError) as info:
            Client(f"http://127.0.0.1:{port}/dicom-web", retries=0).search_studies()
        assert info.value.status == 401
        assert Path(tmp_path / "arch" / "index.sqlite").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
