"""``dicomfast render``: frames, overlays and contact sheets to PNG."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomfast import file_warnings
from dicomfast.errors import DicomfastError


def _window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--window wants CENTER,WIDTH, not {text!r}") from None
    return center, width


def add_subcommands(subparsers: Any) -> None:
    """Register ``render`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "render", help="render a frame (or a contact sheet) to PNG or JPEG",
        description="Render a DICOM frame to an 8-bit PNG through the Modality LUT, VOI "
                    "LUT / window and MONOCHROME1 inversion (PS3.4 §N.2.1.1), or a contact "
                    "sheet of a folder's files or a multi-frame file's frames (--grid).")
    p.add_argument("file", help="a DICOM file, or a folder with --grid")
    p.add_argument("-o", "--output", required=True,
                   help="the image to write: PNG, or JPEG when it ends in .jpg or .jpeg")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality, 1-100")
    p.add_argument("--frame", type=int, default=None,
                   help="frame index (default 0; with --grid, the middle frame of each file)")
    p.add_argument("--window", type=_window, default=None, metavar="C,W",
                   help="window center and width (write --window=-600,1500 for a negative "
                        "center); default: the file's own window or VOI LUT")
    p.add_argument("--voi-index", type=int, default=0,
                   help="which of the file's windows / VOI LUTs to use")
    p.add_argument("--overlays", action="store_true", help="draw overlay planes (60xx,3000)")
    p.add_argument("--grid", action="store_true",
                   help="contact sheet: one tile per file of a folder, or per frame of a file")
    p.add_argument("--columns", type=int, default=None, help="tiles per row (--grid)")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels (--grid)")
    p.add_argument("--gsdf", action="store_true",
                   help="map P-values through the Grayscale Standard Display Function "
                        "(PS3.14) for the display given by --lmin/--lmax/--ambient/--gamma")
    p.add_argument("--lmin", type=float, default=0.5, help="display minimum luminance, cd/m²")
    p.add_argument("--lmax", type=float, default=350.0, help="display maximum luminance, cd/m²")
    p.add_argument("--ambient", type=float, default=0.0, help="reflected ambient, cd/m²")
    p.add_argument("--gamma", type=float, default=2.2, help="the display's native gamma")
    p.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    from dicomfast import pixels as _pixels  # noqa: F401  (connects ds.frame)
    from dicomfast.part10 import read
    from dicomfast.render import contact_sheet, encode_jpeg, render_frame, write_png

    display = None
    if args.gsdf:
        display = {"l_min": args.lmin, "l_max": args.lmax, "ambient": args.ambient,
                   "gamma": args.gamma}
    options = {"window": args.window, "voi_index": args.voi_index,
               "overlays": args.overlays, "display": display}
    left_out: list[str] = []
    warned: list[str] = []
    try:
        if args.grid:
            with file_warnings.collecting():
                image = contact_sheet(
                    args.file, columns=args.columns, tile=args.tile, frame=args.frame,
                    on_skip=lambda path, why: left_out.append(f"{path}: {why}"),
                    on_warning=lambda path, text: warned.append(f"{path}: {text}"),
                    progress=True, **options)
        else:
            image = render_frame(read(args.file), args.frame or 0, **options)
        if args.output.lower().endswith((".jpg", ".jpeg")):
            data = encode_jpeg(image, args.quality)
            with open(args.output, "wb") as f:
                f.write(data)
        else:
            write_png(args.output, image)
    except (OSError, DicomfastError, ValueError, IndexError, NotImplementedError) as exc:
        print(f"dicomfast render: {args.file}: {exc}", file=sys.stderr)
        return 1
    finally:
        for line in left_out:
            print(f"dicomfast render: left out {line}", file=sys.stderr)
        for line in warned:
            print(f"dicomfast render: warning: {line}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
