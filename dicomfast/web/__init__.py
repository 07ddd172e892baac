"""DICOMweb (PS3.18): an origin server over the archive and a client.

``create_app(root)`` is an ASGI application serving QIDO-RS, WADO-RS, STOW-RS and
WADO-URI (run it with ``dicomfast web --dir D --port P`` or any ASGI server);
``Client(url)`` searches, retrieves and stores over HTTP. See docs/dicomweb.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Client", "DicomWebApp", "ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    # The server and the client need different third-party packages; import on use.
    if name in ("DicomWebApp", "ServerConfig", "create_app"):
        from dicomfast.web import app

        return getattr(app, name)
    if name == "Client":
        from dicomfast.web.client import Client

        return Client
    raise AttributeError(name)
