"""Command-line network tools: ``echo``, ``store`` and ``storescp``.

Each returns an exit status: 0 on success, 1 when the operation failed (with a
one-line reason on stderr), 2 for bad arguments. ``add_subcommands`` registers them
as argparse subcommands; each sets ``args.net_main`` to the function that runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from dicomfast.errors import DicomfastError
from dicomfast.net.ae import AE
from dicomfast.net.dimse import status_category
from dicomfast.net.services.storescu import StoreResult, expand
from dicomfast.progress import Progress

_DEFAULT_AET = "DICOMFAST"


def _fail(message: str) -> int:
    print(f"dicomfast: {message}", file=sys.stderr)
    return 1


async def serve_until_stopped(server: Any, banner: str, out: Any = None) -> None:
    """Say `banner` (on stderr unless `out` is given), then serve until SIGINT or
    SIGTERM, and close the server. Shared by the command-line servers."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread, or a platform without signal handlers
    print(banner, file=out if out is not None else sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


def _client_tls(tls: bool, ca_file: str | None) -> ssl.SSLContext | None:
    if not tls and ca_file is None:
        return None
    ctx = ssl.create_default_context(cafile=ca_file)
    return ctx


def echo(host: str, port: int, aet: str = _DEFAULT_AET, called_aet: str = "ANY-SCP", *,
         timeout: float = 30.0, tls: bool = False, tls_ca: str | None = None) -> int:
    """C-ECHO; prints the status. 0 when the peer answered Success."""
    try:
        ae = AE(aet, acse_timeout=timeout, dimse_timeout=timeout, connect_timeout=timeout)
        status = ae.echo(host, port, called_ae=called_aet, ssl=_client_tls(tls, tls_ca))
    except (DicomfastError, OSError, ValueError) as exc:
        return _fail(f"echo {host}:{port}: {exc}")
    print(f"C-ECHO {host}:{port} ({called_aet}): status 0x{status:04X} "
          f"{status_category(status)}")
    return 0 if status == 0 else 1


def store(host: str, port: int, paths: Sequence[str], aet: str = _DEFAULT_AET,
          called_aet: str = "ANY-SCP", *, timeout: float = 60.0, progress: bool = True,
          tls: bool = False, tls_ca: str | None = None) -> int:
    """C-STORE files and folders over one association; one line per failed object."""
    files = expand(paths)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        return _fail(f"store: no such file or folder: {missing[0]}")
    if not files:
        return _fail("store: nothing to send")
    failures: list[StoreResult] = []
    ae = AE(aet, acse_timeout=timeout, dimse_timeout=timeout, connect_timeout=timeout)
    try:
        with Progress(len(files), "files", force=False) as bar:
            bar.enabled = bar.enabled and progress

            def on_result(res: StoreResult) -> None:
                bar.advance(res.size, failed=not res.ok)
                if not res.ok:
                    failures.append(res)

            ae.store(host, port, files, called_ae=called_aet, on_result=on_result,
                     ssl=_client_tls(tls, tls_ca))
    except (DicomfastError, OSError, ValueError) as exc:
        return _fail(f"store {host}:{port}: {exc}")
    for res in failures:
        why = res.error or f"status 0x{res.status:04X} {status_category(res.status or 0)}"
        print(f"dicomfast: store: {res.source}: {why}", file=sys.stderr)
    if failures:
        return _fail(f"store: {len(failures)} of {len(files)} objects not stored")
    print(f"dicomfast: store: {len(files)} of {len(files)} objects stored on {host}:{port}",
          file=sys.stderr)
    return 0


def storescp(port: int, output_dir: str, aet: str = _DEFAULT_AET, *, host: str | None = None,
             fsync: bool = True, direct_io: bool = True, max_associations: int = 64,
             require_called_aet: bool = False,
             tls_cert: str | None = None, tls_key: str | None = None,
             network_timeout: float = 60.0, max_pdu: int = 1 << 20) -> int:
    """Storage SCP (also answers C-ECHO) writing OUTPUT_DIR/<SOPInstanceUID>.dcm; runs
    until SIGINT or SIGTERM."""
    ssl_ctx = None
    if tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(tls_cert, tls_key)
    try:
        ae = AE(aet, network_timeout=network_timeout, max_pdu=max_pdu)
    except ValueError as exc:
        return _fail(f"storescp: {exc}")

    async def main() -> None:
        server = await ae.start_storage_scp(output_dir, port=port, host=host, fsync=fsync,
                                            direct_io=direct_io,
                                            max_associations=max_associations, ssl=ssl_ctx,
                                            called_ae_required=require_called_aet)
        await serve_until_stopped(server, f"dicomfast storescp: {aet} listening on port "
                                  f"{server.port}, writing to {os.path.abspath(output_dir)}")

    try:
        asyncio.run(main())
    except (OSError, DicomfastError) as exc:
        return _fail(f"storescp: {exc}")
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def add_subcommands(subparsers: Any) -> None:
    """Register ``echo``, ``store`` and ``storescp`` on an argparse subparsers object."""
    p = subparsers.add_parser("echo", help="C-ECHO a DICOM peer (verification)")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--called-aet", default="ANY-SCP", help="the peer's AE title")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--tls", action="store_true", help="use TLS (port 2762 by convention)")
    p.add_argument("--tls-ca", help="CA certificates to verify the peer with (implies --tls)")
    p.set_defaults(net_main=lambda a: echo(a.host, a.port, a.aet, a.called_aet,
                                           timeout=a.timeout, tls=a.tls, tls_ca=a.tls_ca))

    p = subparsers.add_parser("store", help="C-STORE files or folders to a DICOM peer")
    p.add_argument("host")
    p.add_argument("port", type=_port)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (recursive)")
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--called-aet", default="ANY-SCP", help="the peer's AE title")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tls", action="store_true", help="use TLS (port 2762 by convention)")
    p.add_argument("--tls-ca", help="CA certificates to verify the peer with (implies --tls)")
    p.set_defaults(net_main=lambda a: store(a.host, a.port, a.paths, a.aet, a.called_aet,
                                            timeout=a.timeout, progress=not a.no_progress,
                                            tls=a.tls, tls_ca=a.tls_ca))

    p = subparsers.add_parser("storescp", help="receive C-STORE into a folder "
                                               "(DIR/<SOPInstanceUID>.dcm); answers C-ECHO")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--aet", default=_DEFAULT_AET, help="our AE title")
    p.add_argument("--host", default=None, help="address to listen on (default: all)")
    p.add_argument("--require-called-aet", action="store_true",
                   help="refuse associations not addressed to --aet")
    p.add_argument("--max-associations", type=int, default=64)
    p.add_argument("--max-pdu", type=int, default=1 << 20,
                   help="largest P-DATA PDU accepted (advertised Maximum Length)")
    p.add_argument("--network-timeout", type=float, default=60.0)
    p.add_argument("--no-fsync", action="store_true",
                   help="do not fsync (faster; an acknowledged object may be lost on a crash)")
    p.add_argument("--no-direct-io", action="store_true",
                   help="write small objects through the page cache instead of by direct I/O")
    p.add_argument("--tls-cert", help="serve TLS with this certificate chain (PEM)")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.set_defaults(net_main=lambda a: storescp(
        a.port, a.output_dir, a.aet, host=a.host, fsync=not a.no_fsync,
        direct_io=not a.no_direct_io,
        max_associations=a.max_associations, require_called_aet=a.require_called_aet,
        tls_cert=a.tls_cert, tls_key=a.tls_key, network_timeout=a.network_timeout,
        max_pdu=a.max_pdu))


def main(argv: list[str] | None = None) -> int:
    """``python -m dicomfast.net.cli echo|store|storescp ...`` (the same subcommands as
    ``dicomfast``)."""
    parser = argparse.ArgumentParser(prog="dicomfast-net", description=__doc__)
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.net_main(args))


if __name__ == "__main__":
    sys.exit(main())
