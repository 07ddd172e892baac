"""Command-line query/retrieve: ``find``, ``move``, ``get``, ``qrscp`` and ``index``.

    dicomfast find HOST PORT --level STUDY -k PatientID=X -k StudyInstanceUID=
    dicomfast move HOST PORT --dest AET --level STUDY -k StudyInstanceUID=1.2.3
    dicomfast get HOST PORT --output-dir DIR --level SERIES -k SeriesInstanceUID=1.2.3
    dicomfast qrscp --port 11112 --dir ARCHIVE [--ae-table FILE] [--worklist DIR]
    dicomfast index ARCHIVE

``-k KEYWORD=VALUE`` adds a key to the identifier (an empty value: a return key;
``Seq.Keyword=VALUE`` a key inside a sequence's item). ``find`` prints one JSON
object per answer ({keyword: value}, or the DICOM JSON model with
``--dicom-json``). Exit status: 0 on success, 1 when the operation failed or
ended with a failure status, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from dicomfast.errors import DicomfastError
from dicomfast.net import dimse as D
from dicomfast.net.ae import AE
from dicomfast.net.cli import _fail, serve_until_stopped
from dicomfast.net.services import identifiers as I
from dicomfast.net.services import qrscu
from dicomfast.progress import Progress

_DEFAULT_AET = "DICOMFAST"




def parse_keys(keys: list[str]) -> dict[str, Any]:
    """``-k`` arguments to an identifier dict (``Seq.Keyword=V`` nests one level)."""
    out: dict[str, Any] = {}
    for key in keys:
        name, sep, value = key.partition("=")
        name = name.strip()
        if not sep and not name:
            raise ValueError(f"bad key {key!r}: expected KEYWORD=VALUE")
        if "." in name:
            seq, _, inner = name.partition(".")
            items = out.setdefault(seq, [{}])
            if not isinstance(items, list):
                raise ValueError(f"{seq} is given both as a value and as a sequence")
            items[0][inner] = value
        else:
            out[name] = value
    return out


def _ae(aet: str, timeout: float) -> AE:
    return AE(aet, acse_timeout=timeout, dimse_timeout=timeout, connect_timeout=timeout)


def find(host: str, port: int, keys: list[str], *, level: str | None, model: str,
         aet: str = _DEFAULT_AET, called_aet: str = "ANY-SCP", timeout: float = 60.0,
         dicom_json: bool = False, limit: int | None = None, out: Any = None) -> int:
    """C-FIND; one JSON line per answer on stdout."""
    out = out or sys.stdout
    try:
        ident = parse_keys(keys)
        if model == "mwl":
            level = None
        elif level is None:
            raise ValueError("--level is required for the patient and study models")

        async def run() -> int:
            n = 0
            async for ds in qrscu.find(_ae(aet, timeout), host, port, ident, level=level,
                                       model=model, called_ae=called_aet, limit=limit):
                row = ds.to_json_dict() if dicom_json else I.to_dict(ds)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
            return n

        n = asyncio.run(run())
    except (DicomfastError, OSError, ValueError) as exc:
        return _fail(f"find {host}:{port}: {exc}")
    print(f"dicomfast: find: {n} answers", file=sys.stderr)
    return 0


def _retrieve_report(kind: str, result: qrscu.RetrieveResult) -> int:
    cat = D.status_category(result.status)
    print(f"dicomfast: {kind}: status 0x{result.status:04X} {cat}: {result.completed} "
          f"completed, {result.failed} failed, {result.warning} warning"
          f"{' (' + result.comment + ')' if result.comment else ''}", file=sys.stderr)
    for uid in result.failed_uids:
        print(f"dicomfast: {kind}: failed: {uid}", file=sys.stderr)
    return 0 if result.status == D.SUCCESS else 1


class _Counts:
    """Progress of a retrieve from the counts of its pending responses."""

    def __init__(self, enabled: bool):
        self.bar: Progress | None = None
        self.enabled = enabled

    def __call__(self, counts: dict[str, int | None]) -> None:
        if not self.enabled:
            return
        done = sum(counts[k] or 0 for k in ("completed", "failed", "warning"))
        total = done + (counts["remaining"] or 0)
        if self.bar is None:
            self.bar = Progress(total, "objects")
        self.bar.total = total
        self.bar.done = done - 1
        self.bar.failed = counts["failed"] or 0
        self.bar.advance()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__()


def move(host: str, port: int, keys: list[str], dest: str, *, level: str, model: str,
         aet: str = _DEFAULT_AET, called_aet: str = "ANY-SCP", timeout: float = 60.0,
         progress: bool = True) -> int:
    counts = _Counts(progress)
    try:
        result = qrscu.move_sync(_ae(aet, timeout), host, port, parse_keys(keys), dest,
                                 level=level, model=model, called_ae=called_aet,
                                 on_progress=counts)
    except (DicomfastError, OSError, ValueError) as exc:
        return _fail(f"move {host}:{port}: {exc}")
    finally:
        counts.close()
    return _retrieve_report("move", result)


def get(host: str, port: int, keys: list[str], output_dir: str, *, level: str, model: str,
        aet: str = _DEFAULT_AET, called_aet: str = "ANY-SCP", timeout: float = 60.0,
        progress: bool = True, fsync: bool = True) -> int:
    counts = _Counts(progress)
    try:
        result = qrscu.get_sync(_ae(aet, timeout), host, port, parse_keys(keys), output_dir,
                                level=level, model=model, called_ae=called_aet,
                                on_progress=counts, fsync=fsync)
    except (DicomfastError, OSError, ValueError) as exc:
        return _fail(f"get {host}:{port}: {exc}")
    finally:
        counts.close()
    return _retrieve_report("get", result)


def qrscp(port: int, root: str, aet: str = _DEFAULT_AET, *, host: str | None = None,
          ae_table: str | None = None, worklist: str | None = None, fsync: bool = True,
          require_called_aet: bool = False, network_timeout: float = 60.0) -> int:
    """Storage + query/retrieve + worklist (+ the mounted DIMSE-N services) until
    SIGINT or SIGTERM."""
    from dicomfast.net.services.qr import load_ae_table
    from dicomfast.net.services.qrscp import start_qrscp

    try:
        table = load_ae_table(ae_table) if ae_table else {}
        ae = AE(aet, network_timeout=network_timeout)
    except (OSError, ValueError) as exc:
        return _fail(f"qrscp: {exc}")

    async def main() -> None:
        server = await start_qrscp(ae.settings, root, port=port, host=host, ae_table=table,
                                   worklist=worklist, fsync=fsync,
                                   called_ae_required=require_called_aet)
        await serve_until_stopped(server, f"dicomfast qrscp: {aet} listening on port "
                                  f"{server.port}, archive {os.path.abspath(root)}")

    try:
        asyncio.run(main())
    except (OSError, DicomfastError) as exc:
        return _fail(f"qrscp: {exc}")
    return 0


def index(root: str, *, threads: int | None = None, progress: bool = True) -> int:
    """(Re)build ROOT/index.sqlite from the files under ROOT."""
    from dicomfast.archive.rebuild import rebuild

    if not os.path.isdir(root):
        return _fail(f"index: no such folder: {root}")
    start = time.monotonic()
    last = [0.0]

    def show(files: int, nbytes: int, failed: int) -> None:
        now = time.monotonic()
        if progress and sys.stderr.isatty() and now - last[0] > 0.1:
            last[0] = now
            sys.stderr.write(f"\rindexing: {files} files, {nbytes / 1e6:.1f} MB, "
                             f"{failed} unreadable")
            sys.stderr.flush()

    left_out: list[str] = []
    try:
        indexed, skipped = rebuild(root, threads=threads, progress=show,
                                   on_skip=lambda path, why: left_out.append(f"{path}: {why}"))
    except (OSError, DicomfastError) as exc:
        return _fail(f"index: {exc}")
    if progress and sys.stderr.isatty():
        sys.stderr.write("\n")
    for line in left_out:
        print(f"dicomfast: index: skipped {line}", file=sys.stderr)
    print(f"dicomfast: index: {indexed} instances indexed, {skipped} files skipped "
          f"({time.monotonic() - start:.1f} s)", file=sys.stderr)
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def _common(p: argparse.ArgumentParser, models: tuple[str, ...]) -> None:
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE",
                   help="identifier key (repeat); empty value: return key")
    p.add_argument("--level", type=str.upper,
                   choices=["PATIENT", "STUDY", "SERIES", "IMAGE"])
    p.add_argument("--model", choices=models, default="study",
                   help="information model (default: study root)")
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--called-aet", default="ANY-SCP", help="the peer's AE title")
    p.add_argument("--timeout", type=float, default=60.0)


def add_subcommands(subparsers: Any) -> None:
    """Register ``find``, ``move``, ``get``, ``qrscp`` and ``index``."""
    p = subparsers.add_parser("find", help="C-FIND: query a DICOM peer (JSON lines)")
    _common(p, ("patient", "study", "mwl"))
    p.add_argument("--dicom-json", action="store_true",
                   help="print the DICOM JSON model instead of {keyword: value}")
    p.add_argument("--limit", type=int, help="cancel (C-CANCEL) after this many answers")
    p.set_defaults(net_main=lambda a: find(
        a.host, a.port, a.key, level=a.level, model=a.model, aet=a.aet,
        called_aet=a.called_aet, timeout=a.timeout, dicom_json=a.dicom_json, limit=a.limit))

    p = subparsers.add_parser("move", help="C-MOVE: have a peer send matches to an AE")
    _common(p, ("patient", "study"))
    p.add_argument("--dest", required=True, help="destination AE title")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(net_main=lambda a: move(
        a.host, a.port, a.key, a.dest, level=a.level or "STUDY", model=a.model, aet=a.aet,
        called_aet=a.called_aet, timeout=a.timeout, progress=not a.no_progress))

    p = subparsers.add_parser("get", help="C-GET: retrieve matches into a folder")
    _common(p, ("patient", "study"))
    p.add_argument("--output-dir", required=True)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-fsync", action="store_true")
    p.set_defaults(net_main=lambda a: get(
        a.host, a.port, a.key, a.output_dir, level=a.level or "STUDY", model=a.model,
        aet=a.aet, called_aet=a.called_aet, timeout=a.timeout, progress=not a.no_progress,
        fsync=not a.no_fsync))

    p = subparsers.add_parser("qrscp", help="storage + query/retrieve + worklist server "
                                            "over an archive folder")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--dir", required=True, help="archive folder (index.sqlite inside)")
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--host", default=None, help="address to listen on (default: all)")
    p.add_argument("--ae-table", help="C-MOVE destinations: JSON {AET: [host, port]} or "
                                      "lines 'AET host port'")
    p.add_argument("--worklist", help="Modality Worklist folder (*.json, *.wl, *.dcm)")
    p.add_argument("--require-called-aet", action="store_true")
    p.add_argument("--network-timeout", type=float, default=60.0)
    p.add_argument("--no-fsync", action="store_true",
                   help="do not fsync (faster; an acknowledged object may be lost on a crash)")
    p.set_defaults(net_main=lambda a: qrscp(
        a.port, a.dir, a.aet, host=a.host, ae_table=a.ae_table, worklist=a.worklist,
        fsync=not a.no_fsync, require_called_aet=a.require_called_aet,
        network_timeout=a.network_timeout))

    p = subparsers.add_parser("index", help="(re)build an archive folder's index")
    p.add_argument("dir")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(net_main=lambda a: index(a.dir, threads=a.threads,
                                            progress=not a.no_progress))


def main(argv: list[str] | None = None) -> int:
    """``python -m dicomfast.net.qr_cli find|move|get|qrscp|index ...``"""
    parser = argparse.ArgumentParser(prog="dicomfast-qr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.net_main(args))


if __name__ == "__main__":
    sys.exit(main())
