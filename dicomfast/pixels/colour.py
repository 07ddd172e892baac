"""Photometric conversions: YBR_FULL <-> RGB and PALETTE COLOR -> RGB.

Decoders return samples as stored, with one exception that follows pydicom:
JPEG Baseline / Extended YCbCr frames come out as RGB (the codec's ``as_rgb``).
These functions are for callers that want the other conversions. MONOCHROME1
is left as stored (inverting it is a display step, PS3.3 C.7.6.3.1.2).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

# PS3.3 C.7.6.3.1.2 (YBR_FULL, the ITU-R BT.601 / JFIF matrix, ISO/IEC 10918-5 §7).
# Rows are the input channels so that `pixels @ matrix` converts (..., 3) arrays.
_YBR_TO_RGB = np.array([[1.0, 1.0, 1.0],
                        [0.0, -0.114 * 1.772 / 0.587, 1.772],
                        [1.402, -0.299 * 1.402 / 0.587, 0.0]])
_RGB_TO_YBR = np.array([[0.299, -0.299 / 1.772, 0.701 / 1.402],
                        [0.587, -0.587 / 1.772, -0.587 / 1.402],
                        [0.114, 0.886 / 1.772, -0.114 / 1.402]])
_YBR_NAMES = ("YBR_FULL", "YBR_FULL_422")


def convert_color_space(arr: np.ndarray, current: str, desired: str) -> np.ndarray:
    """A new array of `arr` (..., 3) converted from `current` to `desired`.

    `current` / `desired` are Photometric Interpretations: RGB, YBR_FULL or
    YBR_FULL_422 (422 data must already be upsampled, as decoders return it).
    8-bit results equal pydicom's ``convert_color_space`` bit for bit (the same
    float32 arithmetic, rounding by floor(x + 0.5), clipping); 16-bit samples use
    the same equations with the chroma offset 2**15 instead of 2**7, in float64.
    """
    cur, want = current.strip().upper(), desired.strip().upper()
    known = ("RGB", *_YBR_NAMES)
    if cur not in known or want not in known:
        raise NotImplementedError(f"conversion from {current!r} to {desired!r} is not supported")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"colour conversion needs uint8 or uint16 samples, not {arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"colour conversion needs 3 samples per pixel, the shape is {arr.shape}")
    if (cur == "RGB") == (want == "RGB"):
        return arr.copy()
    to_rgb = want == "RGB"
    if arr.dtype == np.uint8:
        # Bit-exact with pydicom: float32 and the operations in the same order.
        matrix = (_YBR_TO_RGB if to_rgb else _RGB_TO_YBR).astype(np.float32)
        if to_rgb:
            work = arr.astype(np.float32)
            work -= np.array([0, 128, 128], np.float32)
            np.matmul(work, matrix, out=work)
            work += np.float32(0.5)
        else:
            work = np.matmul(arr, matrix, dtype=np.float32)
            work += np.array([0.5, 128.5, 128.5], np.float32)
        top = 255
    else:
        half = 32768.0
        if to_rgb:
            work = (arr.astype(np.float64) - [0.0, half, half]) @ _YBR_TO_RGB + 0.5
        else:
            work = arr.astype(np.float64) @ _RGB_TO_YBR + [0.5, half + 0.5, half + 0.5]
        top = 65535
    np.floor(work, out=work)
    np.clip(work, 0, top, out=work)
    return work.astype(arr.dtype)


def _root(ds: Any) -> Any:
    while getattr(ds, "parent", None) is not None:
        ds = ds.parent
    return ds


def _little_endian(ds: Any) -> bool:
    """The byte order of the data set's OW values (raw bytes as encoded, PS3.5 §7.3)."""
    root = _root(ds)
    little = getattr(root, "is_little_endian", None)
    if little is None:  # a pydicom Dataset read from a file
        little = getattr(root, "original_encoding", (None, True))[1]
    return little is not False


def _words(raw: bytes, bits: int, little: bool) -> np.ndarray:
    if bits == 8:
        return np.frombuffer(raw, np.uint8)
    return np.frombuffer(raw[: len(raw) & ~1], "<u2" if little else ">u2").astype(np.uint16)


def _expand_segmented(words: np.ndarray, limit: int) -> list[int]:
    """Expand Segmented Palette Color LUT Data (PS3.3 C.7.9.2) into table entries."""
    out: list[int] = []
    _expand_into(out, [int(w) for w in words], 0, None, limit, 0)
    return out


def _expand_into(out: list[int], data: list[int], pos: int, n_segments: int | None,
                 limit: int, depth: int) -> None:
    if depth > 8:
        raise ValueError("segmented palette: indirect segments nest too deeply")
    done = 0
    # A trailing pad word (odd number of words) is not a segment: every segment has >= 2 words.
    while pos + 1 < len(data) and (n_segments is None or done < n_segments):
        if len(out) > limit:
            raise ValueError(f"segmented palette expands past its {limit} entries")
        opcode, length = data[pos], data[pos + 1]
        pos += 2
        if opcode == 0:  # C.7.9.2.1 discrete: `length` values follow
            out.extend(data[pos:pos + length])
            pos += length
        elif opcode == 1:  # C.7.9.2.2 linear: from the previous end point to y1 in `length` steps
            if not out:
                raise ValueError("segmented palette: a linear segment cannot come first")
            if pos >= len(data):
                raise ValueError("segmented palette: linear segment without its end value")
            y0, y1 = out[-1], data[pos]
            pos += 1
            if y0 == y1:
                out.extend([y1] * length)
            elif length:
                # pydicom's rounding: numpy's around (half to even) of the line's points
                step = (y1 - y0) / length
                out.extend(int(v) for v in np.around(np.linspace(y0 + step, y1, length)))
        elif opcode == 2:  # C.7.9.2.3 indirect: copy `length` segments found at an offset
            if not out:
                raise ValueError("segmented palette: an indirect segment cannot come first")
            if pos + 1 >= len(data):
                raise ValueError("segmented palette: indirect segment without its offset")
            # The 32-bit offset, least significant word first, read as an index into
            # the segment words (as pydicom reads it).
            offset = data[pos] | (data[pos + 1] << 16)
            pos += 2
            _expand_into(out, data, offset, length, limit, depth + 1)
        else:
            raise ValueError(f"segmented palette: unknown segment opcode {opcode}")
        done += 1


def _descriptor(ds: Any, little: bool) -> tuple[int, int, int]:
    """(number of entries, first mapped value, bits per entry) of the Red descriptor,
    which PS3.3 C.7.6.3.1.5 makes the same for every colour."""
    desc = ds.get("RedPaletteColorLookupTableDescriptor")
    if desc is None:
        raise ValueError("no (0028,1101) Red Palette Color Lookup Table Descriptor")
    if isinstance(desc, (bytes, bytearray, memoryview)):
        desc = struct.unpack(("<" if little else ">") + "3H", bytes(desc)[:6])
    n_entries, first, bits = (int(v) for v in list(desc)[:3])
    n_entries = n_entries or 65536  # 0 means 2**16 entries
    if int(ds.get("PixelRepresentation") or 0) == 1 and first >= 32768:
        first -= 65536  # the first mapped value of signed pixels, stored as US
    if bits not in (8, 16):
        raise ValueError(f"palette entries of {bits} bits (8 or 16 allowed)")
    return n_entries, first, bits


def _lut(ds: Any, colour: str, n_entries: int, bits: int, little: bool) -> np.ndarray:
    """The entries of one colour's Palette Color LUT, plain or segmented."""
    raw = ds.get(f"{colour}PaletteColorLookupTableData")
    if raw is not None:
        raw = bytes(raw)
        # C.7.6.3.1.6: 8-bit entries come one per byte, or one per 16-bit word.
        entry_bits = 8 if bits == 8 and len(raw) in (n_entries, n_entries + 1) else 16
        table = _words(raw, entry_bits, little)[:n_entries]
    else:
        seg = ds.get(f"Segmented{colour}PaletteColorLookupTableData")
        if seg is None:
            raise ValueError(f"no {colour} Palette Color Lookup Table Data")
        entries = _expand_segmented(_words(bytes(seg), bits, little), n_entries)
        table = np.array(entries[:n_entries], np.uint8 if bits == 8 else np.uint16)
    if len(table) < n_entries:
        raise ValueError(f"the {colour} palette has {len(table)} of {n_entries} entries")
    return table


def apply_palette(arr: np.ndarray, ds: Any) -> np.ndarray:
    """PALETTE COLOR pixels `arr` mapped to RGB (or RGBA with an alpha LUT) by the
    Palette Color LUTs of `ds` (PS3.3 C.7.6.3.1.5-6, C.7.9).

    Values below the first mapped value take the first entry, values past the
    table the last. The output has the LUT's entry type: uint8 for 8-bit entries
    in bytes, uint16 otherwise (as pydicom's ``apply_color_lut``).
    """
    little = _little_endian(ds)
    n_entries, first, bits = _descriptor(ds, little)
    colours = ["Red", "Green", "Blue"]
    if (ds.get("AlphaPaletteColorLookupTableData") is not None
            or ds.get("SegmentedAlphaPaletteColorLookupTableData") is not None):
        colours.append("Alpha")
    luts = [_lut(ds, colour, n_entries, bits, little) for colour in colours]
    dtype = np.result_type(*luts)
    index = np.clip(np.asarray(arr).astype(np.int64) - first, 0, n_entries - 1)
    out = np.empty((*np.shape(arr), len(luts)), dtype)
    for k, table in enumerate(luts):
        out[..., k] = table[index]
    return out
