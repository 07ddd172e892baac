"""Lints as tests: the import layering of STYLE.md, checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_contracts():
    run = subprocess.run(["lint-imports", str(ROOT / "pyproject.toml")],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_import_dicomfast_does_not_import_net():
    code = "import sys, dicomfast; print(any(m.startswith('dicomfast.net') for m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_dicomweb_imports_its_dependencies_on_use():
    # dicomfast.web needs uvicorn (server) and urllib3 (client) only when used, and never
    # the DIMSE stack; the server application itself imports no HTTP library.
    code = ("import sys, dicomfast.web, dicomfast.web.app; "
            "print(sorted(m for m in ('uvicorn', 'urllib3', 'dicomfast.net') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
