"""``dicomfast print`` and ``dicomfast printscp``: Print Management (PS3.4 Annex H) from
the command line, and the glue between the print services (network layer) and
:mod:`dicomfast.render` (pixel layer), which the network layer may not import.

    dicomfast print HOST PORT a.dcm b.dcm --format 'STANDARD\\2,2' --film-size 14INX17IN
    dicomfast printscp --port 10400 --output-dir sheets/
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from dicomfast.errors import DicomfastError

_DEFAULT_AET = "DICOMFAST"


def render_image_box(item: Any) -> Any:
    """An Image Box's image (Basic Grayscale/Color Image Sequence item) as 8-bit
    pixels. The SCU sent P-values / RGB ready for film, so no window of the image's
    own range is applied: the full range of Bits Stored maps to 0-255."""
    from dicomfast.render import render_frame

    if int(item.get("SamplesPerPixel") or 1) == 1:
        bits = int(item.get("BitsStored") or item.get("BitsAllocated") or 8)
        full = float(1 << bits)
        return render_frame(item, window=(full / 2, full))
    return render_frame(item)


def make_print_scp(output_dir: str | os.PathLike | None, **kw: Any) -> Any:
    """A :class:`~dicomfast.net.services.print_scp.PrintSCP` that renders with
    :mod:`dicomfast.render` and writes PNG sheets into `output_dir`."""
    from dicomfast.net.services.print_scp import PrintSCP
    from dicomfast.render import write_png

    return PrintSCP(output_dir, render=render_image_box, write_png=write_png, **kw)


def render_file(path: str | os.PathLike) -> Any:
    """The first frame of a DICOM file rendered for print (its own window / VOI LUT)."""
    from dicomfast import pixels as _pixels  # noqa: F401  (connects ds.frame)
    from dicomfast.part10 import read
    from dicomfast.render import render_frame

    return render_frame(read(path))


def print_files(host: str, port: int, files: Sequence[str], aet: str = _DEFAULT_AET,
                called_aet: str = "ANY-SCP", *, display_format: str = "STANDARD\\1,1",
                film_size: str = "14INX17IN", orientation: str = "PORTRAIT",
                copies: int = 1, timeout: float = 60.0) -> int:
    """Render `files` and print them; one line per sheet/job. 0 on success."""
    from dicomfast.net.association import Settings
    from dicomfast.net.services.print_scu import PrintError, print_images

    try:
        images = [render_file(f) for f in files]
    except (OSError, DicomfastError, ValueError) as exc:
        print(f"dicomfast: print: {exc}", file=sys.stderr)
        return 1
    settings = Settings(ae_title=aet, acse_timeout=timeout, dimse_timeout=timeout,
                        connect_timeout=timeout)
    try:
        result = asyncio.run(print_images(
            settings, host, port, images, called_ae=called_aet, display_format=display_format,
            film_size=film_size, orientation=orientation, copies=copies))
    except PrintError as exc:
        print(f"dicomfast: print {host}:{port}: {exc}", file=sys.stderr)
        return 1
    except (DicomfastError, OSError, ValueError) as exc:
        print(f"dicomfast: print {host}:{port}: {exc}", file=sys.stderr)
        return 1
    status = result.printer.get("PrinterStatus") if result.printer is not None else None
    print(f"printer {host}:{port} ({called_aet}): {status or 'status unknown'}")
    for uid in result.film_boxes:
        print(f"film box {uid} printed")
    for uid in result.print_jobs:
        job = result.job_status.get(uid)
        state = job.get("ExecutionStatus") if job is not None else None
        print(f"print job {uid}: {state or 'submitted'}")
    return 0 if result.ok else 1


def printscp(port: int, output_dir: str, aet: str = _DEFAULT_AET, *, host: str | None = None,
             max_image_boxes: int = 64, dpi: int = 100) -> int:
    """Serve Print Management until interrupted, writing sheets as PNG into `output_dir`."""
    from dicomfast.net.association import Settings
    from dicomfast.net.cli import serve_until_stopped
    from dicomfast.net.services.router import ServiceRouter

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    scp = make_print_scp(output_dir, printer_name=aet, max_image_boxes=max_image_boxes,
                         dpi=dpi)
    router = ServiceRouter()
    scp.install(router)

    async def main() -> None:
        server = await router.start(Settings(ae_title=aet), host=host, port=port)
        await serve_until_stopped(server, f"printscp {aet} listening on port {server.port}, "
                                  f"sheets in {output_dir}", out=sys.stdout)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"dicomfast: printscp: {exc}", file=sys.stderr)
        return 1
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range")
    return value


def add_subcommands(subparsers: Any) -> None:
    """Register ``print`` and ``printscp`` on an argparse subparsers object."""
    p = subparsers.add_parser("print", help="print DICOM images on a DICOM printer "
                                            "(Basic Grayscale/Color Print Management)")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", default="STANDARD\\1,1", dest="display_format",
                   help="Image Display Format, e.g. 'STANDARD\\2,2' (columns,rows)")
    p.add_argument("--film-size", default="14INX17IN", help="Film Size ID")
    p.add_argument("--orientation", default="PORTRAIT", choices=["PORTRAIT", "LANDSCAPE"])
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--called-aet", default="ANY-SCP", help="the printer's AE title")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(net_main=lambda a: print_files(
        a.host, a.port, a.files, a.aet, a.called_aet, display_format=a.display_format,
        film_size=a.film_size, orientation=a.orientation, copies=a.copies,
        timeout=a.timeout))

    p = subparsers.add_parser("printscp", help="a DICOM printer writing each film sheet "
                                               "as PNG")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--host", default=None, help="address to listen on (default: all)")
    p.add_argument("--max-image-boxes", type=int, default=64,
                   help="refuse film boxes whose format has more image boxes")
    p.add_argument("--dpi", type=int, default=100, help="sheet resolution")
    p.set_defaults(net_main=lambda a: printscp(a.port, a.output_dir, a.aet, host=a.host,
                                               max_image_boxes=a.max_image_boxes, dpi=a.dpi))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast-print", description=__doc__)
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.net_main(args))


if __name__ == "__main__":
    sys.exit(main())
