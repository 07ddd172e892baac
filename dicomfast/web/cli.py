"""``dicomfast web`` (serve an archive over DICOMweb) and ``web-find``, ``web-get``,
``web-store`` (a DICOMweb client on the command line)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _basic(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("--basic wants USER:PASSWORD")
    return user, password


def _auth(args: argparse.Namespace) -> tuple[str, str] | str | None:
    if getattr(args, "basic", None):
        return args.basic  # type: ignore[no-any-return]
    return getattr(args, "token", None)


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="the DICOMweb root, e.g. http://host:8042/dicom-web")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token", help="bearer token")
    g.add_argument("--basic", type=_basic, metavar="USER:PASS", help="HTTP Basic credentials")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request phase")
    p.add_argument("--retries", type=int, default=3, help="retries on 5xx and lost connections")


def add_subcommands(subparsers: Any) -> None:
    """Register ``web``, ``web-find``, ``web-get`` and ``web-store``."""
    p = subparsers.add_parser(
        "web", help="serve an archive folder over DICOMweb (QIDO/WADO/STOW-RS, WADO-URI)",
        description="Serve the archive in --dir (created if missing) over DICOMweb at "
                    "http://HOST:PORT/dicom-web, WADO-URI at /wado, OpenAPI at /openapi.json.")
    p.add_argument("--dir", required=True, help="the archive folder")
    p.add_argument("--port", type=int, default=8042)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default loopback only)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token", help="require Authorization: Bearer TOKEN")
    g.add_argument("--basic", type=_basic, metavar="USER:PASS", help="require HTTP Basic")
    p.add_argument("--max-body-mb", type=int, default=4096, help="largest STOW body")
    p.add_argument("--default-transfer-syntax", default="1.2.840.10008.1.2.1",
                   metavar="UID_OR_*",
                   help="instances retrieved with no transfer-syntax parameter: Explicit VR "
                        "Little Endian (PS3.18 default) or '*' for as stored")
    p.set_defaults(run=run_web)

    p = subparsers.add_parser("web-find", help="QIDO-RS search on a DICOMweb server")
    _client_options(p)
    p.add_argument("--level", choices=("studies", "series", "instances"), default="studies")
    p.add_argument("-k", "--key", action="append", default=[], metavar="KEY=VALUE",
                   help="a matching key (keyword or tag), repeatable; KEY= returns it")
    p.add_argument("--study", help="search within this study")
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true", help="print the DICOM JSON answer")
    p.set_defaults(run=run_find)

    p = subparsers.add_parser("web-get", help="WADO-RS retrieve to a folder")
    _client_options(p)
    p.add_argument("--study", required=True)
    p.add_argument("--series")
    p.add_argument("--instance")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--transfer-syntax", help="ask the server to transcode to this UID")
    p.set_defaults(run=run_get)

    p = subparsers.add_parser("web-store", help="STOW-RS store files (or folders)")
    _client_options(p)
    p.add_argument("files", nargs="+", help="files, or folders searched recursively")
    p.add_argument("--study", help="store into this study (STOW to /studies/{study})")
    p.add_argument("--batch", type=int, default=50, help="instances per request")
    p.set_defaults(run=run_store)


def run_web(args: argparse.Namespace) -> int:
    from dicomfast.web.app import create_app
    from dicomfast.web.server import serve

    app = create_app(args.dir, token=args.token, basic=args.basic,
                     max_body_size=args.max_body_mb << 20,
                     default_instance_syntax=args.default_transfer_syntax)
    print(f"dicomfast: DICOMweb on http://{args.host}:{args.port}/dicom-web "
          f"(archive {Path(args.dir).resolve()})", file=sys.stderr)
    serve(app, host=args.host, port=args.port)
    return 0


def _client(args: argparse.Namespace) -> Any:
    from dicomfast.web.client import Client

    return Client(args.url, auth=_auth(args), timeout=args.timeout, retries=args.retries)


def _text(obj: dict, tag: str) -> str:
    el = obj.get(tag) or {}
    values = el.get("Value") or []
    out = []
    for v in values:
        out.append(v.get("Alphabetic", "") if isinstance(v, dict) else str(v))
    return "\\".join(out)


_COLUMNS = {"studies": ("0020000D", "00100020", "00100010", "00080020", "00201208"),
            "series": ("0020000E", "00080060", "00200011", "00201209"),
            "instances": ("00080018", "00080016", "00200013")}


def run_find(args: argparse.Namespace) -> int:
    from dicomfast.errors import DicomfastError

    filters = {}
    for item in args.key:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"dicomfast: -k wants KEY=VALUE, not {item!r}", file=sys.stderr)
            return 2
        filters[key] = value
    includes = [k for k, v in filters.items() if v == ""]
    filters = {k: v for k, v in filters.items() if v != ""}
    try:
        with _client(args) as client:
            found = client.search(args.level, filters, study=args.study,
                                  includefield=includes or None, limit=args.limit)
    except DicomfastError as exc:
        print(f"dicomfast: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(found, sys.stdout, indent=1)
        print()
        return 0
    for obj in found:
        print("  ".join(_text(obj, t) for t in _COLUMNS[args.level]))
    return 0


def run_get(args: argparse.Namespace) -> int:
    from dicomfast.errors import DicomfastError
    from dicomfast.progress import Progress

    try:
        with _client(args) as client:
            total = 0
            if args.instance is None:
                found = client.search("instances", study=args.study, series=args.series)
                total = len(found)
            with Progress(total or 1) as bar:
                paths = client.retrieve(args.study, args.series, args.instance,
                                        output_dir=args.output_dir,
                                        transfer_syntax=args.transfer_syntax,
                                        progress=lambda path, size: bar.advance(size))
    except (DicomfastError, OSError) as exc:
        print(f"dicomfast: {exc}", file=sys.stderr)
        return 1
    print(f"dicomfast: {len(paths)} instances saved in {args.output_dir}", file=sys.stderr)
    return 0


def run_store(args: argparse.Namespace) -> int:
    from dicomfast.errors import DicomfastError
    from dicomfast.progress import Progress

    files: list[Path] = []
    for name in args.files:
        path = Path(name)
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                     else [path])
    stored = failed = 0
    try:
        with _client(args) as client, Progress(len(files)) as bar:
            for start in range(0, len(files), max(args.batch, 1)):
                batch = files[start:start + max(args.batch, 1)]
                try:
                    answer = client.store(batch, study=args.study,
                                          progress=lambda item, size: bar.advance(size))
                except DicomfastError as exc:
                    if getattr(exc, "status", None) != 409:
                        raise
                    answer = json.loads(exc.body or b"{}")  # type: ignore[attr-defined]
                ok = (answer.get("00081199") or {}).get("Value") or []
                bad = (answer.get("00081198") or {}).get("Value") or []
                stored += len(ok)
                failed += len(bad)
                for item in bad:
                    sop = _text(item, "00081155") or "?"
                    reason = _text(item, "00081197")
                    print(f"dicomfast: not stored: {sop} (failure reason {reason})",
                          file=sys.stderr)
    except (DicomfastError, OSError) as exc:
        print(f"dicomfast: {exc}", file=sys.stderr)
        return 1
    print(f"dicomfast: {stored} stored, {failed} failed", file=sys.stderr)
    return 1 if failed else 0
