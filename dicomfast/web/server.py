"""Running the ASGI application on uvicorn: in the foreground or on a background thread.

uvicorn is the ASGI server: small, maintained by the Encode team (Starlette,
httpx), HTTP/1.1 on h11 or httptools, and able to serve on a socket we bound
ourselves, which is how a test gets a free loopback port without a race.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def _config(app: Any, **kwargs: Any) -> Any:
    try:
        import uvicorn
    except ImportError:
        from dicomfast.errors import DicomfastError

        raise DicomfastError("the DICOMweb server needs uvicorn: "
                             "pip install 'dicomfast[web]'") from None
    kwargs.setdefault("log_level", "warning")
    kwargs.setdefault("lifespan", "off")
    kwargs.setdefault("timeout_keep_alive", 30)
    return uvicorn, uvicorn.Config(app, **kwargs)


def serve(app: Any, host: str = "127.0.0.1", port: int = 8042, **kwargs: Any) -> None:
    """Serve until interrupted."""
    uvicorn, config = _config(app, host=host, port=port, log_level="info", **kwargs)
    uvicorn.Server(config).run()


class BackgroundServer:
    """``with BackgroundServer(app) as srv: srv.url`` — a loopback server on a free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", start_timeout: float = 20.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        uvicorn, config = _config(app)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="dicomweb-server")
        self.start_timeout = start_timeout

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the DICOMweb server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
