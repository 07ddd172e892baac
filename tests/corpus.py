"""The test corpus: pydicom's bundled files, pydicom-data, and ../shared/corpus.

Files are listed from their folders directly (pydicom's own lookup helpers try
to download what is missing, which a test must never do).
"""

from __future__ import annotations

import functools
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
LJDATA = SHARED / "corpus" / "ljdata"

_SKIP_SUFFIXES = {".txt", ".json", ".dump", ".gz", ".bz2", ".py", ".md", ".rst", ".xml", ".zip"}


def _files(root: Path | None) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in _SKIP_SUFFIXES and p.name != "README"
        and not p.name.startswith(".")
    )


def pydicom_test_dir() -> Path | None:
    try:
        import pydicom
    except ImportError:
        return None
    return Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_data_dir() -> Path | None:
    try:
        import data_store
    except ImportError:
        return None
    return Path(data_store.__file__).parent / "data"


@functools.lru_cache(maxsize=1)
def all_files() -> list[Path]:
    """Every corpus file, pydicom's first, then pydicom-data, then the shared corpus."""
    charsets = pydicom_test_dir().parent / "charset_files" if pydicom_test_dir() else None
    return (_files(pydicom_test_dir()) + _files(charsets) + _files(pydicom_data_dir())
            + _files(LJDATA / "ds" if LJDATA.is_dir() else None))


def file_id(path: Path) -> str:
    test_dir = pydicom_test_dir()
    charsets = test_dir.parent / "charset_files" if test_dir else None
    for root in (test_dir, charsets, pydicom_data_dir(), LJDATA / "ds"):
        if root is not None and path.is_relative_to(root):
            return str(path.relative_to(root))
    return path.name


def find(name: str) -> Path | None:
    """The first corpus file with this name."""
    for p in all_files():
        if p.name == name:
            return p
    return None


def require_codec(transfer_syntax: str) -> None:
    """Skip the calling test when this build has no codec for `transfer_syntax` (a
    build without one of the optional libraries, e.g. -DDICOMFAST_OPENJPEG=OFF)."""
    import pytest

    from dicomfast.pixels.codecs import available_codecs

    if available_codecs().get(transfer_syntax) is False:
        pytest.skip(f"this build has no codec for {transfer_syntax}")
