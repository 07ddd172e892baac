"""A readable listing of a dataset, in the spirit of DCMTK's dcmdump."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dicomfast.tag import tag_to_str

if TYPE_CHECKING:
    from dicomfast.dataset import Dataset

_MAX_VALUE_CHARS = 64


def _show(value: Any, vr: str) -> str:
    if value is None:
        return "(no value)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value[:16])
        more = "..." if len(value) > 16 else ""
        return f"{len(value)} bytes: {data.hex(' ')}{more}" if value else "(no value)"
    if isinstance(value, list):
        if vr == "AT":
            text = "\\".join(tag_to_str(v) for v in value)
        else:
            text = "\\".join(str(v) for v in value)
    elif vr == "AT" and isinstance(value, int):
        text = tag_to_str(value)
    else:
        text = str(value)
    if text == "":
        return "(no value)"
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return f"[{text}]"


def format_dataset(ds: Dataset, indent: int = 0) -> Iterator[str]:
    """Lines of `tag VR [value]  # length, VM keyword`, items indented under sequences."""
    pad = "  " * indent
    for el in ds:
        length = el.length
        shown_len = "u/l" if el.is_undefined_length else str(length if length >= 0 else "?")
        keyword = el.keyword or el.name
        if el.VR == "SQ":
            yield f"{pad}{tag_to_str(el.tag)} SQ ({len(el.value)} item(s))  # {shown_len} {keyword}"
            for i, item in enumerate(el.value, 1):
                yield f"{pad}  (FFFE,E000) item {i}"
                yield from format_dataset(item, indent + 2)
            continue
        value = el.value
        if el.tag == 0x7FE00010 and el.is_undefined_length:
            shown = "(encapsulated pixel data)"
        else:
            shown = _show(value, el.VR)
        yield f"{pad}{tag_to_str(el.tag)} {el.VR:<2} {shown:<40} # {shown_len:>5}, {el.VM} {keyword}"
