"""DIMSE-N on loopback: N-GET of the Printer SOP Instance (PS3.4 H.4.6), dicomfast SCU
and SCP against pynetdicom SCU and SCP in every pairing, in the same process, each
side on its own thread. Each round is 200 N-GETs on one association (its setup and
release included, the same for all).

    pytest benchmarks/bench_dimse_n.py --benchmark-enable -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import threading

import pytest

pynetdicom = pytest.importorskip("pynetdicom")

from dicomfast.net import AE  # noqa: E402
from dicomfast.net.services import nscu  # noqa: E402
from dicomfast.net.services import print_common as PC  # noqa: E402
from dicomfast.net.services.print_scp import PrintSCP  # noqa: E402
from dicomfast.net.services.router import ServiceRouter  # noqa: E402

HOST = "127.0.0.1"
N_OPS = 200
META = PC.GRAYSCALE_META


class _DicomfastPrinter:
    def __init__(self):
        self.router = ServiceRouter()
        PrintSCP(None).install(self.router)
        ready = threading.Event()

        def run():
            async def main():
                self.server = await self.router.start(AE("DFPRINT").settings, host=HOST)
                self.loop = asyncio.get_running_loop()
                self.stop_event = asyncio.Event()
                ready.set()
                await self.stop_event.wait()
                await self.server.close()
            asyncio.run(main())

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.port = self.server.port

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def _pynetdicom_printer():
    from pydicom.dataset import Dataset as PDS
    from pynetdicom import evt

    def on_get(event):
        ds = PDS()
        ds.PrinterStatus, ds.PrinterStatusInfo = "NORMAL", "NORMAL"
        return 0, ds

    ae = pynetdicom.AE(ae_title="PYPRINT")
    ae.add_supported_context(META)
    return ae.start_server((HOST, 0), block=False, evt_handlers=[(evt.EVT_N_GET, on_get)])


def _dicomfast_gets(port: int) -> None:
    async def main():
        assoc = await AE("DFSCU").associate(HOST, port, [(META, ["1.2.840.10008.1.2.1"])])
        async with assoc:
            for _ in range(N_OPS):
                rsp = await nscu.n_get(assoc, PC.PRINTER, PC.PRINTER_INSTANCE,
                                       [0x21100010, 0x21100020], abstract_syntax=META)
                assert rsp.status == 0
    asyncio.run(main())


def _pynetdicom_gets(port: int) -> None:
    ae = pynetdicom.AE(ae_title="PYSCU")
    ae.add_requested_context(META)
    assoc = ae.associate(HOST, port)
    try:
        for _ in range(N_OPS):
            status, _ = assoc.send_n_get([0x21100010, 0x21100020], PC.PRINTER,
                                         PC.PRINTER_INSTANCE, meta_uid=META)
            assert status.Status == 0
    finally:
        assoc.release()


@pytest.fixture(scope="module")
def printers():
    ours = _DicomfastPrinter()
    theirs = _pynetdicom_printer()
    yield ours.port, theirs.socket.getsockname()[1]
    ours.stop()
    theirs.shutdown()


@pytest.mark.benchmark(group="n-get-printer")
def test_dicomfast_scu_dicomfast_scp(benchmark, printers):
    benchmark.pedantic(_dicomfast_gets, args=(printers[0],), rounds=5)


@pytest.mark.benchmark(group="n-get-printer")
def test_pynetdicom_scu_pynetdicom_scp(benchmark, printers):
    benchmark.pedantic(_pynetdicom_gets, args=(printers[1],), rounds=5)


@pytest.mark.benchmark(group="n-get-printer")
def test_dicomfast_scu_pynetdicom_scp(benchmark, printers):
    benchmark.pedantic(_dicomfast_gets, args=(printers[1],), rounds=5)


@pytest.mark.benchmark(group="n-get-printer")
def test_pynetdicom_scu_dicomfast_scp(benchmark, printers):
    benchmark.pedantic(_pynetdicom_gets, args=(printers[0],), rounds=5)

