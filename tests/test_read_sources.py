"""Every kind of source reads to the same dataset, without copying buffers."""

from __future__ import annotations

import io
import mmap

import pytest
from corpus import find

import dicomfast

PATH = find("rtplan.dcm")


def _walk(ds):
    out = []
    for el in ds:
        if el.VR == "SQ":
            out.append((el.tag, [_walk(item) for item in el.value]))
        else:
            out.append((el.tag, el.VR, el.value))
    return out


def test_all_sources_agree():
    expected = _walk(dicomfast.read(PATH))
    data = PATH.read_bytes()
    with open(PATH, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mm_ds = dicomfast.read(mm)
        assert _walk(mm_ds) == expected
        del mm_ds  # the index holds the buffer; release it before the mmap closes
    sources = [str(PATH), PATH, data, bytearray(data), memoryview(data), io.BytesIO(data)]
    for source in sources:
        assert _walk(dicomfast.read(source)) == expected, type(source)


def test_index_keeps_its_buffer_alive():
    data = bytearray(PATH.read_bytes())
    ds = dicomfast.read(data)
    assert ds._index.source is data
    with pytest.raises(BufferError):
        data.extend(b"x")  # exported buffer: cannot be resized while the index lives
