"""Print Management SCP (PS3.4 Annex H): a DICOM printer that renders each printed
film sheet to a PNG file.

Served SOP classes: the Basic Grayscale and Basic Color Print Management Meta SOP
Classes (Film Session, Film Box, Grayscale/Color Image Box, Printer), and Print Job.

* Basic Film Session: N-CREATE (one per association, PS3.4 H.4.1.2.1: a second one
  gets 0111H), N-SET, N-ACTION (print every film box of the session; none: C600H),
  N-DELETE (with its film boxes).
* Basic Film Box: N-CREATE with Image Display Format (PS3.3 C.13.8; STANDARD, ROW
  and COL) and a Referenced Film Session Sequence naming this association's session
  (missing: 0120H; another or none: 0106H). The SCP creates the image boxes the
  format calls for and returns them in the Referenced Image Box Sequence. A format
  with more boxes than ``max_image_boxes``, or a film size/orientation the printer
  does not offer, is refused with 0106H. N-SET, N-ACTION (print; no image set:
  warning B603H), N-DELETE.
* Image Box: N-SET with the image as the Basic Grayscale (2020,0110) or Basic Color
  (2020,0111) Image Sequence item. An Image Box Position outside the film box's
  format is refused with 0106H; an unknown (or deleted) box with 0112H; an image
  larger than ``max_image_pixels`` with C603H.
* Printer: N-GET of the well-known instance 1.2.840.10008.5.1.1.17; N-EVENT-REPORT
  of its status to every association with :meth:`PrintSCP.report_printer_status`.
* Print Job: created by each print N-ACTION (returned in the Referenced Print Job
  Sequence), N-GET, and N-EVENT-REPORTs PRINTING and DONE / FAILURE to the SCU when
  it negotiated the Print Job SOP Class.

Operations out of order refer to objects that do not exist (yet, or any more) on the
association: they get the status of the missing reference above, never a crash.

State lives per association and disappears with it (PS3.4 H.2.1: a film session
ends with its association); print jobs and the list of printed sheets are kept by
the SCP. Rendering is injected: ``render(image_item) -> ndarray`` turns an image
box's image into 8-bit pixels (2-D gray or RGB) and ``write_png(path, sheet)``
writes a sheet; :func:`dicomfast.print_cli.make_print_scp` wires
:mod:`dicomfast.render` in (the network layer never imports the pixel layer).
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dicomfast.dataset import Dataset
from dicomfast.errors import AssociationError, DicomfastError, DIMSEError
from dicomfast.net import dimse_n as N
from dicomfast.net.association import Association
from dicomfast.net.services import nscu
from dicomfast.net.services import print_common as PC
from dicomfast.net.services.router import NEvent, NResult, ServiceRouter
from dicomfast.uid import generate_uid

log = logging.getLogger("dicomfast.net")

T_IMAGE_DISPLAY_FORMAT = 0x20100010
T_FILM_ORIENTATION = 0x20100040
T_FILM_SIZE_ID = 0x20100050
T_REFERENCED_FILM_SESSION = 0x20100500
T_IMAGE_BOX_POSITION = 0x20200010
T_GRAY_IMAGE_SEQUENCE = 0x20200110
T_COLOR_IMAGE_SEQUENCE = 0x20200111
T_NUMBER_OF_COPIES = 0x20000010


@dataclass
class ImageBox:
    uid: str
    sop_class: str
    position: int
    image: Dataset | None = None
    attrs: Dataset = field(default_factory=Dataset)


@dataclass
class FilmBox:
    uid: str
    attrs: Dataset
    display_format: str
    boxes: list[ImageBox]
    printed: int = 0


@dataclass
class FilmSession:
    uid: str
    meta: str
    attrs: Dataset
    film_boxes: list[FilmBox] = field(default_factory=list)


@dataclass
class _State:
    session: FilmSession | None = None
    film_boxes: dict[str, FilmBox] = field(default_factory=dict)
    image_boxes: dict[str, tuple[FilmBox, ImageBox]] = field(default_factory=dict)


@dataclass
class PrintedSheet:
    """One film sheet the SCP printed."""
    path: str | None
    film_box_uid: str
    print_job_uid: str
    display_format: str
    images: int
    shape: tuple[int, ...]
    copies: int


def _copy(ds: Dataset | None) -> Dataset:
    out = Dataset()
    for el in ds or ():
        out.add_new(el.tag, el.VR, el.value)
    return out


def _text(ds: Dataset, tag: int) -> str | None:
    if tag not in ds:
        return None
    el = ds.get(tag)
    value = getattr(el, "value", el)
    return None if value is None else str(value).strip()


def _filtered(ds: Dataset, identifiers: list[int]) -> Dataset:
    if not identifiers:
        return ds
    out = Dataset()
    for el in ds:
        if el.tag in identifiers:
            out.add_new(el.tag, el.VR, el.value)
    return out


def _ref(sop_class: str, uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = uid
    return item


class PrintSCP:
    """A DICOM printer (see the module docstring). ``output_dir``: where sheets go
    (``<print job UID>-<n>.png``); ``render``/``write_png``: the pixel functions
    (both None: sheets are laid out and counted, no files written). ``on_image(box)``
    is called for each image an N-SET puts into an image box."""

    def __init__(self, output_dir: str | os.PathLike | None, *,
                 render: Callable[[Dataset], np.ndarray] | None = None,
                 write_png: Callable[[str, np.ndarray], None] | None = None,
                 printer_name: str = "DICOMFAST", max_image_boxes: int = 64,
                 max_image_pixels: int = 8192 * 8192, dpi: int = 100,
                 film_sizes: tuple[str, ...] = tuple(PC.FILM_SIZES_INCHES),
                 notify: bool = True, on_image: Callable[[ImageBox], None] | None = None):
        self.output_dir = Path(output_dir) if output_dir is not None else None
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self.render = render
        self.write_png = write_png
        self.printer_name = printer_name
        self.max_image_boxes = max_image_boxes
        self.max_image_pixels = max_image_pixels
        self.dpi = dpi
        self.film_sizes = film_sizes
        self.notify = notify
        self.on_image = on_image
        self.printer_status = ("NORMAL", "NORMAL")
        self.jobs: dict[str, Dataset] = {}
        self.printed: list[PrintedSheet] = []
        self._states: dict[Association, _State] = {}
        self._lock = threading.Lock()

    def install(self, router: ServiceRouter) -> None:
        for meta in PC.META_CLASSES:
            router.add_abstract_syntax(meta)
        router.add_n_handler(PC.FILM_SESSION, self._film_session,
                             [N.N_CREATE_RQ, N.N_SET_RQ, N.N_ACTION_RQ, N.N_DELETE_RQ])
        router.add_n_handler(PC.FILM_BOX, self._film_box,
                             [N.N_CREATE_RQ, N.N_SET_RQ, N.N_ACTION_RQ, N.N_DELETE_RQ])
        for cls in (PC.GRAYSCALE_IMAGE_BOX, PC.COLOR_IMAGE_BOX):
            router.add_n_handler(cls, self._image_box, [N.N_SET_RQ])
        router.add_n_handler(PC.PRINTER, self._printer, [N.N_GET_RQ])
        router.add_n_handler(PC.PRINT_JOB, self._print_job, [N.N_GET_RQ])

    def _state(self, assoc: Association) -> _State:
        state = self._states.get(assoc)
        if state is None:
            state = self._states[assoc] = _State()
            # PS3.4 H.2.1: the film session and all it holds end with the association.
            assoc.closed.add_done_callback(lambda _f: self._states.pop(assoc, None))
        return state

    # -- Basic Film Session (PS3.4 H.4.1) ----------------------------------------------
    async def _film_session(self, ev: NEvent) -> NResult | int:
        state = self._state(ev.assoc)
        rq = ev.request
        if rq.command_field == N.N_CREATE_RQ:
            if state.session is not None:
                return NResult(N.DUPLICATE_SOP_INSTANCE,
                               error_comment="a film session exists on this association")
            attrs = _copy(ev.dataset)
            copies = attrs.get(T_NUMBER_OF_COPIES)
            if copies is not None and not 1 <= int(getattr(copies, "value", copies) or 0) \
                    <= 99:
                return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_NUMBER_OF_COPIES])
            meta = ev.context.abstract_syntax
            if meta not in PC.META_CLASSES:
                meta = PC.GRAYSCALE_META
            uid = rq.sop_instance_uid or str(generate_uid())
            state.session = FilmSession(uid, meta, attrs)
            return NResult(sop_instance_uid=uid, dataset=attrs)
        session = state.session
        if session is None or rq.sop_instance_uid != session.uid:
            return N.NO_SUCH_SOP_INSTANCE
        if rq.command_field == N.N_SET_RQ:
            for el in ev.dataset or ():
                session.attrs.add_new(el.tag, el.VR, el.value)
            return NResult(dataset=session.attrs)
        if rq.command_field == N.N_DELETE_RQ:
            for fb in session.film_boxes:
                self._drop_film_box(state, fb)
            state.session = None
            return N.SUCCESS
        if rq.action_type_id != PC.PRINT_ACTION:
            return N.NO_SUCH_ACTION
        if not session.film_boxes:
            return NResult(PC.FAIL_SESSION_NO_FILM_BOX,
                           error_comment="no film box in the film session")
        return await self._print(ev, session, list(session.film_boxes),
                                 PC.WARN_SESSION_EMPTY_PAGE)

    # -- Basic Film Box (PS3.4 H.4.2) --------------------------------------------------
    async def _film_box(self, ev: NEvent) -> NResult | int:
        state = self._state(ev.assoc)
        rq = ev.request
        if rq.command_field == N.N_CREATE_RQ:
            return self._create_film_box(ev, state)
        fb = state.film_boxes.get(rq.sop_instance_uid or "")
        if fb is None:
            return N.NO_SUCH_SOP_INSTANCE
        if rq.command_field == N.N_SET_RQ:
            mods = ev.dataset or Dataset()
            if T_IMAGE_DISPLAY_FORMAT in mods:
                # The image boxes exist already: the format is fixed at N-CREATE.
                return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_IMAGE_DISPLAY_FORMAT])
            for el in mods:
                fb.attrs.add_new(el.tag, el.VR, el.value)
            return NResult(dataset=fb.attrs)
        if rq.command_field == N.N_DELETE_RQ:
            self._drop_film_box(state, fb)
            return N.SUCCESS
        if rq.action_type_id != PC.PRINT_ACTION:
            return N.NO_SUCH_ACTION
        assert state.session is not None
        return await self._print(ev, state.session, [fb], PC.WARN_FILM_BOX_EMPTY_PAGE)

    def _create_film_box(self, ev: NEvent, state: _State) -> NResult | int:
        attrs = _copy(ev.dataset)
        if T_REFERENCED_FILM_SESSION not in attrs:
            return NResult(N.MISSING_ATTRIBUTE, offending=[T_REFERENCED_FILM_SESSION])
        refs = attrs.ReferencedFilmSessionSequence or []
        ref_uid = str(refs[0].ReferencedSOPInstanceUID) if len(refs) == 1 and \
            "ReferencedSOPInstanceUID" in refs[0] else None
        if state.session is None or ref_uid != state.session.uid:
            # Out of order: no film session yet, or one that is not this association's.
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_REFERENCED_FILM_SESSION],
                           error_comment="no such film session on this association")
        fmt = _text(attrs, T_IMAGE_DISPLAY_FORMAT)
        if not fmt:
            return NResult(N.MISSING_ATTRIBUTE, offending=[T_IMAGE_DISPLAY_FORMAT])
        try:
            count = PC.box_count(fmt)
        except PC.DisplayFormatError as exc:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_IMAGE_DISPLAY_FORMAT],
                           error_comment=str(exc))
        if count > self.max_image_boxes:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_IMAGE_DISPLAY_FORMAT],
                           error_comment=f"{count} image boxes; this printer takes at most "
                                         f"{self.max_image_boxes}")
        size = _text(attrs, T_FILM_SIZE_ID)
        if size and size.upper() not in self.film_sizes:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_FILM_SIZE_ID])
        orientation = _text(attrs, T_FILM_ORIENTATION)
        if orientation and orientation.upper() not in ("PORTRAIT", "LANDSCAPE"):
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_FILM_ORIENTATION])
        session = state.session
        uid = ev.request.sop_instance_uid or str(generate_uid())
        if uid in state.film_boxes:
            return N.DUPLICATE_SOP_INSTANCE
        box_class = PC.IMAGE_BOX_FOR_META[session.meta]
        boxes = [ImageBox(str(generate_uid()), box_class, i + 1) for i in range(count)]
        fb = FilmBox(uid, attrs, fmt, boxes)
        session.film_boxes.append(fb)
        state.film_boxes[uid] = fb
        for box in boxes:
            state.image_boxes[box.uid] = (fb, box)
        reply = _copy(attrs)
        reply.ReferencedImageBoxSequence = [_ref(b.sop_class, b.uid) for b in boxes]
        return NResult(sop_instance_uid=uid, dataset=reply)

    def _drop_film_box(self, state: _State, fb: FilmBox) -> None:
        state.film_boxes.pop(fb.uid, None)
        for box in fb.boxes:
            state.image_boxes.pop(box.uid, None)
        if state.session is not None and fb in state.session.film_boxes:
            state.session.film_boxes.remove(fb)

    # -- Image Box (PS3.4 H.4.3) -------------------------------------------------------
    def _image_box(self, ev: NEvent) -> NResult | int:
        state = self._state(ev.assoc)
        rq = ev.request
        found = state.image_boxes.get(rq.sop_instance_uid or "")
        if found is None:
            return N.NO_SUCH_SOP_INSTANCE
        fb, box = found
        if rq.sop_class_uid != box.sop_class:
            return N.CLASS_INSTANCE_CONFLICT
        mods = ev.dataset or Dataset()
        if T_IMAGE_BOX_POSITION in mods:
            pos = int(mods.ImageBoxPosition)
            if not 1 <= pos <= len(fb.boxes):
                # More images than the film box's format holds.
                return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_IMAGE_BOX_POSITION],
                               error_comment=f"position {pos} outside {fb.display_format}")
            if pos != box.position:
                return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[T_IMAGE_BOX_POSITION],
                               error_comment=f"this image box is at position {box.position}")
        gray = box.sop_class == PC.GRAYSCALE_IMAGE_BOX
        seq_tag = T_GRAY_IMAGE_SEQUENCE if gray else T_COLOR_IMAGE_SEQUENCE
        wrong = T_COLOR_IMAGE_SEQUENCE if gray else T_GRAY_IMAGE_SEQUENCE
        if wrong in mods:
            return NResult(N.NO_SUCH_ATTRIBUTE, offending=[wrong])
        if seq_tag in mods:
            items = mods.get(seq_tag)
            items = getattr(items, "value", items) or []
            if len(items) > 1:
                return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[seq_tag])
            if items:
                status = self._check_image(items[0], gray)
                if status is not None:
                    return status
                box.image = items[0]
                if self.on_image is not None:
                    self.on_image(box)
            else:
                box.image = None  # an empty sequence clears the box (PS3.4 H.4.3.1.2)
        for el in mods:
            if el.tag != seq_tag:
                box.attrs.add_new(el.tag, el.VR, el.value)
        return N.SUCCESS

    def _check_image(self, item: Dataset, gray: bool) -> NResult | None:
        needed = (0x00280010, 0x00280011, 0x00280100, 0x00280004, 0x7FE00010)
        missing = [t for t in needed if t not in item]
        if missing:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=missing,
                           error_comment="image item lacks pixel module attributes")
        photometric = str(item.PhotometricInterpretation).strip().upper()
        allowed = ("MONOCHROME1", "MONOCHROME2") if gray else ("RGB",)
        if photometric not in allowed:
            return NResult(N.INVALID_ATTRIBUTE_VALUE, offending=[0x00280004])
        if int(item.Rows) * int(item.Columns) > self.max_image_pixels:
            return NResult(PC.FAIL_IMAGE_TOO_LARGE, error_comment="image too large")
        return None

    # -- Printer and Print Job (PS3.4 H.4.4, H.4.5) ------------------------------------
    def printer_attributes(self) -> Dataset:
        ds = Dataset()
        ds.PrinterStatus, ds.PrinterStatusInfo = self.printer_status
        ds.PrinterName = self.printer_name
        ds.Manufacturer = "dicomfast"
        ds.ManufacturerModelName = "PNG film printer"
        ds.SoftwareVersions = "1"
        return ds

    def _printer(self, ev: NEvent) -> NResult | int:
        if ev.sop_instance_uid != PC.PRINTER_INSTANCE:
            return N.NO_SUCH_SOP_INSTANCE
        return NResult(dataset=_filtered(self.printer_attributes(),
                                         ev.request.attribute_identifiers))

    def _print_job(self, ev: NEvent) -> NResult | int:
        with self._lock:
            job = self.jobs.get(ev.sop_instance_uid or "")
            if job is None:
                return N.NO_SUCH_SOP_INSTANCE
            return NResult(dataset=_filtered(_copy(job), ev.request.attribute_identifiers))

    async def report_printer_status(self, status: str, info: str = "NORMAL") -> int:
        """Set the printer status and send it (N-EVENT-REPORT, PS3.4 H.4.4.1.1) to every
        association with print state; returns how many SCUs acknowledged it."""
        status = status.upper()
        if status not in PC.PRINTER_EVENTS:
            raise ValueError(f"printer status is NORMAL, WARNING or FAILURE, not {status!r}")
        self.printer_status = (status, info)
        event_info = Dataset()
        event_info.PrinterStatusInfo = info
        event_info.PrinterName = self.printer_name
        acked = 0
        for assoc in list(self._states):
            if await self._send_event(assoc, PC.PRINTER, PC.PRINTER_INSTANCE,
                                      PC.PRINTER_EVENTS[status], event_info):
                acked += 1
        return acked

    async def _send_event(self, assoc: Association, sop_class: str, uid: str, event_type: int,
                          info: Dataset) -> bool:
        if not assoc.is_established:
            return False
        wanted = PC.PRINT_JOB if sop_class == PC.PRINT_JOB else None
        contexts = [c for c in assoc.contexts.values()
                    if c.abstract_syntax == (wanted or c.abstract_syntax)
                    and (wanted or c.abstract_syntax in (*PC.META_CLASSES, PC.PRINTER))]
        if not contexts:
            return False
        try:
            rsp = await nscu.n_event_report(assoc, sop_class, uid, event_type, info,
                                            abstract_syntax=contexts[0].abstract_syntax)
            return rsp.ok
        except (AssociationError, DIMSEError) as exc:
            log.info("event report to %s not delivered: %s", assoc.calling_ae, exc)
            return False

    # -- printing ----------------------------------------------------------------------
    async def _print(self, ev: NEvent, session: FilmSession, film_boxes: list[FilmBox],
                     empty_warning: int) -> NResult:
        job_uid = str(generate_uid())
        now = datetime.datetime.now()
        job = Dataset()
        job.ExecutionStatus = "PENDING"
        job.ExecutionStatusInfo = "QUEUED"
        job.CreationDate = now.strftime("%Y%m%d")
        job.CreationTime = now.strftime("%H%M%S")
        job.PrinterName = self.printer_name
        job.Originator = ev.calling_ae
        if "PrintPriority" in session.attrs:
            job.PrintPriority = session.attrs.PrintPriority
        with self._lock:
            self.jobs[job_uid] = job
        copies = int(session.attrs.NumberOfCopies) if "NumberOfCopies" in session.attrs else 1
        empty = any(all(b.image is None for b in fb.boxes) for fb in film_boxes)
        status = empty_warning if empty else N.SUCCESS
        try:
            sheets = await ev.run_blocking(self._print_sheets, job_uid, film_boxes, copies)
        except (DicomfastError, ValueError, OSError) as exc:
            log.error("print job %s failed: %s", job_uid, exc)
            self._set_job(job_uid, "FAILURE", str(exc)[:64])
            return NResult(N.PROCESSING_FAILURE, error_comment=f"print failed: {exc}",
                           after=self._job_events(ev.assoc, job_uid, ("FAILURE",)))
        self.printed.extend(sheets)
        self._set_job(job_uid, "DONE", "NORMAL")
        reply = Dataset()
        reply.ReferencedPrintJobSequence = [_ref(PC.PRINT_JOB, job_uid)]
        return NResult(status, dataset=reply,
                       after=self._job_events(ev.assoc, job_uid, ("PRINTING", "DONE")))

    def _set_job(self, uid: str, status: str, info: str) -> None:
        with self._lock:
            job = self.jobs[uid]
            job.ExecutionStatus = status
            job.ExecutionStatusInfo = info

    def _job_events(self, assoc: Association, job_uid: str, events: tuple[str, ...]):
        async def send() -> None:
            if not self.notify:
                return
            for name in events:
                info = Dataset()
                info.ExecutionStatusInfo = "NORMAL" if name != "FAILURE" else "FAILURE"
                info.PrinterName = self.printer_name
                await self._send_event(assoc, PC.PRINT_JOB, job_uid, PC.JOB_EVENTS[name], info)
        return send

    def _print_sheets(self, job_uid: str, film_boxes: list[FilmBox],
                      copies: int) -> list[PrintedSheet]:
        out = []
        for n, fb in enumerate(film_boxes, 1):
            sheet = self.compose(fb)
            path = None
            if self.output_dir is not None and self.write_png is not None:
                path = str(self.output_dir / f"{job_uid}-{n}.png")
                self.write_png(path, sheet)
            fb.printed += 1
            out.append(PrintedSheet(path, fb.uid, job_uid, fb.display_format,
                                    sum(b.image is not None for b in fb.boxes),
                                    tuple(sheet.shape), copies))
        return out

    def sheet_size(self, fb: FilmBox) -> tuple[int, int]:
        """(height, width) in pixels of the film box's sheet at ``dpi``."""
        size = (_text(fb.attrs, T_FILM_SIZE_ID) or "14INX17IN").upper()
        w_in, h_in = PC.FILM_SIZES_INCHES.get(size, (14, 17))
        if (_text(fb.attrs, T_FILM_ORIENTATION) or "PORTRAIT").upper() == "LANDSCAPE":
            w_in, h_in = h_in, w_in
        return int(round(h_in * self.dpi)), int(round(w_in * self.dpi))

    def compose(self, fb: FilmBox) -> np.ndarray:
        """The film box's sheet: each image box's image fitted (aspect kept, nearest
        neighbour) and centred in its cell of the display format; empty boxes black."""
        height, width = self.sheet_size(fb)
        images: list[np.ndarray | None] = []
        for box in fb.boxes:
            if box.image is None or self.render is None:
                images.append(None)
                continue
            img = np.asarray(self.render(box.image))
            if img.dtype != np.uint8:
                raise ValueError("the renderer must return 8-bit pixels")
            images.append(img)
        color = any(i is not None and i.ndim == 3 for i in images)
        sheet = np.zeros((height, width, 3) if color else (height, width), np.uint8)
        for (y0, x0, h, w), img in zip(_cells(fb.display_format, height, width), images, strict=True):
            if img is None:
                continue
            if color and img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            fitted = _fit(img, h, w)
            fy, fx = (h - fitted.shape[0]) // 2, (w - fitted.shape[1]) // 2
            sheet[y0 + fy:y0 + fy + fitted.shape[0], x0 + fx:x0 + fx + fitted.shape[1]] = fitted
        return sheet


def _cells(fmt: str, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(y, x, h, w) of each image box, in Image Box Position order (PS3.3 C.13.8:
    left to right, top to bottom; COL formats column by column)."""
    groups = PC.parse_display_format(fmt)
    cells = []
    if PC.is_column_format(fmt):
        cw = width // len(groups)
        for c, n in enumerate(groups):
            ch = height // n
            cells.extend((r * ch, c * cw, ch, cw) for r in range(n))
    else:
        rh = height // len(groups)
        for r, n in enumerate(groups):
            cw = width // n
            cells.extend((r * rh, c * cw, rh, cw) for c in range(n))
    return cells


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    ih, iw = img.shape[:2]
    scale = min(h / ih, w / iw)
    nh, nw = max(1, int(ih * scale)), max(1, int(iw * scale))
    ys = np.minimum((np.arange(nh) / scale).astype(np.intp), ih - 1)
    xs = np.minimum((np.arange(nw) / scale).astype(np.intp), iw - 1)
    return img[ys][:, xs]

