"""Modality Performed Procedure Step (PS3.4 Annex F.7): N-CREATE / N-SET SCP with the
state rules, a small persistent store, and the SCU calls.

State rules (PS3.4 F.7.2.1.2 and F.7.2.2.2):

* N-CREATE starts a step: Performed Procedure Step Status (0040,0252) must be
  ``IN PROGRESS`` (absent: 0120H Missing attribute; other: 0106H Invalid attribute
  value). A UID already known: 0111H Duplicate SOP instance. No UID in the request:
  the SCP assigns one (PS3.7 §10.1.5.1.3).
* N-SET changes an ``IN PROGRESS`` step, to ``IN PROGRESS``, ``COMPLETED`` or
  ``DISCONTINUED`` (anything else: 0106H). Once COMPLETED or DISCONTINUED the step
  is final: any further N-SET is refused with 0110H Processing failure and Error ID
  A710H ("Performed Procedure Step Object may no longer be updated"). Unknown
  instance: 0112H. N-SET cannot change the SOP Class/Instance UIDs (0106H).

The store keeps one DICOM JSON file per step (PS3.18 Annex F), ``DIR/<UID>.json``,
written to a temporary name, fsynced and renamed, so a step is either fully updated
or not at all; it survives restarts of the SCP.

    scp = MPPSSCP("archive/mpps")
    scp.install(router)
    # SCU: AE.n_create(host, port, MPPS, attributes, uid); AE.n_set(..., modifications)
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from dicomfast.atomic import write_file
from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError
from dicomfast.net import dimse_n as N
from dicomfast.net.services.router import NEvent, NResult, ServiceRouter
from dicomfast.net.services.storage import valid_uid
from dicomfast.uid import generate_uid

MPPS = "1.2.840.10008.3.1.2.3.3"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL = (COMPLETED, DISCONTINUED)
#: Error ID with 0110H: the step may no longer be updated (PS3.4 F.7.2.2.2).
ERROR_ID_NO_LONGER_UPDATABLE = 0xA710
T_STATUS = 0x00400252
_UNCHANGEABLE = (0x00080016, 0x00080018)   # SOP Class/Instance UID


def _status_of(ds: Dataset) -> str | None:
    if T_STATUS not in ds:
        return None
    value = ds.get(T_STATUS)
    value = getattr(value, "value", value)
    return None if value is None else str(value).strip().upper()


class MPPSStore:
    """Steps as DICOM JSON files in a folder; thread-safe."""

    def __init__(self, folder: str | os.PathLike, *, fsync: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.lock = threading.Lock()

    def _path(self, uid: str) -> Path:
        if not valid_uid(uid):
            raise ValueError(f"not a UID: {uid!r}")
        return self.folder / f"{uid}.json"

    def get(self, uid: str) -> Dataset | None:
        try:
            path = self._path(uid)
            text = path.read_text()
        except (OSError, ValueError):
            return None
        return Dataset.from_json(text)

    def exists(self, uid: str) -> bool:
        try:
            return self._path(uid).exists()
        except ValueError:
            return False

    def put(self, uid: str, ds: Dataset) -> None:
        path = self._path(uid)
        data = json.dumps(ds.to_json_dict()).encode()
        write_file(path, [data], fsync=self.fsync, prefix=".mpps-")

    def uids(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json"))


class MPPSSCP:
    """N-CREATE / N-SET / N-GET handler for the MPPS SOP Class (see module docstring).
    ``store``: an :class:`MPPSStore` or a folder."""

    def __init__(self, store: MPPSStore | str | os.PathLike, *, fsync: bool = True):
        self.store = store if isinstance(store, MPPSStore) else MPPSStore(store, fsync=fsync)

    def install(self, router: ServiceRouter) -> None:
        router.add_n_handler(MPPS, self, [N.N_CREATE_RQ, N.N_SET_RQ, N.N_GET_RQ])

    async def __call__(self, event: NEvent) -> NResult | int:
        return await event.run_blocking(self.handle, event.request)

    def handle(self, rq: N.NRequest) -> NResult | int:
        with self.store.lock:
            if rq.command_field == N.N_CREATE_RQ:
                return self._create(rq)
            if rq.command_field == N.N_SET_RQ:
                return self._set(rq)
            return self._get(rq)

    def _create(self, rq: N.NRequest) -> NResult | int:
        ds = rq.dataset if rq.dataset is not None else Dataset()
        uid = rq.sop_instance_uid or str(generate_uid())
        if not valid_uid(uid):
            return NResult(N.INVALID_OBJECT_INSTANCE, error_comment="invalid instance UID")
        if self.store.exists(uid):
            return N.DUPLICATE_SOP_INSTANCE
        status = _status_of(ds)
        if status is None:
            return NResult(N.MISSING_ATTRIBUTE, offending=[T_STATUS],
                           error_comment="no Performed Procedure Step Status")
        if status != IN_PROGRESS:
            # PS3.4 F.7.2.1.2: a step is created IN PROGRESS, nothing else.
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_STATUS],
                           error_comment=f"status must be {IN_PROGRESS} at N-CREATE")
        stored = Dataset()
        for el in ds:
            stored.add_new(el.tag, el.VR, el.value)
        stored.SOPClassUID = MPPS
        stored.SOPInstanceUID = uid
        try:
            self.store.put(uid, stored)
        except (OSError, DicomfastError, ValueError) as exc:
            return NResult(N.PROCESSING_FAILURE, error_comment=f"cannot store: {exc}")
        return NResult(N.SUCCESS, sop_instance_uid=uid)

    def _set(self, rq: N.NRequest) -> NResult | int:
        uid = rq.sop_instance_uid or ""
        current = self.store.get(uid)
        if current is None:
            return N.NO_SUCH_SOP_INSTANCE
        if _status_of(current) in FINAL:
            return NResult(N.PROCESSING_FAILURE, error_id=ERROR_ID_NO_LONGER_UPDATABLE,
                           error_comment="Performed Procedure Step may no longer be updated")
        mods = rq.dataset if rq.dataset is not None else Dataset()
        new_status = _status_of(mods)
        if T_STATUS in mods and new_status not in (IN_PROGRESS, *FINAL):
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_STATUS],
                           error_comment="status must be IN PROGRESS, COMPLETED or "
                                         "DISCONTINUED")
        bad = [t for t in _UNCHANGEABLE if t in mods]
        if bad:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=bad,
                           error_comment="SOP Class/Instance UID cannot be changed")
        for el in mods:
            if el.value is None or el.value == "" or el.value == []:
                # PS3.4 F.7.2.2.2 / PS3.7 §10.1.3: a zero-length value clears it.
                if el.tag in current:
                    del current[el.tag]
                continue
            current.add_new(el.tag, el.VR, el.value)
        try:
            self.store.put(uid, current)
        except (OSError, DicomfastError, ValueError) as exc:
            return NResult(N.PROCESSING_FAILURE, error_comment=f"cannot store: {exc}")
        return NResult(N.SUCCESS)

    def _get(self, rq: N.NRequest) -> NResult | int:
        current = self.store.get(rq.sop_instance_uid or "")
        if current is None:
            return N.NO_SUCH_SOP_INSTANCE
        if not rq.attribute_identifiers:
            return NResult(dataset=current)
        out = Dataset()
        for el in current:
            if el.tag in rq.attribute_identifiers:
                out.add_new(el.tag, el.VR, el.value)
        return NResult(dataset=out)


def in_progress(patient_id: str, patient_name: str, modality: str, station_ae: str,
                step_id: str, start: tuple[str, str], study_uid: str | None = None,
                **extra: Any) -> Dataset:
    """A minimal N-CREATE Attribute List for a step just started (PS3.4 Table F.7.2-1)."""
    ds = Dataset()
    item = Dataset()
    item.StudyInstanceUID = study_uid or str(generate_uid())
    item.AccessionNumber = ""
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PerformedProcedureStepID = step_id
    ds.PerformedStationAETitle = station_ae
    ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = start
    ds.PerformedProcedureStepStatus = IN_PROGRESS
    ds.Modality = modality
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def mount(router: ServiceRouter, archive: Any, settings: Any = None) -> MPPSSCP:
    """Serve MPPS on `router`, steps kept in ``<archive root>/mpps`` (the shape of
    qrscp's ``N_SERVICES`` entries)."""
    scp = MPPSSCP(Path(archive.root) / "mpps", fsync=getattr(archive, "fsync", True))
    scp.install(router)
    return scp
