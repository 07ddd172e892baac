"""Print Management (PS3.4 Annex H): dicomfast SCU and SCP on loopback, out-of-order and
oversized requests refused, DCMTK's dcmprscu/dcmprscp and pynetdicom as peers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_net_helpers import HOST, dcmtk, free_port, need_dcmtk, wait_port

from dicomfast.dataset import Dataset
from dicomfast.net import AE
from dicomfast.net import dimse_n as N
from dicomfast.net.services import nscu
from dicomfast.net.services import print_common as PC
from dicomfast.net.services.print_scu import PrintError, image_item, print_images
from dicomfast.net.services.router import ServiceRouter
from dicomfast.print_cli import make_print_scp

pydicom = pytest.importorskip("pydicom")
PIL = pytest.importorskip("PIL.Image")


def _settings(title="DFSCU"):
    return AE(title, acse_timeout=10, dimse_timeout=10, connect_timeout=10).settings


class _Printer:
    """A dicomfast print SCP on its own thread."""

    def __init__(self, out: Path, title: str = "DFPRINT", **kw):
        self.images: list = []
        self.scp = make_print_scp(out, printer_name=title,
                                  on_image=lambda box: self.images.append(
                                      (box.position, box.image)), **kw)
        self.router = ServiceRouter()
        self.scp.install(self.router)
        self.title = title
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self):
        async def main():
            self.server = await self.router.start(_settings(self.title), host=HOST)
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.port = self.server.port
            self._ready.set()
            await self.stop_event.wait()
            await self.server.close()
        asyncio.run(main())

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self._thread.join(10)


@pytest.fixture
def printer(tmp_path):
    p = _Printer(tmp_path / "sheets")
    yield p
    p.stop()


def _png(path) -> np.ndarray:
    with PIL.open(path) as im:
        return np.asarray(im)


def _gradient(h, w, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(1, 255, size=(h, w), dtype=np.uint8)


def test_display_formats():
    assert PC.parse_display_format("STANDARD\\2,3") == [2, 2, 2]
    assert PC.parse_display_format("ROW\\1,3") == [1, 3]
    assert PC.box_count("COL\\2,1") == 3
    for bad in ("STANDARD\\2", "STANDARD\\0,1", "SLIDE", "CUSTOM\\1", "ROW\\a"):
        with pytest.raises(PC.DisplayFormatError):
            PC.parse_display_format(bad)


def test_print_grayscale_sheets(printer):
    images = [np.full((40, 30), 40 * (i + 1), np.uint8) for i in range(5)]
    result = asyncio.run(print_images(_settings(), HOST, printer.port, images,
                                      called_ae="DFPRINT", display_format="STANDARD\\2,2",
                                      film_size="8INX10IN"))
    assert result.ok and len(result.film_boxes) == 2 and len(result.print_jobs) == 2
    assert str(result.printer.PrinterStatus) == "NORMAL"
    assert all(str(j.ExecutionStatus) == "DONE" for j in result.job_status.values())
    sheets = printer.scp.printed
    assert [s.images for s in sheets] == [4, 1]
    first = _png(sheets[0].path)
    assert first.shape == (1000, 800)          # 8x10 in portrait at 100 dpi
    cells = [(0, 0), (0, 400), (500, 0), (500, 400)]
    for (y, x), img in zip(cells, images[:4], strict=True):
        cell = first[y:y + 500, x:x + 400]
        # Each image fills its own cell (aspect kept) and nothing else.
        assert set(np.unique(cell)) == {0, int(img[0, 0])}
        # 40x30 scaled by 12.5 (the limiting side) is 500x375, centred horizontally.
        assert (cell == img[0, 0]).sum() == 500 * 375
        assert cell[:, 12:387].all() and not cell[:, :12].any() and not cell[:, 388:].any()
    second = _png(sheets[1].path)
    assert set(np.unique(second[:500, :400])) == {0, 200}
    assert not second[:, 400:].any() and not second[500:].any()


def test_print_detail_is_kept(printer):
    """A detailed image printed 1:1 into its cell comes back pixel for pixel."""
    img = _gradient(100, 80, 1)
    asyncio.run(print_images(_settings(), HOST, printer.port, [img], called_ae="DFPRINT",
                             display_format="STANDARD\\1,1", film_size="8INX10IN"))
    sheet = _png(printer.scp.printed[0].path)
    # 100x80 scaled by 10 into 1000x800: each source pixel is a 10x10 block.
    assert np.array_equal(sheet[::10, ::10], img)


def test_print_color(printer):
    images = [np.zeros((20, 20, 3), np.uint8) for _ in range(2)]
    images[0][...] = (200, 10, 10)
    images[1][...] = (10, 10, 200)
    result = asyncio.run(print_images(_settings(), HOST, printer.port, images,
                                      called_ae="DFPRINT", display_format="ROW\\2",
                                      film_size="10INX12IN", orientation="LANDSCAPE"))
    assert result.ok
    sheet = _png(printer.scp.printed[0].path)
    assert sheet.shape == (1000, 1200, 3)
    assert tuple(sheet[500, 300]) == (200, 10, 10) and tuple(sheet[500, 900]) == (10, 10, 200)


def test_out_of_order_and_oversized(printer):
    meta = PC.GRAYSCALE_META
    events = []

    async def main():
        router = ServiceRouter()

        def on_event(ev):
            events.append((ev.sop_class_uid, ev.request.event_type_id))
            return 0

        router.add_n_handler(PC.PRINTER, on_event, [N.N_EVENT_REPORT_RQ])
        assoc = await AE("DFSCU", dimse_timeout=10).associate(
            HOST, printer.port, [(meta, ["1.2.840.10008.1.2"]),
                                 (PC.PRINT_JOB, ["1.2.840.10008.1.2"])], handler=router)
        s = {}
        async with assoc:
            ref = Dataset()
            ref.ReferencedSOPClassUID = PC.FILM_SESSION
            ref.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.9.7433.6.1"
            box = Dataset()
            box.ImageDisplayFormat = "STANDARD\\2,2"
            box.ReferencedFilmSessionSequence = [ref]
            s["box_before_session"] = await nscu.n_create(assoc, PC.FILM_BOX, box,
                                                          abstract_syntax=meta)
            s["print_before_session"] = await nscu.n_action(
                assoc, PC.FILM_SESSION, ref.ReferencedSOPInstanceUID, 1, abstract_syntax=meta)
            s["set_unknown_image_box"] = await nscu.n_set(
                assoc, PC.GRAYSCALE_IMAGE_BOX, "1.2.3.4", Dataset(), abstract_syntax=meta)
            session = await nscu.n_create(assoc, PC.FILM_SESSION, Dataset(),
                                          abstract_syntax=meta)
            s["session"] = session
            s["second_session"] = await nscu.n_create(assoc, PC.FILM_SESSION, Dataset(),
                                                      abstract_syntax=meta)
            s["print_empty_session"] = await nscu.n_action(
                assoc, PC.FILM_SESSION, session.sop_instance_uid, 1, abstract_syntax=meta)
            ref.ReferencedSOPInstanceUID = session.sop_instance_uid
            box.ReferencedFilmSessionSequence = [ref]
            box.ImageDisplayFormat = "STANDARD\\10,10"
            s["too_many_boxes"] = await nscu.n_create(assoc, PC.FILM_BOX, box,
                                                      abstract_syntax=meta)
            box.ImageDisplayFormat = "SUPERSLIDE"
            s["bad_format"] = await nscu.n_create(assoc, PC.FILM_BOX, box,
                                                  abstract_syntax=meta)
            box.ImageDisplayFormat = "STANDARD\\2,2"
            box.FilmSizeID = "99INX99IN"
            s["bad_size"] = await nscu.n_create(assoc, PC.FILM_BOX, box, abstract_syntax=meta)
            del box.FilmSizeID
            fb = await nscu.n_create(assoc, PC.FILM_BOX, box, abstract_syntax=meta)
            s["film_box"] = fb
            boxes = fb.dataset.ReferencedImageBoxSequence
            _, item = image_item(np.full((8, 8), 9, np.uint8))
            mod = Dataset()
            mod.ImageBoxPosition = 5     # a fifth image in a 2x2 film box
            mod.BasicGrayscaleImageSequence = [item]
            s["fifth_image"] = await nscu.n_set(
                assoc, PC.GRAYSCALE_IMAGE_BOX, str(boxes[0].ReferencedSOPInstanceUID), mod,
                abstract_syntax=meta)
            mod.ImageBoxPosition = 2     # box 1 is not at position 2
            s["wrong_position"] = await nscu.n_set(
                assoc, PC.GRAYSCALE_IMAGE_BOX, str(boxes[0].ReferencedSOPInstanceUID), mod,
                abstract_syntax=meta)
            _, color = image_item(np.zeros((4, 4, 3), np.uint8))
            cmod = Dataset()
            cmod.ImageBoxPosition = 1
            cmod.BasicGrayscaleImageSequence = [color]
            s["color_in_gray_box"] = await nscu.n_set(
                assoc, PC.GRAYSCALE_IMAGE_BOX, str(boxes[0].ReferencedSOPInstanceUID), cmod,
                abstract_syntax=meta)
            s["print_empty_box"] = await nscu.n_action(assoc, PC.FILM_BOX, fb.sop_instance_uid,
                                                       1, abstract_syntax=meta)
            s["bad_action"] = await nscu.n_action(assoc, PC.FILM_BOX, fb.sop_instance_uid, 7,
                                                  abstract_syntax=meta)
            s["printer"] = await nscu.n_get(assoc, PC.PRINTER, PC.PRINTER_INSTANCE,
                                            [0x21100010, 0x21100030], abstract_syntax=meta)
            s["printer_wrong_instance"] = await nscu.n_get(assoc, PC.PRINTER, "1.2.3",
                                                           abstract_syntax=meta)
            s["job_unknown"] = await nscu.n_get(assoc, PC.PRINT_JOB, "1.2.3")
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                printer.scp.report_printer_status("WARNING", "FILM LOW"), printer.loop))
            await nscu.n_delete(assoc, PC.FILM_BOX, fb.sop_instance_uid, abstract_syntax=meta)
            mod.ImageBoxPosition = 1
            s["set_deleted_box"] = await nscu.n_set(
                assoc, PC.GRAYSCALE_IMAGE_BOX, str(boxes[0].ReferencedSOPInstanceUID), mod,
                abstract_syntax=meta)
            s["delete_session"] = await nscu.n_delete(assoc, PC.FILM_SESSION,
                                                      session.sop_instance_uid,
                                                      abstract_syntax=meta)
            s["set_deleted_session"] = await nscu.n_set(
                assoc, PC.FILM_SESSION, session.sop_instance_uid, Dataset(),
                abstract_syntax=meta)
        return s

    s = asyncio.run(main())
    status = {k: v.status for k, v in s.items()}
    assert status["box_before_session"] == N.INVALID_ATTRIBUTE_VALUE
    assert s["box_before_session"].offending_elements == [0x20100500]
    assert status["print_before_session"] == N.NO_SUCH_SOP_INSTANCE
    assert status["set_unknown_image_box"] == N.NO_SUCH_SOP_INSTANCE
    assert status["session"] == 0 and status["second_session"] == N.DUPLICATE_SOP_INSTANCE
    assert status["print_empty_session"] == PC.FAIL_SESSION_NO_FILM_BOX
    assert status["too_many_boxes"] == N.INVALID_ATTRIBUTE_VALUE
    assert s["too_many_boxes"].offending_elements == [0x20100010]
    assert status["bad_format"] == N.INVALID_ATTRIBUTE_VALUE
    assert status["bad_size"] == N.INVALID_ATTRIBUTE_VALUE
    assert status["film_box"] == 0 and len(s["film_box"].dataset.ReferencedImageBoxSequence) == 4
    assert status["fifth_image"] == N.INVALID_ATTRIBUTE_VALUE
    assert s["fifth_image"].offending_elements == [0x20200010]
    assert status["wrong_position"] == N.INVALID_ATTRIBUTE_VALUE
    assert status["color_in_gray_box"] == N.INVALID_ATTRIBUTE_VALUE
    assert status["print_empty_box"] == PC.WARN_FILM_BOX_EMPTY_PAGE
    assert N.n_status_category(status["print_empty_box"]) == "Warning"
    assert status["bad_action"] == N.NO_SUCH_ACTION
    assert status["printer"] == 0 and str(s["printer"].dataset.PrinterName) == "DFPRINT"
    assert "PrinterStatusInfo" not in s["printer"].dataset   # only what was asked for
    assert status["printer_wrong_instance"] == N.NO_SUCH_SOP_INSTANCE
    assert status["job_unknown"] == N.NO_SUCH_SOP_INSTANCE
    assert status["set_deleted_box"] == N.NO_SUCH_SOP_INSTANCE
    assert status["delete_session"] == 0
    assert status["set_deleted_session"] == N.NO_SUCH_SOP_INSTANCE
    assert (PC.PRINTER, 2) in events


def test_print_scu_reports_failures(printer):
    with pytest.raises(PrintError) as info:
        asyncio.run(print_images(_settings(), HOST, printer.port,
                                 [np.zeros((4, 4), np.uint8)], display_format="STANDARD\\9,9"))
    assert info.value.status == N.INVALID_ATTRIBUTE_VALUE
    assert info.value.result.film_session_uid is not None


def test_cli_print(printer, tmp_path):
    from test_net_helpers import make_objects

    from dicomfast.print_cli import main

    files = make_objects(tmp_path / "src", ("CT_small.dcm", "MR_small.dcm"))
    rc = main(["print", HOST, str(printer.port), *map(str, files), "--format", "STANDARD\\2,1",
               "--film-size", "14INX17IN", "--called-aet", "DFPRINT", "--timeout", "10"])
    assert rc == 0
    assert len(printer.scp.printed) == 1 and printer.scp.printed[0].images == 2
    assert _png(printer.scp.printed[0].path).shape == (1700, 1400)


# -- pynetdicom as the peer ------------------------------------------------------------------

def test_pynetdicom_scu_against_dicomfast_scp(printer):
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import evt

    reports = []

    def on_report(event):
        reports.append((event.request.AffectedSOPClassUID, event.event_type,
                        event.event_information.PrinterStatusInfo))
        return 0x0000, None

    ae = pynetdicom.AE(ae_title="PYPRINT")
    ae.add_requested_context(PC.GRAYSCALE_META, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(HOST, printer.port, ae_title="DFPRINT",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.is_established
    meta = PC.GRAYSCALE_META
    img = _gradient(32, 32, 7)
    try:
        status, attrs = assoc.send_n_get([0x21100010, 0x21100020], PC.PRINTER,
                                         PC.PRINTER_INSTANCE, meta_uid=meta)
        assert status.Status == 0 and attrs.PrinterStatus == "NORMAL"
        session = PDS()
        session.NumberOfCopies = 1
        status, attrs = assoc.send_n_create(session, PC.FILM_SESSION,
                                            "1.2.826.0.1.3680043.9.7433.6.9", meta_uid=meta)
        assert status.Status == 0
        # The printer's status change reaches the SCU on its association.
        assert printer.call(printer.scp.report_printer_status("WARNING", "FILM LOW")) == 1
        box = PDS()
        box.ImageDisplayFormat = "STANDARD\\1,1"
        ref = PDS()
        ref.ReferencedSOPClassUID = PC.FILM_SESSION
        ref.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.9.7433.6.9"
        box.ReferencedFilmSessionSequence = [ref]
        box.FilmSizeID = "8INX10IN"
        status, fb = assoc.send_n_create(box, PC.FILM_BOX, "1.2.826.0.1.3680043.9.7433.6.10",
                                         meta_uid=meta)
        assert status.Status == 0 and len(fb.ReferencedImageBoxSequence) == 1
        ib = fb.ReferencedImageBoxSequence[0]
        mod = PDS()
        mod.ImageBoxPosition = 1
        item = PDS()
        item.SamplesPerPixel, item.PhotometricInterpretation = 1, "MONOCHROME2"
        item.Rows = item.Columns = 32
        item.BitsAllocated = item.BitsStored = 8
        item.HighBit, item.PixelRepresentation = 7, 0
        item.PixelData = img.tobytes()
        mod.BasicGrayscaleImageSequence = [item]
        status, _ = assoc.send_n_set(mod, ib.ReferencedSOPClassUID,
                                     ib.ReferencedSOPInstanceUID, meta_uid=meta)
        assert status.Status == 0
        mod.ImageBoxPosition = 2
        status, _ = assoc.send_n_set(mod, ib.ReferencedSOPClassUID,
                                     ib.ReferencedSOPInstanceUID, meta_uid=meta)
        assert status.Status == N.INVALID_ATTRIBUTE_VALUE
        status, reply = assoc.send_n_action(None, 1, PC.FILM_SESSION,
                                            "1.2.826.0.1.3680043.9.7433.6.9", meta_uid=meta)
        assert status.Status == 0 and len(reply.ReferencedPrintJobSequence) == 1
        status = assoc.send_n_delete(PC.FILM_SESSION, "1.2.826.0.1.3680043.9.7433.6.9",
                                     meta_uid=meta)
        assert status.Status == 0
        status, _ = assoc.send_n_action(None, 1, PC.FILM_BOX,
                                        "1.2.826.0.1.3680043.9.7433.6.10", meta_uid=meta)
        assert status.Status == N.NO_SUCH_SOP_INSTANCE   # gone with its session
    finally:
        assoc.release()
    sheet = _png(printer.scp.printed[0].path)
    assert np.array_equal(sheet[100:900:25, ::25], img)   # 32 px -> 800 px, 25x
    assert reports == [(PC.PRINTER, 2, "FILM LOW")]


def test_dicomfast_scu_against_pynetdicom_scp():
    pynetdicom = pytest.importorskip("pynetdicom")
    from pydicom.dataset import Dataset as PDS
    from pynetdicom import evt

    got: dict = {"sets": []}

    def on_get(event):
        ds = PDS()
        ds.PrinterStatus, ds.PrinterStatusInfo = "NORMAL", "NORMAL"
        return 0, ds

    def on_create(event):
        cls = event.request.AffectedSOPClassUID
        ds = PDS()
        uid = event.request.AffectedSOPInstanceUID or \
            ("1.2.826.0.1.3680043.9.7433.4.1" if cls == PC.FILM_SESSION
             else "1.2.826.0.1.3680043.9.7433.4.2")
        if event.request.AffectedSOPInstanceUID is None:
            ds.AffectedSOPInstanceUID = uid
        if cls == PC.FILM_BOX:
            got["format"] = event.attribute_list.ImageDisplayFormat
            refs = []
            for n in range(4):
                ref = PDS()
                ref.ReferencedSOPClassUID = PC.GRAYSCALE_IMAGE_BOX
                ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.7433.4.3.{n + 1}"
                refs.append(ref)
            ds.ReferencedImageBoxSequence = refs
        return 0, ds

    def on_set(event):
        mods = event.modification_list
        item = mods.BasicGrayscaleImageSequence[0]
        got["sets"].append((int(mods.ImageBoxPosition), item.Rows, item.Columns,
                            bytes(item.PixelData)))
        return 0, None

    def on_action(event):
        got["printed"] = event.request.RequestedSOPClassUID
        return 0, None

    def on_delete(event):
        return 0

    ae = pynetdicom.AE(ae_title="PYPRINT")
    ae.add_supported_context(PC.GRAYSCALE_META)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    server = ae.start_server((HOST, 0), block=False, evt_handlers=[
        (evt.EVT_N_GET, on_get), (evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set),
        (evt.EVT_N_ACTION, on_action), (evt.EVT_N_DELETE, on_delete)])
    port = server.socket.getsockname()[1]
    images = [_gradient(10 + i, 12, i) for i in range(3)]
    try:
        result = asyncio.run(print_images(_settings(), HOST, port, images, called_ae="PYPRINT",
                                          display_format="STANDARD\\2,2"))
    finally:
        server.shutdown()
    assert result.ok and got["format"] == "STANDARD\\2,2" and got["printed"] == PC.FILM_BOX
    # Odd-length pixel data is padded to even (PS3.5 §7.1.1); compare the image bytes.
    assert [(p, r, c, px[:r * c]) for p, r, c, px in got["sets"]] == \
        [(i + 1, img.shape[0], img.shape[1], img.tobytes()) for i, img in enumerate(images)]


# -- DCMTK print tools ---------------------------------------------------------------------

# The capabilities both printers announce (dcmpstat.cfg keys); the two entries differ
# only in type, title, port and what the dicomfast SCP does not support.
_PRINTER_CAPABILITIES = """\
DisplayFormat = 1,1\\2,1\\2,2
FilmSizeID = 8INX10IN\\14INX17IN
MagnificationType = REPLICATE\\NONE
MaxDensity = 320
MinDensity = 20
MaxPDU = 32768
MediumType = PAPER
ImplicitOnly = false
DisableNewVRs = false
Supports12Bit = true
SupportsPresentationLUT = false
"""

_PRINTER_CFG = """\
[[GENERAL]]
[DATABASE]
Directory = {db}
[PRINT]
Spooler = dcmprscu
Server = dcmprscp
Directory = {spool}
DetailedLog = false
BinaryLog = false
DeletePrintJobs = false
AlwaysDeleteTerminateJobs = false
[[COMMUNICATION]]
[LOCALPRT]
Type = LOCALPRINTER
Aetitle = DCMPRSCP
Description = DCMTK print SCP on loopback
Hostname = 127.0.0.1
Port = {scp_port}
""" + _PRINTER_CAPABILITIES + """\
[REMOTEPRT]
Type = REMOTEPRINTER
Aetitle = DFPRINT
Description = dicomfast print SCP on loopback
Hostname = 127.0.0.1
Port = {df_port}
""" + _PRINTER_CAPABILITIES + """\
SupportsImageSize = false
SupportsDecimateCrop = false
SupportsTrim = false
"""


def _dcmtk_config(tmp_path, scp_port=0, df_port=0) -> Path:
    db, spool = tmp_path / "db", tmp_path / "spool"
    db.mkdir(exist_ok=True)
    spool.mkdir(exist_ok=True)
    cfg = tmp_path / "print.cfg"
    cfg.write_text(_PRINTER_CFG.format(db=db, spool=spool, scp_port=scp_port, df_port=df_port))
    return cfg


def test_dicomfast_scu_against_dcmprscp(tmp_path):
    need_dcmtk("dcmprscp")
    port = free_port()
    cfg = _dcmtk_config(tmp_path, scp_port=port)
    proc = subprocess.Popen([dcmtk("dcmprscp"), "-c", str(cfg), "-p", "LOCALPRT"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    images = [_gradient(24, 16, 11), _gradient(20, 20, 12), _gradient(16, 24, 13)]
    try:
        wait_port(port, proc=proc)
        result = asyncio.run(print_images(_settings(), HOST, port, images,
                                          called_ae="DCMPRSCP", display_format="STANDARD\\2,2",
                                          film_size="14INX17IN"))
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert result.ok, out
    assert str(result.printer.PrinterStatus) == "NORMAL"
    # dcmprscp keeps each N-SET image as a Hardcopy Grayscale object and the sheet as a
    # Stored Print object: the images are ours, byte for byte, in their positions.
    hardcopies = sorted((tmp_path / "db").glob("HG_*.dcm"))
    stored = list((tmp_path / "db").glob("SP_*.dcm"))
    assert len(hardcopies) == 3 and len(stored) == 1, out
    received = {}
    for path in hardcopies:
        ds = pydicom.dcmread(path)
        received[ds.SOPInstanceUID] = ds.pixel_array.astype(np.uint8)
    sp = pydicom.dcmread(stored[0])
    box = sp.FilmBoxContentSequence[0]
    assert box.ImageDisplayFormat == "STANDARD\\2,2" and box.FilmSizeID == "14INX17IN"
    by_position = {int(item.ImageBoxPosition):
                   received[item.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
                   for item in sp.ImageBoxContentSequence}
    for position, img in enumerate(images, 1):
        assert np.array_equal(by_position[position], img)


def test_dcmprscu_against_dicomfast_scp(tmp_path):
    need_dcmtk("dcmprscu", "dcmpsprt")
    from test_net_helpers import make_objects

    printer = _Printer(tmp_path / "sheets", title="DFPRINT")
    try:
        cfg = _dcmtk_config(tmp_path, df_port=printer.port)
        files = make_objects(tmp_path / "src", ("CT_small.dcm", "MR_small.dcm"))
        env_cwd = tmp_path
        # dcmpsprt renders the images into a print job (Stored Print + Hardcopy
        # Grayscale objects in the database); dcmprscu spools it to our printer.
        run = subprocess.run([dcmtk("dcmpsprt"), "-c", str(cfg), "-p", "REMOTEPRT",
                              "--layout", "2", "1", "--filmsize", "14INX17IN",
                              "--no-annotation", "--nospool", *map(str, files)],
                             cwd=env_cwd, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        stored = list((tmp_path / "db").glob("SP_*.dcm"))
        assert len(stored) == 1
        run = subprocess.run([dcmtk("dcmprscu"), "-c", str(cfg), "-p", "REMOTEPRT", "-v",
                              str(stored[0])], cwd=env_cwd, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        printer.stop()
    sheets = printer.scp.printed
    assert len(sheets) == 1 and sheets[0].images == 2, run.stdout + run.stderr
    assert sheets[0].display_format.upper() == "STANDARD\\2,1"
    sheet = _png(sheets[0].path)
    assert sheet.shape == (1700, 1400)
    assert sheet[:, :700].any() and sheet[:, 700:].any()
    # What reached each image box is the hardcopy dcmpsprt made, bit for bit (12-bit
    # as stored: the printer accepts 12 bits).
    hardcopies = {h.SOPInstanceUID: h for h in
                  (pydicom.dcmread(p) for p in (tmp_path / "db").glob("HG_*.dcm"))}
    sp = pydicom.dcmread(stored[0])
    received = {pos: item for pos, item in printer.images}
    assert sorted(received) == [1, 2]
    for content in sp.ImageBoxContentSequence:
        hg = hardcopies[content.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
        item = received[int(content.ImageBoxPosition)]
        assert (int(item.Rows), int(item.Columns)) == hg.pixel_array.shape
        assert int(item.BitsStored) == int(hg.BitsStored)
        ours = np.frombuffer(bytes(item.PixelData), "<u2")[:hg.pixel_array.size]
        assert np.array_equal(ours.reshape(hg.pixel_array.shape), hg.pixel_array)


def test_printscp_cli_process(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dicomfast.print_cli", "printscp", "--port",
                             str(port), "--output-dir", str(tmp_path / "out"), "--host", HOST,
                             "--aet", "CLIPRINT"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc=proc)
        result = asyncio.run(print_images(_settings(), HOST, port,
                                          [np.full((10, 10), 77, np.uint8)],
                                          called_ae="CLIPRINT"))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert result.ok
    pngs = list((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 1 and set(np.unique(_png(pngs[0]))) == {0, 77}
