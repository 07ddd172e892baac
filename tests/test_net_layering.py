"""The network layer's place in STYLE.md's layering, checked by import-linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
[importlinter]
root_package = dicomfast
include_external_packages = True

[importlinter:contract:net-sans-io]
name = net.pdu and net.statemachine import nothing above the vocabulary
type = forbidden
source_modules =
    dicomfast.net.pdu
    dicomfast.net.statemachine
forbidden_modules =
    dicomfast.dataset
    dicomfast.element
    dicomfast.values
    dicomfast.charset
    dicomfast.part10
    dicomfast.writer
    dicomfast.encode
    dicomfast.transcode
    dicomfast.pixels
    dicomfast.net.dimse
    dicomfast.net.association
    dicomfast.net.transport
    dicomfast.net.services
    dicomfast.net.ae
    dicomfast.net.cli
    dicomfast.cli

[importlinter:contract:net-pixels]
name = pixels and net never import each other
type = independence
modules =
    dicomfast.pixels
    dicomfast.net

[importlinter:contract:net-only-transport-sockets]
name = only net.transport opens sockets
type = forbidden
source_modules =
    dicomfast.net.pdu
    dicomfast.net.statemachine
    dicomfast.net.dimse
    dicomfast.net.association
    dicomfast.net.services
forbidden_modules =
    socket
    selectors
allow_indirect_imports = True
"""


def test_net_import_contracts(tmp_path):
    pytest.importorskip("importlinter")
    config = tmp_path / "net.ini"
    config.write_text(CONFIG)
    code = ("import sys; sys.path.insert(0, '.'); from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr

