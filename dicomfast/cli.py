"""The dicomfast command line: ``dicomfast dump FILE``, ``dicomfast demo``."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from dicomfast import file_warnings
from dicomfast.dump import format_dataset
from dicomfast.errors import DicomfastError
from dicomfast.part10 import read
from dicomfast.tag import tag_to_str


def _dump(path: str, stop_before_pixels: bool, force: bool, out) -> None:
    ds = read(path, stop_before_pixels=stop_before_pixels, force=force)
    print(f"# {path}", file=out)
    if ds.preamble is not None:
        print("# preamble: 128 bytes + 'DICM'", file=out)
    if ds.file_meta is not None:
        print("# File Meta Information (PS3.10 §7.1)", file=out)
        for line in format_dataset(ds.file_meta):
            print(line, file=out)
    ts = getattr(ds, "transfer_syntax", None)
    print(f"# Data set ({ts.name if ts is not None else 'transfer syntax guessed'})", file=out)
    for line in format_dataset(ds):
        print(line, file=out)


def sample_files() -> list[Path]:
    """The small sample files shipped inside the package."""
    folder = resources.files("dicomfast") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".dcm"))


def _demo(out) -> None:
    import numpy as np

    for path in sample_files():
        _dump(str(path), False, False, out)
        ds = read(path)
        if "PixelData" in ds:
            arr = ds.pixel_array
            print(f"# pixel_array: shape {arr.shape}, dtype {arr.dtype}, "
                  f"min {arr.min()}, max {arr.max()}, mean {float(np.mean(arr)):.2f}", file=out)
        print(file=out)


def _syntax_uid(name: str) -> str:
    from dicomfast.transfer_syntax import ALL_TRANSFER_SYNTAXES

    for ts in ALL_TRANSFER_SYNTAXES:
        if name in (ts.uid, ts.keyword) or name.lower() == ts.keyword.lower():
            return ts.uid
    raise SystemExit(f"dicomfast: unknown transfer syntax {name!r} "
                     "(give a UID or a keyword such as RLELossless, JPEG2000Lossless)")


def _encode_option(text: str) -> tuple[str, Any]:
    """KEY=VALUE from the command line, VALUE as an int or float when it reads as one."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _transcode(src: str, dst: str, ts_name: str, threads: int, allow_lossy: bool,
               options: list[tuple[str, Any]] | None = None) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from dicomfast.progress import Progress

    uid = _syntax_uid(ts_name)
    source, target = Path(src), Path(dst)
    if source.is_dir():
        pairs = [(p, target / p.relative_to(source)) for p in sorted(source.rglob("*"))
                 if p.is_file()]
    else:
        pairs = [(source, target / source.name if target.is_dir() else target)]
    failures: list[str] = []
    warned: list[str] = []

    def one(pair: tuple[Path, Path]) -> tuple[int, str | None, list[str]]:
        a, b = pair
        with file_warnings.kept() as found:  # reported with the file's name below
            try:
                ds = read(a)
                b.parent.mkdir(parents=True, exist_ok=True)
                ds.save(b, transfer_syntax=uid, allow_lossy=allow_lossy,
                        encode_options=dict(options or ()) or None)
                outcome: tuple[int, str | None] = (a.stat().st_size, None)
            except (OSError, DicomfastError, ValueError) as exc:
                outcome = (0, f"{a}: {exc}")
        return (*outcome, [f"{a}: {text}" for text in found])

    with Progress(len(pairs)) as bar, file_warnings.collecting(), \
            ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        for size, error, found in pool.map(one, pairs):
            bar.advance(size, failed=error is not None)
            if error:
                failures.append(error)
            warned += found
    for error in failures:
        print(f"dicomfast: {error}", file=sys.stderr)
    for warning in warned:
        print(f"dicomfast: warning: {warning}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_dump = sub.add_parser("dump", help="list the elements of DICOM files")
    p_dump.add_argument("files", nargs="+")
    p_dump.add_argument("--stop-before-pixels", action="store_true",
                        help="do not read past the header")
    p_dump.add_argument("--force", action="store_true",
                        help="read files without the DICM prefix as bare data sets")
    sub.add_parser("demo", help="dump the sample files shipped with dicomfast")
    p_tc = sub.add_parser("transcode", help="rewrite files (or a folder tree) in another "
                                            "transfer syntax")
    p_tc.add_argument("source", help="a file or a folder")
    p_tc.add_argument("target", help="a file, or a folder (created) for a folder source")
    p_tc.add_argument("--ts", required=True, help="transfer syntax UID or keyword")
    p_tc.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p_tc.add_argument("--allow-lossy", action="store_true",
                      help="allow lossy target syntaxes")
    p_tc.add_argument("--option", dest="options", action="append", type=_encode_option,
                      default=[], metavar="KEY=VALUE",
                      help="an encoder option, e.g. near=3 (JPEG-LS Near-Lossless), "
                           "quality=50 or ratio=10 (JPEG 2000)")
    # Subcommands of the upper layers, imported here so `dump` stays light.
    from dicomfast import deid_cli, print_cli, render_cli, scan_cli
    from dicomfast.media.cli import add_subcommands as add_media_subcommands
    from dicomfast.net.cli import add_subcommands as add_net_subcommands
    from dicomfast.net.ncli import add_subcommands as add_commit_subcommands
    from dicomfast.net.qr_cli import add_subcommands as add_qr_subcommands
    from dicomfast.web.cli import add_subcommands as add_web_subcommands

    add_net_subcommands(sub)
    add_qr_subcommands(sub)
    scan_cli.add_subcommands(sub)
    render_cli.add_subcommands(sub)
    deid_cli.add_subcommands(sub)
    add_media_subcommands(sub)
    add_web_subcommands(sub)
    print_cli.add_subcommands(sub)
    add_commit_subcommands(sub)
    args = parser.parse_args(argv)
    if hasattr(args, "net_main"):
        return int(args.net_main(args))
    out = sys.stdout
    status = 0
    try:
        if args.command == "demo":
            _demo(out)
        elif args.command == "transcode":
            status = _transcode(args.source, args.target, args.ts, args.threads,
                                args.allow_lossy, args.options)
        elif args.command == "scan":
            status = args.handler(args)
        elif hasattr(args, "run"):
            status = args.run(args)
        else:
            for path in args.files:
                try:
                    _dump(path, args.stop_before_pixels, args.force, out)
                except (OSError, DicomfastError) as exc:
                    where = ""
                    if getattr(exc, "tag", None) is not None:
                        where = f" {tag_to_str(exc.tag)}"
                    print(f"dicomfast: {path}:{where} {exc}", file=sys.stderr)
                    status = 1
    except BrokenPipeError:  # e.g. `dicomfast dump f | head`
        return status
    return status


if __name__ == "__main__":
    sys.exit(main())
