"""Faults: malformed and oversized PDUs, dead and slow peers, timeouts, rejections,
hostile UIDs and failing disks. Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_net_helpers import (
    HOST,
    ROOT,
    dcmtk_storescp,
    free_port,
    make_objects,
    need_dcmtk,
    wait_port,
)

from dicomfast import unnamed
from dicomfast.net import AE, Association, AssociationAborted, AssociationRejected, Settings
from dicomfast.net import dimse as D
from dicomfast.net import pdu as P

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
GOLDEN = Path(__file__).resolve().parent / "golden" / "pdu"


_PEERS: list[RawPeer] = []


@pytest.fixture(autouse=True)
def _close_peers():
    yield
    while _PEERS:
        _PEERS.pop().close()


class RawPeer:
    """A hand-driven peer on a plain socket."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        _PEERS.append(self)
        self.framer = P.Framer()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_pdu(self, timeout: float = 5.0) -> bytes | None:
        """The next PDU, or None at end of stream."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.framer.next()
            if raw is not None:
                return raw
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.framer.feed(data)

    def associate(self, contexts=((VERIFICATION, [IMPLICIT]),), called: str = "ANY-SCP",
                  max_length: int = 16384) -> P.AssociateAC:
        pcs = [P.PresentationContext(2 * i + 1, a, list(t)) for i, (a, t) in enumerate(contexts)]
        self.send(P.encode(P.AssociateRQ(called, "RAWPEER", pcs,
                                         P.UserInformation(max_length, "1.2.3"))))
        ac = P.decode(self.recv_pdu())
        assert isinstance(ac, P.AssociateAC), ac
        return ac

    def expect_abort(self, timeout: float = 5.0) -> P.Abort:
        """Read an A-ABORT and close, as a peer does (PS3.8 AA-3); the acceptor would
        otherwise wait for our close until its ARTIM timer expires."""
        raw = self.recv_pdu(timeout)
        assert raw is not None and raw[0] == P.ABORT, raw
        self.close()
        return P.decode(raw)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scp(tmp_path):
    out = tmp_path / "in"
    ae = AE("DFSCP", acse_timeout=5, dimse_timeout=5, network_timeout=5, artim_timeout=2,
            max_pdu=16384)
    with ae.serve_in_background(out, host=HOST, max_associations=4) as server:
        server.out = out
        yield server


def _alive(port: int) -> None:
    assert AE("CHECK", acse_timeout=5, dimse_timeout=5).echo(HOST, port) == 0


# -- malformed and oversized PDUs ----------------------------------------------------------

def test_garbage_gets_abort_and_server_survives(scp):
    peer = RawPeer(scp.port)
    peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    abort = peer.expect_abort()
    assert (abort.source, abort.reason) == (P.ABORT_SOURCE_PROVIDER, P.ABORT_UNRECOGNIZED_PDU)
    _alive(scp.port)


@pytest.mark.parametrize("name", ["bad_item_overrun", "bad_even_context_id",
                                  "bad_uid_characters", "bad_role_length", "bad_no_context",
                                  "bad_release_length"])
def test_malformed_pdu_in_idle_state(scp, name):
    peer = RawPeer(scp.port)
    peer.send((GOLDEN / f"{name}.bin").read_bytes())
    abort = peer.expect_abort()
    assert abort.source == P.ABORT_SOURCE_PROVIDER
    _alive(scp.port)


def test_oversized_pdata_refused_from_header(scp):
    peer = RawPeer(scp.port)
    peer.associate()
    # Announce 64 MiB against our advertised 16 KiB: refused before any body arrives.
    peer.send(struct.pack(">BBI", P.P_DATA_TF, 0, 64 << 20) + b"\0" * 100)
    abort = peer.expect_abort()
    assert (abort.source, abort.reason) == (P.ABORT_SOURCE_PROVIDER, P.ABORT_INVALID_PARAMETER)
    _alive(scp.port)


def test_oversized_association_request(scp):
    peer = RawPeer(scp.port)
    peer.send(struct.pack(">BBI", P.ASSOCIATE_RQ, 0, 1 << 30))
    peer.expect_abort()


def test_pdata_before_association_and_unknown_context(scp):
    peer = RawPeer(scp.port)
    peer.send(P.encode_pdata(1, 3, b"x" * 10))
    abort = peer.expect_abort()
    assert abort.reason == P.ABORT_UNEXPECTED_PDU
    peer = RawPeer(scp.port)
    peer.associate()
    peer.send(P.encode_pdata(99, 3, D.encode_command(D.echo_rq(1))))
    peer.expect_abort()


def test_bad_command_set_aborts(scp):
    peer = RawPeer(scp.port)
    peer.associate()
    peer.send(P.encode_pdata(1, 3, b"\x00\x00\x00\x01\xff\xff\xff\xff"))
    peer.expect_abort()
    _alive(scp.port)


def test_peer_abort_and_release_by_hand(scp):
    peer = RawPeer(scp.port)
    peer.associate()
    peer.send(P.encode(P.ReleaseRQ()))
    assert peer.recv_pdu() == P.RELEASE_RP_BYTES
    peer.close()  # the requestor closes after A-RELEASE-RP (PS3.8 AR-3)
    peer = RawPeer(scp.port)
    peer.associate()
    peer.send(P.encode(P.Abort()))
    assert peer.recv_pdu() is None


# -- rejections ----------------------------------------------------------------------------

def test_wrong_called_ae_raw_bytes(tmp_path):
    with AE("RIGHT").serve_in_background(tmp_path, host=HOST, called_ae_required=True) as srv:
        peer = RawPeer(srv.port)
        peer.send(P.encode(P.AssociateRQ("WRONG", "RAW", [
            P.PresentationContext(1, VERIFICATION, [IMPLICIT])], P.UserInformation(16384))))
        assert peer.recv_pdu() == (GOLDEN / "a_associate_rj_called_ae.bin").read_bytes()
        peer.close()


def test_blank_ae_titles_rejected(scp):
    for called, calling, reason in (("", "RAW", 7), ("ANY", "", 3)):
        peer = RawPeer(scp.port)
        rq = P.encode(P.AssociateRQ("X", "Y", [
            P.PresentationContext(1, VERIFICATION, [IMPLICIT])], P.UserInformation(16384)))
        raw = bytearray(rq)
        raw[10:26] = called.encode().ljust(16)
        raw[26:42] = calling.encode().ljust(16)
        peer.send(bytes(raw))
        assert P.decode(peer.recv_pdu()) == P.AssociateRJ(1, 1, reason)
        peer.close()


def test_max_associations_rejected_transient(tmp_path):
    async def run(port: int) -> None:
        settings = Settings(acse_timeout=5, dimse_timeout=5)
        first = await Association.request(HOST, port, [(VERIFICATION, [IMPLICIT])],
                                          settings=settings)
        try:
            with pytest.raises(AssociationRejected) as info:
                await Association.request(HOST, port, [(VERIFICATION, [IMPLICIT])],
                                          settings=settings)
            assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)
        finally:
            await first.release()
        again = await Association.request(HOST, port, [(VERIFICATION, [IMPLICIT])],
                                          settings=settings)
        await again.release()

    with AE("ONE").serve_in_background(tmp_path, host=HOST, max_associations=1) as srv:
        asyncio.run(run(srv.port))


def test_unsupported_abstract_syntax(scp, tmp_path):
    async def run() -> None:
        assoc = await Association.request(
            HOST, scp.port, [("1.2.3.4.5.6.7", [IMPLICIT]), (CT, [EXPLICIT, IMPLICIT]),
                             (CT, ["1.2.3.999"])], settings=Settings(acse_timeout=5))
        async with assoc:
            results = {r.id: r.result for r in assoc.context_results}
            assert results == {1: P.PC_ABSTRACT_SYNTAX_NOT_SUPPORTED, 3: P.PC_ACCEPTANCE,
                               5: P.PC_TRANSFER_SYNTAXES_NOT_SUPPORTED}
            assert set(assoc.contexts) == {3}
    asyncio.run(run())
    # The SCU reports objects of an unsupported class without aborting the others.
    import pydicom

    objs = make_objects(tmp_path / "objs", ("CT_small.dcm",), copies=2)
    ds = pydicom.dcmread(objs[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.3.4.5.6.7"
    ds.save_as(objs[0], enforce_file_format=True)
    results = AE("SCU", acse_timeout=5, dimse_timeout=5).store(HOST, scp.port, objs)
    assert [r.ok for r in results] == [False, True]
    assert "no accepted presentation context" in results[0].error


# -- hostile UIDs --------------------------------------------------------------------------

HOSTILE = ["../x", "/etc/passwd", "1" * 65, "1.2/../../3", "..", ".", "1..2", "1.2.",
           "1.2.3\\4.5", "", "C:1.2", "1.2\x00.3"]


def test_hostile_instance_uids_refused(scp, tmp_path):
    before = set(os.listdir(tmp_path))
    parent_before = set(os.listdir(tmp_path.parent))

    async def run() -> list[int]:
        assoc = await Association.request(HOST, scp.port, [(CT, [EXPLICIT])],
                                          settings=Settings(acse_timeout=5, dimse_timeout=5))
        statuses = []
        async with assoc:
            data = b"\x08\x00\x16\x00\x1a\x00" + CT.encode() + b"\0"  # any data set
            for uid in HOSTILE + ["1.2.3.4.5"]:
                rq = D.store_rq(assoc.next_message_id(), CT, "1.2.3")
                rq[D.T_AFFECTED_SOP_INSTANCE].value = uid
                fut = await assoc.send_request(3 if 3 in assoc.contexts else 1, rq, data)
                cmd, _ = await assoc.wait_response(fut)
                statuses.append(cmd.Status)
        return statuses

    statuses = asyncio.run(run())
    assert all(D.status_category(s) == "Failure" for s in statuses[:-1]), statuses
    assert statuses[-1] == 0
    assert os.listdir(scp.out) == ["1.2.3.4.5.dcm"]
    assert set(os.listdir(tmp_path)) == before
    assert set(os.listdir(tmp_path.parent)) == parent_before
    assert not os.path.exists("/etc/passwd.dcm") and not os.path.exists(f"{tmp_path}/x.dcm")


# -- dead and slow peers, timeouts ---------------------------------------------------------

def _partial_store(port: int, n_bytes: int) -> RawPeer:
    peer = RawPeer(port)
    ac = peer.associate([(CT, [EXPLICIT])])
    assert ac.contexts[0].result == 0
    cmd = D.encode_command(D.store_rq(1, CT, "1.2.3.4.5.6"))
    peer.send(P.encode_pdata(1, 3, cmd))
    data = b"\x08\x00\x16\x00" + b"\0" * (n_bytes - 4)
    for i in range(0, len(data), 16000):  # within the acceptor's 16 KiB PDUs
        peer.send(P.encode_pdata(1, 0, data[i:i + 16000]))
    return peer


def _files_being_written(folder, pid: int | str = "self") -> list[str]:
    """Temporary files in `folder` that process `pid` is writing: named ones, or on
    Linux unnamed (O_TMPFILE) ones, which /proc shows as '<folder>/#<inode> (deleted)'."""
    named = [p for p in os.listdir(folder) if p.startswith(".dicomfast-")]
    if named or not os.path.isdir(f"/proc/{pid}/fd"):
        return named
    unnamed = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{folder}/#"):
            unnamed.append(target)
    return unnamed


def test_scu_killed_mid_transfer_leaves_nothing(scp):
    peer = _partial_store(scp.port, 3 << 20)
    deadline = time.monotonic() + 5
    while not _files_being_written(scp.out) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _files_being_written(scp.out), "the data set should be streaming into a file"
    # A hard reset, as when the sending process is killed.
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    deadline = time.monotonic() + 5
    while os.listdir(scp.out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(scp.out) == []  # no final file, no temporary file
    _alive(scp.port)


def test_artim_closes_silent_connection(tmp_path):
    ae = AE("ARTIM", artim_timeout=0.5)
    with ae.serve_in_background(tmp_path, host=HOST) as srv:
        peer = RawPeer(srv.port)
        start = time.monotonic()
        assert peer.recv_pdu(timeout=5) is None
        assert time.monotonic() - start < 4


def test_network_timeout_aborts_idle_association(tmp_path):
    ae = AE("NET", network_timeout=0.5)
    with ae.serve_in_background(tmp_path, host=HOST) as srv:
        peer = RawPeer(srv.port)
        peer.associate()
        start = time.monotonic()
        peer.expect_abort(timeout=5)
        assert time.monotonic() - start < 4


def test_network_timeout_mid_data_set_discards_it(tmp_path):
    ae = AE("NET", network_timeout=0.5)
    with ae.serve_in_background(tmp_path / "in", host=HOST) as srv:
        peer = _partial_store(srv.port, 5000)
        peer.expect_abort(timeout=5)
        time.sleep(0.1)
        assert os.listdir(tmp_path / "in") == []


class _SilentServer:
    """Accepts TCP; optionally answers A-ASSOCIATE-RQ with an AC; then says nothing."""

    def __init__(self, answer: bool):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        if not self.answer:
            return
        framer = P.Framer()
        conn.settimeout(10)
        while (raw := framer.next()) is None:
            data = conn.recv(65536)
            if not data:
                return
            framer.feed(data)
        rq = P.decode(raw)
        conn.sendall(P.encode(P.AssociateAC(rq.called_ae, rq.calling_ae, [
            P.PresentationContextResult(pc.id, 0, pc.transfer_syntaxes[0])
            for pc in rq.contexts], P.UserInformation(16384, "1.2.3"))))

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def test_acse_timeout_when_peer_never_answers():
    srv = _SilentServer(answer=False)
    try:
        start = time.monotonic()
        with pytest.raises(Exception) as info:
            AE("SCU", acse_timeout=0.5).echo(HOST, srv.port)
        assert "ACSE timeout" in str(info.value)
        assert time.monotonic() - start < 4
    finally:
        srv.close()


def test_dimse_timeout_when_peer_never_responds():
    srv = _SilentServer(answer=True)
    try:
        start = time.monotonic()
        with pytest.raises(AssociationAborted):
            AE("SCU", dimse_timeout=0.5, acse_timeout=5).echo(HOST, srv.port)
        assert time.monotonic() - start < 4
    finally:
        srv.close()


def test_store_dimse_timeout_fails_every_outstanding_object(tmp_path):
    """C-STOREs to a peer that accepts the association and then never responds: each
    object outstanding in the window fails with the DIMSE timeout, none hangs."""
    objs = make_objects(tmp_path / "objs", ("CT_small.dcm", "MR_small.dcm"), copies=3)
    srv = _SilentServer(answer=True)
    try:
        start = time.monotonic()
        results = AE("SCU", dimse_timeout=0.5, acse_timeout=5).store(HOST, srv.port, objs)
        assert time.monotonic() - start < 5
    finally:
        srv.close()
    assert len(results) == len(objs) and not any(r.ok for r in results)
    assert any("DIMSE timeout" in (r.error or "") for r in results), results


def test_connection_refused_is_an_error():
    with pytest.raises(Exception) as info:
        AE("SCU", connect_timeout=2).echo(HOST, free_port())
    assert "cannot connect" in str(info.value)


def test_dcmtk_aborts_during_store(tmp_path):
    need_dcmtk("storescp")
    objs = make_objects(tmp_path / "objs", ("CT_small.dcm",), copies=3)
    out = tmp_path / "out"
    out.mkdir()
    with dcmtk_storescp(out, extra=("--abort-during",)) as port:
        start = time.monotonic()
        results = AE("SCU", acse_timeout=5, dimse_timeout=5).store(HOST, port, objs,
                                                                   called_ae="DCMTKSCP")
        assert time.monotonic() - start < 10
    assert results and not any(r.ok for r in results)
    assert all(r.error for r in results)


def test_scp_process_killed_mid_transfer(tmp_path):
    """The SCU sees a failure, never a hang, when the SCP dies under it."""
    import pydicom

    objs = make_objects(tmp_path / "objs", ("CT_small.dcm",), copies=1)
    big = pydicom.dcmread(objs[0])
    big.add_new(0x00091010, "LO", "TEST")
    big.add_new(0x00091011, "OB", os.urandom(40 << 20))
    big.save_as(objs[0], enforce_file_format=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast.net.cli", "storescp", "--port",
                             str(port), "--output-dir", str(tmp_path / "out"), "--host", HOST,
                             "--max-pdu", "16384"], cwd=str(ROOT / "tests"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        def kill_when_receiving() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if _files_being_written(tmp_path / "out", proc.pid):
                    break
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)

        threading.Thread(target=kill_when_receiving, daemon=True).start()
        results = AE("SCU", acse_timeout=5, dimse_timeout=5).store(HOST, port, objs)
        assert not results[0].ok and results[0].error
    finally:
        proc.kill()
        proc.wait(10)
    final = [p for p in os.listdir(tmp_path / "out") if not p.startswith(".")]
    assert final == []
    if unnamed.supported(str(tmp_path / "out")):
        # The file had no name yet: the kernel freed it with the process.
        assert os.listdir(tmp_path / "out") == []


# -- disk errors ---------------------------------------------------------------------------

def _limit_file_size() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG


# 300 kB: whole in memory when complete, written at once (by direct I/O where there
# is); 1 MB: streamed to its file while it arrives.
@pytest.mark.parametrize("extra", [300_000, 1 << 20], ids=["whole", "streamed"])
def test_write_error_gives_out_of_resources(tmp_path, extra):
    import pydicom

    small = make_objects(tmp_path / "objs", ("CT_small.dcm",), copies=2)
    big = pydicom.dcmread(small[1])
    big.add_new(0x00091010, "LO", "TEST")
    big.add_new(0x00091011, "OB", os.urandom(extra))
    big.save_as(small[1], enforce_file_format=True)
    port = free_port()
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast.net.cli", "storescp", "--port",
                             str(port), "--output-dir", str(out), "--host", HOST], cwd=str(ROOT / "tests"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_limit_file_size)
    try:
        wait_port(port, proc=proc)
        results = AE("SCU", acse_timeout=5, dimse_timeout=5).store(HOST, port, small)
    finally:
        proc.terminate()
        proc.wait(10)
    assert results[0].status == 0
    assert results[1].status is not None and 0xA700 <= results[1].status <= 0xA7FF
    names = os.listdir(out)
    uid = str(pydicom.dcmread(small[0], stop_before_pixels=True).SOPInstanceUID)
    assert names == [f"{uid}.dcm"]  # the failed one left nothing, not even a temp file
