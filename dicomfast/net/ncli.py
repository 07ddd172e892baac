"""``dicomfast commit HOST PORT FILES...``: ask a Storage Commitment SCP (PS3.4 Annex J)
to commit to keeping the given files' instances, and print its answer.

One line per instance, ``committed <SOP Instance UID>`` or ``failed <SOP Instance
UID> 0x<reason>``; exit status 0 when every instance was committed, 1 otherwise (or
when no report came within ``--timeout``), 2 for bad arguments.

The report is awaited on the requesting association. With ``--listen-port`` the
association is released right after the N-ACTION-RSP and the report is awaited on an
association the SCP opens to us at that port (PS3.4 J.3.3; the SCP must know our AE
title's address).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dicomfast.errors import DicomfastError
from dicomfast.net.association import Settings
from dicomfast.net.services.commitment import (
    CommitmentReports,
    references_of,
    request_commitment,
)

_DEFAULT_AET = "DICOMFAST"


def commit(host: str, port: int, files: list[str], aet: str = _DEFAULT_AET,
           called_aet: str = "ANY-SCP", *, timeout: float = 60.0,
           listen_port: int | None = None, transaction_uid: str | None = None) -> int:
    errors: list[str] = []
    refs = references_of(files, on_error=lambda p, e: errors.append(f"{p}: {e}"))
    for err in errors:
        print(f"dicomfast: commit: cannot read {err}", file=sys.stderr)
    if not refs:
        print("dicomfast: commit: no instance to commit", file=sys.stderr)
        return 1
    settings = Settings(ae_title=aet, acse_timeout=timeout, dimse_timeout=timeout,
                        connect_timeout=timeout)

    async def main() -> Any:
        reports = CommitmentReports()
        listener = None
        if listen_port is not None:
            listener = await reports.start_listener(settings, port=listen_port)
        try:
            return await request_commitment(settings, host, port, refs, called_ae=called_aet,
                                            transaction_uid=transaction_uid, timeout=timeout,
                                            reports=reports, keep_open=listener is None)
        finally:
            if listener is not None:
                await listener.close()

    try:
        result = asyncio.run(main())
    except (DicomfastError, OSError, ValueError) as exc:
        print(f"dicomfast: commit {host}:{port}: {exc}", file=sys.stderr)
        return 1
    print(f"transaction {result.transaction_uid}")
    for _cls, uid in result.committed:
        print(f"committed {uid}")
    for _cls, uid, reason in result.failed:
        print(f"failed {uid} 0x{reason:04X}")
    asked = {uid for _, uid in refs}
    committed = {uid for _, uid in result.committed}
    return 0 if not errors and asked <= committed and not result.failed else 1


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range")
    return value


def add_subcommands(subparsers: Any) -> None:
    """Register ``commit`` on an argparse subparsers object."""
    p = subparsers.add_parser("commit", help="request storage commitment for files' "
                                             "instances (N-ACTION, PS3.4 Annex J)")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--called-aet", default="ANY-SCP", help="the peer's AE title")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the connection, responses and the report")
    p.add_argument("--listen-port", type=_port, default=None,
                   help="release at once and take the report on this port instead")
    p.add_argument("--transaction-uid", default=None)
    p.set_defaults(net_main=lambda a: commit(
        a.host, a.port, a.files, a.aet, a.called_aet, timeout=a.timeout,
        listen_port=a.listen_port, transaction_uid=a.transaction_uid))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dicomfast-commit", description=__doc__)
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.net_main(args))


if __name__ == "__main__":
    sys.exit(main())
