"""Print Management SCU (PS3.4 Annex H): print images on a DICOM printer.

One association proposing the Basic Grayscale or Basic Color Print Management Meta
SOP Class (and Print Job): N-GET of the Printer status, N-CREATE of a Film Session,
then per sheet an N-CREATE of a Film Box with the Image Display Format, one N-SET
per Image Box with the image as its Basic Grayscale/Color Image Sequence item, the
Film Box N-ACTION (print) and N-DELETE; at the end the Film Session N-DELETE.
More images than a sheet holds go onto further sheets. N-EVENT-REPORTs the printer
sends (Printer status, Print Job progress) are answered and collected.

Images come as 8-bit pixel arrays (2-D gray, or (rows, cols, 3) RGB), already
rendered for display: :func:`dicomfast.print_cli.print_files` renders DICOM files
with :mod:`dicomfast.render` first (the network layer never imports pixel code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicomfast.dataset import Dataset
from dicomfast.errors import DIMSEError
from dicomfast.net import dimse_n as N
from dicomfast.net.association import Association, Settings
from dicomfast.net.services import nscu
from dicomfast.net.services import print_common as PC
from dicomfast.net.services.router import NEvent, ServiceRouter

_SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


@dataclass
class PrintResult:
    """What happened: the printer's status, the session and film boxes, the print
    jobs, every DIMSE-N status received (operation, status), and the events."""
    printer: Dataset | None = None
    film_session_uid: str | None = None
    film_boxes: list[str] = field(default_factory=list)
    print_jobs: list[str] = field(default_factory=list)
    job_status: dict[str, Dataset] = field(default_factory=dict)
    statuses: list[tuple[str, int]] = field(default_factory=list)
    events: list[tuple[str, int, Dataset | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(N.n_status_category(s) != "Failure" for what, s in self.statuses
                   if what != "Printer N-GET")


class PrintError(DIMSEError):
    """A print operation failed; ``result`` holds what was done until then."""

    def __init__(self, message: str, result: PrintResult, status: int):
        super().__init__(message)
        self.result, self.status = result, status


def image_item(image: np.ndarray) -> tuple[bool, Dataset]:
    """(is colour, the Basic Grayscale/Color Image Sequence item) of an 8-bit image
    (PS3.4 H.4.3.1: MONOCHROME2 8 bits; RGB 8 bits colour-by-plane)."""
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8:
        raise ValueError("print images must be 8-bit (render them first)")
    item = Dataset()
    if img.ndim == 3 and img.shape[2] == 3:
        color = True
        item.SamplesPerPixel = 3
        item.PhotometricInterpretation = "RGB"
        item.PlanarConfiguration = 1
        data = np.ascontiguousarray(img.transpose(2, 0, 1)).tobytes()
    elif img.ndim == 2:
        color = False
        item.SamplesPerPixel = 1
        item.PhotometricInterpretation = "MONOCHROME2"
        data = img.tobytes()
    else:
        raise ValueError(f"print images are (rows, cols) or (rows, cols, 3), not {img.shape}")
    item.Rows, item.Columns = img.shape[0], img.shape[1]
    item.PixelAspectRatio = [1, 1]
    item.BitsAllocated = item.BitsStored = 8
    item.HighBit = 7
    item.PixelRepresentation = 0
    if len(data) & 1:
        data += b"\0"
    item.add_new(0x7FE00010, "OB", data)
    return color, item


async def print_images(settings: Settings, host: str, port: int,
                       images: Iterable[np.ndarray], *, called_ae: str = "ANY-SCP",
                       display_format: str = "STANDARD\\1,1", film_size: str = "14INX17IN",
                       orientation: str = "PORTRAIT", copies: int = 1,
                       medium_type: str | None = None, color: bool | None = None,
                       session_attributes: dict[str, Any] | None = None) -> PrintResult:
    """Print `images` (see the module docstring). ``color``: use the Basic Color Meta
    SOP Class (default: when any image is RGB). Raises :class:`PrintError` on a
    Failure status, with the partial result."""
    items = [image_item(img) for img in images]
    if not items:
        raise ValueError("nothing to print")
    per_sheet = PC.box_count(display_format)
    use_color = any(c for c, _ in items) if color is None else color
    meta = PC.COLOR_META if use_color else PC.GRAYSCALE_META
    box_class = PC.IMAGE_BOX_FOR_META[meta]
    seq_kw = "BasicColorImageSequence" if use_color else "BasicGrayscaleImageSequence"
    if not use_color and any(c for c, _ in items):
        raise ValueError("colour images need the colour print meta SOP class")
    result = PrintResult()
    events = ServiceRouter()

    def on_event(ev: NEvent) -> int:
        name = "printer" if ev.sop_class_uid == PC.PRINTER else "print job"
        result.events.append((name, ev.request.event_type_id or 0, ev.dataset))
        return N.SUCCESS

    events.add_n_handler(PC.PRINTER, on_event, [N.N_EVENT_REPORT_RQ])
    events.add_n_handler(PC.PRINT_JOB, on_event, [N.N_EVENT_REPORT_RQ])
    assoc = await Association.request(host, port, [(meta, _SYNTAXES), (PC.PRINT_JOB, _SYNTAXES)],
                                      called_ae=called_ae, settings=settings, handler=events)
    async with assoc:
        if not any(c.abstract_syntax == meta for c in assoc.contexts.values()):
            raise PrintError(f"the printer does not accept {meta}", result, 0)

        def check(what: str, rsp: N.NResponse) -> N.NResponse:
            result.statuses.append((what, rsp.status))
            if not rsp.ok:
                raise PrintError(f"{what}: {N.status_name(rsp.status)} "
                                 f"(0x{rsp.status:04X})"
                                 + (f": {rsp.error_comment}" if rsp.error_comment else ""),
                                 result, rsp.status)
            return rsp

        # Printer Status and Status Info: the two every printer has (PS3.4 H.4.6.1.1).
        rsp = await nscu.n_get(assoc, PC.PRINTER, PC.PRINTER_INSTANCE,
                               [0x21100010, 0x21100020], abstract_syntax=meta)
        result.statuses.append(("Printer N-GET", rsp.status))
        result.printer = rsp.dataset
        if rsp.dataset is not None and str(rsp.dataset.get("PrinterStatus") or "") \
                .strip().upper() == "FAILURE":
            raise PrintError("the printer reports FAILURE", result, rsp.status)
        session = Dataset()
        session.NumberOfCopies = copies
        if medium_type:
            session.MediumType = medium_type
        for key, value in (session_attributes or {}).items():
            setattr(session, key, value)
        rsp = check("Film Session N-CREATE", await nscu.n_create(
            assoc, PC.FILM_SESSION, session, abstract_syntax=meta))
        result.film_session_uid = rsp.sop_instance_uid
        assert result.film_session_uid is not None
        for start in range(0, len(items), per_sheet):
            page = items[start:start + per_sheet]
            await _print_sheet(assoc, meta, box_class, seq_kw, page, display_format,
                               film_size, orientation, result, check)
        check("Film Session N-DELETE", await nscu.n_delete(
            assoc, PC.FILM_SESSION, result.film_session_uid, abstract_syntax=meta))
    return result


async def _print_sheet(assoc: Association, meta: str, box_class: str, seq_kw: str,
                       page: list[tuple[bool, Dataset]], display_format: str, film_size: str,
                       orientation: str, result: PrintResult, check: Any) -> None:
    box = Dataset()
    box.ImageDisplayFormat = display_format
    box.FilmOrientation = orientation
    box.FilmSizeID = film_size
    ref = Dataset()
    ref.ReferencedSOPClassUID = PC.FILM_SESSION
    ref.ReferencedSOPInstanceUID = result.film_session_uid
    box.ReferencedFilmSessionSequence = [ref]
    rsp = check("Film Box N-CREATE", await nscu.n_create(assoc, PC.FILM_BOX, box,
                                                         abstract_syntax=meta))
    film_box = rsp.sop_instance_uid
    result.film_boxes.append(film_box)
    refs = list(rsp.dataset.ReferencedImageBoxSequence) \
        if rsp.dataset is not None and "ReferencedImageBoxSequence" in rsp.dataset else []
    if len(refs) < len(page):
        raise PrintError(f"the printer made {len(refs)} image boxes for "
                         f"{display_format}, {len(page)} images to place", result, 0)
    for position, ((_, item), ref_item) in enumerate(zip(page, refs[:len(page)], strict=True), 1):
        mod = Dataset()
        mod.ImageBoxPosition = position
        setattr(mod, seq_kw, [item])
        check("Image Box N-SET", await nscu.n_set(
            assoc, str(ref_item.ReferencedSOPClassUID) or box_class,
            str(ref_item.ReferencedSOPInstanceUID), mod, abstract_syntax=meta))
    rsp = check("Film Box N-ACTION", await nscu.n_action(assoc, PC.FILM_BOX, film_box,
                                                         PC.PRINT_ACTION, abstract_syntax=meta))
    if rsp.dataset is not None and "ReferencedPrintJobSequence" in rsp.dataset:
        for job in rsp.dataset.ReferencedPrintJobSequence:
            uid = str(job.ReferencedSOPInstanceUID)
            result.print_jobs.append(uid)
            if any(c.abstract_syntax == PC.PRINT_JOB for c in assoc.contexts.values()):
                got = await nscu.n_get(assoc, PC.PRINT_JOB, uid, [0x21000020, 0x21000030])
                result.statuses.append(("Print Job N-GET", got.status))
                if got.dataset is not None:
                    result.job_status[uid] = got.dataset
    check("Film Box N-DELETE", await nscu.n_delete(assoc, PC.FILM_BOX, film_box,
                                                   abstract_syntax=meta))
