"""MPPS (PS3.4 Annex F.7): state rules and persistence of the SCP, dicomfast SCU against
it, pynetdicom as SCU against it and as SCP against the dicomfast SCU."""

from __future__ import annotations

import asyncio

import pytest
from test_net_helpers import HOST, serving_in_thread

from dicomfast.dataset import Dataset
from dicomfast.net import AE
from dicomfast.net import dimse_n as N
from dicomfast.net.services import nscu
from dicomfast.net.services.mpps import (
    ERROR_ID_NO_LONGER_UPDATABLE,
    MPPS,
    MPPSSCP,
    MPPSStore,
    in_progress,
)
from dicomfast.net.services.router import ServiceRouter

UID1 = "1.2.826.0.1.3680043.9.7433.5.1"
UID2 = "1.2.826.0.1.3680043.9.7433.5.2"


def _start():
    return in_progress("PID1", "Doe^Jane", "CT", "CT01", "PPS-1", ("20261126", "013000"))


def _mods(**kw):
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


async def _server(folder):
    router = ServiceRouter()
    MPPSSCP(folder, fsync=False).install(router)
    return await router.start(AE("MPPSSCP").settings, host=HOST)


def test_state_rules_with_dicomfast_scu(tmp_path):
    async def main():
        server = await _server(tmp_path / "mpps")
        out = {}
        try:
            assoc = await AE("MOD", dimse_timeout=10).associate(
                HOST, server.port, [(MPPS, ["1.2.840.10008.1.2.1"])])
            async with assoc:
                out["create"] = await nscu.n_create(assoc, MPPS, _start(), UID1)
                out["dup"] = await nscu.n_create(assoc, MPPS, _start(), UID1)
                bad = _start()
                bad.PerformedProcedureStepStatus = "COMPLETED"
                out["create_completed"] = await nscu.n_create(assoc, MPPS, bad, UID2)
                nostatus = _start()
                del nostatus.PerformedProcedureStepStatus
                out["create_nostatus"] = await nscu.n_create(assoc, MPPS, nostatus, UID2)
                out["assigned"] = await nscu.n_create(assoc, MPPS, _start())
                out["set_unknown"] = await nscu.n_set(
                    assoc, MPPS, UID2, _mods(PerformedProcedureStepDescription="x"))
                out["set_bad_status"] = await nscu.n_set(
                    assoc, MPPS, UID1, _mods(PerformedProcedureStepStatus="SCHEDULED"))
                out["set_uid"] = await nscu.n_set(assoc, MPPS, UID1,
                                                  _mods(SOPInstanceUID=UID2))
                out["set_desc"] = await nscu.n_set(
                    assoc, MPPS, UID1, _mods(PerformedProcedureStepDescription="HEAD"))
                out["complete"] = await nscu.n_set(assoc, MPPS, UID1, _mods(
                    PerformedProcedureStepStatus="COMPLETED",
                    PerformedProcedureStepEndDate="20261126",
                    PerformedProcedureStepEndTime="014500"))
                out["after_final"] = await nscu.n_set(
                    assoc, MPPS, UID1, _mods(PerformedProcedureStepDescription="late"))
                out["back_to_progress"] = await nscu.n_set(
                    assoc, MPPS, UID1, _mods(PerformedProcedureStepStatus="IN PROGRESS"))
                out["discontinue"] = await nscu.n_set(
                    assoc, MPPS, out["assigned"].sop_instance_uid,
                    _mods(PerformedProcedureStepStatus="DISCONTINUED"))
                out["after_disc"] = await nscu.n_set(
                    assoc, MPPS, out["assigned"].sop_instance_uid,
                    _mods(PerformedProcedureStepStatus="COMPLETED"))
                out["get"] = await nscu.n_get(assoc, MPPS, UID1, [0x00400252, 0x00400254])
        finally:
            await server.close()
        return out

    out = asyncio.run(main())
    assert out["create"].status == 0 and out["create"].sop_instance_uid == UID1
    assert out["dup"].status == N.DUPLICATE_SOP_INSTANCE
    assert out["create_completed"].status == N.INVALID_ATTRIBUTE_VALUE
    assert out["create_completed"].offending_elements == [0x00400252]
    assert out["create_nostatus"].status == N.MISSING_ATTRIBUTE
    assert out["assigned"].status == 0 and out["assigned"].sop_instance_uid not in (UID1, UID2)
    assert out["set_unknown"].status == N.NO_SUCH_SOP_INSTANCE
    assert out["set_bad_status"].status == N.INVALID_ATTRIBUTE_VALUE
    assert out["set_uid"].status == N.INVALID_ATTRIBUTE_VALUE
    assert out["set_desc"].status == 0 and out["complete"].status == 0
    for key in ("after_final", "back_to_progress", "after_disc"):
        assert out[key].status == N.PROCESSING_FAILURE, key
        assert out[key].error_id == ERROR_ID_NO_LONGER_UPDATABLE, key
    assert out["discontinue"].status == 0
    got = out["get"].dataset
    assert got.PerformedProcedureStepStatus == "COMPLETED"
    assert got.PerformedProcedureStepDescription == "HEAD"   # the late change was refused
    # Persisted: a new store over the same folder sees the final state.
    again = MPPSStore(tmp_path / "mpps").get(UID1)
    assert again.PerformedProcedureStepStatus == "COMPLETED"
    assert str(again.PatientName) == "Doe^Jane" and again.PerformedProcedureStepEndTime \
        == "014500"


def test_pynetdicom_scu_against_dicomfast_scp(tmp_path):
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS

    with serving_in_thread(lambda: _server(tmp_path / "mpps")) as server:
        ae = pynetdicom.AE(ae_title="PYMOD")
        ae.add_requested_context(MPPS)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        assoc = ae.associate(HOST, server.port, ae_title="MPPSSCP")
        assert assoc.is_established
        try:
            ds = PDS()
            ds.PatientID = "PY"
            ds.PerformedProcedureStepStatus = "IN PROGRESS"
            ds.Modality = "MR"
            status, _ = assoc.send_n_create(ds, MPPS, UID1)
            assert status.Status == 0
            status, _ = assoc.send_n_create(ds, MPPS, UID1)
            assert status.Status == N.DUPLICATE_SOP_INSTANCE
            mod = PDS()
            mod.PerformedProcedureStepStatus = "DISCONTINUED"
            status, _ = assoc.send_n_set(mod, MPPS, UID1)
            assert status.Status == 0
            mod.PerformedProcedureStepStatus = "COMPLETED"
            status, _ = assoc.send_n_set(mod, MPPS, UID1)
            assert status.Status == N.PROCESSING_FAILURE
            assert status.ErrorID == ERROR_ID_NO_LONGER_UPDATABLE
            status, _ = assoc.send_n_set(mod, MPPS, UID2)
            assert status.Status == N.NO_SUCH_SOP_INSTANCE
        finally:
            assoc.release()
    assert MPPSStore(tmp_path / "mpps").get(UID1).PerformedProcedureStepStatus == \
        "DISCONTINUED"


def test_dicomfast_scu_against_pynetdicom_scp():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pynetdicom import evt

    steps: dict = {}

    def on_create(event):
        uid = event.request.AffectedSOPInstanceUID
        ds = event.attribute_list
        if uid in steps:
            return 0x0111, None
        if ds.get("PerformedProcedureStepStatus") != "IN PROGRESS":
            return 0x0106, None
        steps[uid] = ds
        return 0x0000, ds

    def on_set(event):
        uid = event.request.RequestedSOPInstanceUID
        if uid not in steps:
            return 0x0112, None
        if steps[uid].PerformedProcedureStepStatus in ("COMPLETED", "DISCONTINUED"):
            return 0x0110, None
        steps[uid].update(event.modification_list)
        return 0x0000, steps[uid]

    ae = pynetdicom.AE(ae_title="PYMPPS")
    ae.add_supported_context(MPPS)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[
        (evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set)])
    port = server.socket.getsockname()[1]
    try:
        ours = AE("DFMOD", dimse_timeout=10, acse_timeout=10)
        rsp = ours.n_create(HOST, port, MPPS, _start(), UID1, called_ae="PYMPPS")
        assert rsp.status == 0 and rsp.sop_instance_uid == UID1
        assert rsp.dataset.PerformedProcedureStepID == "PPS-1"
        rsp = ours.n_set(HOST, port, MPPS, UID1, _mods(
            PerformedProcedureStepStatus="COMPLETED", PerformedProcedureStepEndTime="0145"))
        assert rsp.status == 0 and rsp.dataset.PerformedProcedureStepStatus == "COMPLETED"
        rsp = ours.n_set(HOST, port, MPPS, UID1, _mods(PerformedProcedureStepStatus="X"))
        assert rsp.status == N.PROCESSING_FAILURE
    finally:
        server.shutdown()
    assert steps[UID1].PerformedProcedureStepEndTime == "0145"
    assert steps[UID1].PatientID == "PID1"
