"""dicomfast against real peers on loopback: DCMTK and pynetdicom both ways, and itself.

Stored objects are compared with the sent ones element by element (pydicom reads
both); several transfer syntaxes, compressed ones included.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from test_net_helpers import (
    HOST,
    STANDARD_SET,
    by_instance_uid,
    dcmtk,
    dcmtk_env,
    dcmtk_storescp,
    free_port,
    make_objects,
    need_dcmtk,
    same_dataset,
)

from dicomfast.errors import AssociationError
from dicomfast.net import AE, AssociationRejected

pydicom = pytest.importorskip("pydicom")


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[Path]:
    return make_objects(tmp_path_factory.mktemp("sent"), STANDARD_SET)


@pytest.fixture
def scp(tmp_path):
    out = tmp_path / "in"
    with AE("DFSCP", acse_timeout=10, dimse_timeout=10, network_timeout=10) \
            .serve_in_background(out, host=HOST) as server:
        server.out = out
        yield server


def _scu() -> AE:
    return AE("DFSCU", acse_timeout=10, dimse_timeout=10, connect_timeout=10)


def _check_all_stored(objects: list[Path], out: Path, same_syntax: bool = False) -> None:
    stored = by_instance_uid(out)
    for path in objects:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert uid in stored, f"{path.name} was not stored"
        same_dataset(path, stored[uid], same_syntax=same_syntax)


def _dataset_bytes(path: Path) -> bytes:
    from dicomfast.net.services.storescu import split_part10

    raw = path.read_bytes()
    return raw[split_part10(raw)[0]:]


# -- dicomfast <-> dicomfast ---------------------------------------------------------------

def test_echo_dicomfast_pair(scp):
    assert _scu().echo(HOST, scp.port, called_ae="DFSCP") == 0


def test_store_dicomfast_pair(scp, objects):
    results = _scu().store(HOST, scp.port, objects, called_ae="DFSCP")
    assert [r.status for r in results] == [0] * len(objects), results
    _check_all_stored(objects, scp.out, same_syntax=True)
    # Our SCP writes what it received: the data set bytes are the sent file's.
    stored = {p.name: p for p in scp.out.iterdir()}
    for path in objects:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        assert _dataset_bytes(stored[f"{uid}.dcm"]) == _dataset_bytes(path)
    assert not [p for p in scp.out.iterdir() if p.name.startswith(".")]


def test_store_datasets_and_folders(scp, objects, tmp_path):
    import dicomfast

    folder = tmp_path / "tree" / "sub"
    folder.mkdir(parents=True)
    for p in objects[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    ds = dicomfast.read(objects[2])
    results = _scu().store(HOST, scp.port, [tmp_path / "tree", ds], called_ae="DFSCP")
    assert len(results) == 3 and all(r.ok for r in results)


# -- dicomfast -> DCMTK --------------------------------------------------------------------

def test_echo_to_dcmtk(tmp_path):
    with dcmtk_storescp(tmp_path) as port:
        assert _scu().echo(HOST, port, called_ae="DCMTKSCP") == 0


def test_store_to_dcmtk(tmp_path, objects):
    out = tmp_path / "dcmtk"
    out.mkdir()
    with dcmtk_storescp(out) as port:
        results = _scu().store(HOST, port, objects, called_ae="DCMTKSCP")
    assert all(r.ok for r in results), results
    _check_all_stored(objects, out)


def test_store_to_dcmtk_uncompressed_only_transcodes(tmp_path, objects):
    """DCMTK's default storescp takes no compressed syntax: the RLE object is decoded
    and sent as explicit VR little endian; its pixels must be unchanged."""
    rle = [p for p in objects if p.name.startswith("MR_small_RLE")]
    out = tmp_path / "dcmtk"
    out.mkdir()
    with dcmtk_storescp(out, extra=()) as port:
        results = _scu().store(HOST, port, rle, called_ae="DCMTKSCP")
    assert all(r.ok for r in results), results
    stored = by_instance_uid(out)
    (path,) = stored.values()
    got = pydicom.dcmread(path)
    assert got.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    same_dataset(rle[0], path, pixels_decoded=True)
    assert (got.pixel_array == pydicom.dcmread(rle[0]).pixel_array).all()


# -- DCMTK -> dicomfast --------------------------------------------------------------------

def test_dcmtk_echoscu_to_dicomfast(scp):
    need_dcmtk("echoscu")
    run = subprocess.run([dcmtk("echoscu"), "-aec", "DFSCP", "-to", "10", HOST, str(scp.port)],
                         env=dcmtk_env(), capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr


def _storescu(port: int, files: list[Path], *opts: str) -> None:
    need_dcmtk("storescu")
    run = subprocess.run([dcmtk("storescu"), "-aec", "DFSCP", "-to", "10", *opts, HOST,
                          str(port), *map(str, files)],
                         env=dcmtk_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_dcmtk_storescu_to_dicomfast(scp, objects):
    # storescu proposes uncompressed syntaxes unless told otherwise (-x* options).
    plain = [p for p in objects if "RLE" not in p.name and "JPEG" not in p.name]
    _storescu(scp.port, plain)
    _check_all_stored(plain, scp.out)


@pytest.mark.parametrize("prefix,option", [("MR_small_RLE", "-xr"), ("JPEG2000", "-xw")])
def test_dcmtk_storescu_compressed_to_dicomfast(scp, objects, prefix, option):
    files = [p for p in objects if p.name.startswith(prefix)]
    _storescu(scp.port, files, option)
    _check_all_stored(files, scp.out, same_syntax=True)


# -- pynetdicom ----------------------------------------------------------------------------

def _pynetdicom_scp(folder: Path):
    pn = pytest.importorskip("pynetdicom")
    from pynetdicom import ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    folder.mkdir(parents=True, exist_ok=True)

    def on_store(event):
        uid = event.request.AffectedSOPInstanceUID
        (folder / f"{uid}.dcm").write_bytes(event.encoded_dataset())
        return 0x0000

    ae = pn.AE(ae_title="PYNETSCP")
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    port = free_port()
    server = ae.start_server((HOST, port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    return server, port


def test_pynetdicom_scp_receives_from_dicomfast(tmp_path, objects):
    server, port = _pynetdicom_scp(tmp_path / "pn")
    try:
        assert _scu().echo(HOST, port, called_ae="PYNETSCP") == 0
        results = _scu().store(HOST, port, objects, called_ae="PYNETSCP")
    finally:
        server.shutdown()
    assert all(r.ok for r in results), results
    _check_all_stored(objects, tmp_path / "pn")


def test_pynetdicom_scu_sends_to_dicomfast(scp, objects):
    pn = pytest.importorskip("pynetdicom")
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ae = pn.AE(ae_title="PYNETSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    datasets = [pydicom.dcmread(p) for p in objects]
    for ds in datasets:
        ts = ds.file_meta.TransferSyntaxUID
        ae.add_requested_context(ds.SOPClassUID, list(dict.fromkeys(
            [ts, ExplicitVRLittleEndian, ImplicitVRLittleEndian])))
    assoc = ae.associate(HOST, scp.port, ae_title="DFSCP")
    assert assoc.is_established
    try:
        for path in objects:
            status = assoc.send_c_store(path)
            assert status.Status == 0, path
    finally:
        assoc.release()
    _check_all_stored(objects, scp.out)


# -- rejection, TLS ------------------------------------------------------------------------

def test_wrong_called_ae_rejected(tmp_path):
    with AE("RIGHT").serve_in_background(tmp_path, host=HOST, called_ae_required=True) as srv:
        with pytest.raises(AssociationRejected) as info:
            _scu().echo(HOST, srv.port, called_ae="WRONG")
        assert (info.value.result, info.value.source, info.value.reason) == (1, 1, 7)
        assert _scu().echo(HOST, srv.port, called_ae="RIGHT") == 0
        if dcmtk("echoscu"):
            run = subprocess.run([dcmtk("echoscu"), "-aec", "WRONG", HOST, str(srv.port)],
                                 env=dcmtk_env(), capture_output=True, text=True, timeout=30)
            assert run.returncode != 0
            assert "Called AE Title Not Recognized" in run.stdout + run.stderr


def _self_signed(folder: Path) -> tuple[str, str]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    run = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-keyout", str(key), "-out", str(cert), "-days", "1",
                          "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                         capture_output=True, timeout=60)
    if run.returncode != 0:
        pytest.skip("openssl cannot make a test certificate")
    return str(cert), str(key)


def test_tls_pair(tmp_path, objects):
    import shutil as _sh

    if _sh.which("openssl") is None:
        pytest.skip("no openssl")
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    with AE("TLSSCP").serve_in_background(tmp_path / "in", host=HOST, ssl=server_ctx) as srv:
        assert _scu().echo(HOST, srv.port, ssl=client_ctx) == 0
        results = _scu().store(HOST, srv.port, objects[:3], ssl=client_ctx)
        assert all(r.ok for r in results)
        # A plain client cannot talk to the TLS port: it fails, it does not hang.
        with pytest.raises(AssociationError):
            AE("PLAIN", acse_timeout=1, connect_timeout=1).echo(HOST, srv.port)


def test_many_concurrent_associations(scp, objects):
    errors = []

    def worker():
        try:
            res = _scu().store(HOST, scp.port, objects[:4], called_ae="DFSCP")
            if not all(r.ok for r in res):
                errors.append(res)
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
