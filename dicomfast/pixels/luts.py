"""Grayscale value transforms: Modality LUT, VOI LUT and Presentation LUT.

The grayscale pipeline of PS3.4 §N.2.1.1: stored values -> Modality LUT
(PS3.3 §C.11.1) -> VOI LUT (§C.11.2) -> Presentation LUT (§C.11.6) -> P-values.

Results of :func:`apply_modality_lut` and :func:`apply_voi_lut` equal pydicom's
functions of the same names element for element (same float64 operations in
the same order, so the same IEEE results), and take the same inputs. They differ
in how the work is done: integer inputs of at most 16 bits large enough to pay
for it go through a table of the transform over every possible input value
(one gather per pixel instead of several float64 passes), and other inputs are
processed in blocks small enough for their temporaries to stay in cache. Every
function takes ``out=`` (any shape with the input's number of elements; a slice
of a preallocated batch works) and ``dtype=`` (float64 by default, as pydicom;
float32, or an integer type for values rounded to the nearest integer).
Arrays may be one frame or a batch of frames: the transforms are per pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["apply_lut", "apply_modality_lut", "apply_modality_voi_lut", "apply_presentation_lut",
           "apply_voi", "apply_voi_lut", "lut_from_item", "voi_range", "window_params"]

# Elements per block of the float path: 2 MiB of float64, a size that stays in L2.
_BLOCK = 1 << 18
# Tabulate an integer input's whole domain when the array has at least this many
# pixels per table entry; below that, computing per pixel is cheaper.
_TABLE_MIN_RATIO = 2

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

Transform = Callable[[np.ndarray, np.ndarray], None]  # (x float64, out float64) -> None


# -- the engine: a per-pixel float64 transform applied to an array ------------------------

def _check_out(out: Any, arr: np.ndarray, dtype: Any) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError("out must be a numpy array")
    if dtype is not None and np.dtype(dtype) != out.dtype:
        raise ValueError(f"out has dtype {out.dtype}, dtype= asks for {np.dtype(dtype)}")
    if out.size != arr.size:
        raise ValueError(f"out has {out.size} elements, the input {arr.size}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


def _store(values: np.ndarray, dst: np.ndarray) -> None:
    """Copy float64 `values` into `dst`: rounded and clipped for an integer dst."""
    if dst.dtype.kind in "iu":
        info = np.iinfo(dst.dtype)
        np.rint(values, out=values)
        np.clip(values, info.min, info.max, out=values)
        dst[...] = values.astype(dst.dtype, copy=False)
    else:
        dst[...] = values


def _table_domain(arr: np.ndarray) -> np.ndarray | None:
    """Every value `arr`'s dtype can hold, ordered by bit pattern, when a table pays."""
    if arr.dtype.kind not in "iub" or arr.dtype.itemsize > 2:
        return None
    n = 1 << (8 * arr.dtype.itemsize)
    if arr.dtype.kind == "b" or arr.size < _TABLE_MIN_RATIO * n:
        return None
    unsigned = np.dtype(f"u{arr.dtype.itemsize}")
    return np.arange(n, dtype=unsigned).view(arr.dtype.newbyteorder("="))


def _run(arr: np.ndarray, fn: Transform, out: np.ndarray | None, dtype: Any) -> np.ndarray:
    """`fn` applied per pixel of `arr`, in a new array of `dtype` or in `out`.

    A transform with a ``fast`` attribute (the same function in fewer passes,
    equal to a few ulp) uses that on float inputs.
    """
    arr = np.asarray(arr)
    if out is not None:
        result = _check_out(out, arr, dtype)
    else:
        result = np.empty(arr.shape, np.float64 if dtype is None else dtype)
    if arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    src = np.ascontiguousarray(arr).reshape(-1)
    copy_back = not result.flags.c_contiguous
    dst = np.empty(result.size, result.dtype) if copy_back else result.reshape(-1)
    domain = _table_domain(src)
    if domain is not None:
        # Every stored value through one table: fn is evaluated on at most 65536
        # values, each pixel is then one gather (mode="clip" skips the bounds check
        # that costs more than the gather; the indices cannot be out of range).
        values = np.empty(domain.size, np.float64)
        fn(domain.astype(np.float64), values)
        table = np.empty(domain.size, dst.dtype)
        _store(values, table)
        index = src.view(f"u{src.dtype.itemsize}")
        step = _BLOCK * 4
        for s in range(0, src.size, step):
            np.take(table, index[s:s + step], out=dst[s:s + step], mode="clip")
    else:
        # In place (out= is the input) the transform must not write where it reads.
        direct = dst.dtype == np.float64 and not np.may_share_memory(src, dst)
        if src.dtype.kind == "f":
            fn = getattr(fn, "fast", fn)
        work = np.empty(min(_BLOCK, src.size), np.float64)
        for s in range(0, src.size, _BLOCK):
            x = src[s:s + _BLOCK].astype(np.float64, copy=False)
            if direct:
                fn(x, dst[s:s + _BLOCK])
            else:
                w = work[:x.size]
                fn(x, w)
                _store(w, dst[s:s + _BLOCK])
    if copy_back:
        result[...] = dst.reshape(result.shape)
    return result


def _passthrough(arr: np.ndarray, out: np.ndarray | None, dtype: Any) -> np.ndarray:
    """No transform applies: `arr` itself (pydicom's result), or copied as asked."""
    if out is None and dtype is None:
        return arr
    return _run(arr, lambda x, o: np.copyto(o, x), out, dtype)


# -- LUT tables (Modality, VOI and Presentation LUT Sequences) ----------------------------

def _little_endian(ds: Any) -> bool:
    root = ds
    while getattr(root, "parent", None) is not None:
        root = root.parent
    little = getattr(root, "is_little_endian", None)
    if little is None:  # a pydicom data set
        little = getattr(root, "original_encoding", (None, True))[1]
    return little is not False


def lut_from_item(item: Any, ds: Any = None) -> tuple[np.ndarray, int] | None:
    """(table, first mapped value) of a LUT Sequence item (PS3.3 §C.11.1.1.1,
    §C.11.2.1.1), or None when its descriptor or data is missing.

    The table has uint8 entries for 8-bit descriptors and uint16 otherwise, as
    pydicom makes them. `ds` is the data set holding the sequence (for the byte
    order of OW data).
    """
    desc = item.get("LUTDescriptor")
    data = item.get("LUTData")
    if desc is None or data is None or (hasattr(desc, "__len__") and len(desc) < 3):
        return None
    if isinstance(desc, (bytes, bytearray, memoryview)):
        little = _little_endian(ds if ds is not None else item)
        desc = np.frombuffer(bytes(desc)[:6], "<u2" if little else ">u2").tolist()
    # The first value counts entries and is unsigned even when the descriptor is SS
    # (PS3.3 §C.11.1.1.1: 0 means 2**16); the second is the first value mapped.
    n_entries = (int(desc[0]) & 0xFFFF) or 65536
    first = int(desc[1])
    bits = int(desc[2])
    dtype = np.uint8 if bits <= 8 else np.uint16
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        little = _little_endian(ds if ds is not None else item)
        if bits <= 8 and len(raw) < 2 * n_entries:
            table = np.frombuffer(raw, np.uint8)[:n_entries]  # 8-bit entries packed in bytes
        else:
            table = np.frombuffer(raw[: len(raw) & ~1], "<u2" if little else ">u2")
            table = table[:n_entries].astype(dtype)
    else:
        values = [data] if isinstance(data, int) else list(data)
        table = np.asarray(values, dtype=np.int64).astype(dtype)
    if table.size == 0:
        return None
    return table, first


def _lut_transform(table: np.ndarray, first: int) -> Transform:
    last = table.size - 1
    ftable = table.astype(np.float64)

    def fn(x: np.ndarray, out: np.ndarray) -> None:
        # Values below the first mapped value take the first entry, values past the
        # table the last (PS3.3 §C.11.1.1.1); others index by truncation, as pydicom.
        idx = x - first
        np.clip(idx, 0, last, out=idx)
        np.take(ftable, idx.astype(np.intp), out=out, mode="clip")
    return fn


def apply_lut(arr: np.ndarray, table: np.ndarray, first_map: int, *,
              out: np.ndarray | None = None, dtype: Any = None) -> np.ndarray:
    """`arr` mapped by a LUT whose first entry is for the value `first_map`.

    The result has the table's dtype unless `out` / `dtype` say otherwise.
    """
    table = np.asarray(table)
    return _run(np.asarray(arr), _lut_transform(table, int(first_map)), out,
                table.dtype if dtype is None and out is None else dtype)


# -- Modality LUT (PS3.3 §C.11.1) ----------------------------------------------------------

def _functional_group_item(ds: Any, frame: int | None, sequence: str) -> Any:
    """The item of `sequence` that applies to `frame` in an enhanced multi-frame data
    set (PS3.3 §C.7.6.16): per-frame first, then shared; None if neither has it."""
    if frame is None:
        return None
    for groups, pick in (("PerFrameFunctionalGroupsSequence", frame),
                         ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and 0 <= pick < len(items):
            inner = items[pick].get(sequence)
            if inner:
                return inner[0]
    return None


def _modality_transform(ds: Any, frame: int | None) -> tuple[Transform, Any] | None:
    """(transform, natural output dtype) of the data set's Modality LUT, or None."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        found = lut_from_item(seq[0], ds)
        if found is not None:
            return _lut_transform(*found), found[0].dtype
    src = _functional_group_item(ds, frame, "PixelValueTransformationSequence") or ds
    if "RescaleSlope" in src and "RescaleIntercept" in src:
        slope, intercept = src.get("RescaleSlope"), src.get("RescaleIntercept")
        if slope is None or intercept is None or slope == "" or intercept == "":
            return None
        slope, intercept = float(slope), float(intercept)

        def fn(x: np.ndarray, out: np.ndarray) -> None:
            np.multiply(x, slope, out=out)
            out += intercept
        return fn, np.float64
    return None


def apply_modality_lut(arr: np.ndarray, ds: Any, *, out: np.ndarray | None = None,
                       dtype: Any = None, frame: int | None = None) -> np.ndarray:
    """The Modality LUT of `ds` applied to stored values `arr` (PS3.3 §C.11.1).

    The Modality LUT Sequence gives the LUT's entry type (uint8 / uint16);
    Rescale Slope and Intercept give float64; with neither, `arr` comes back as
    it is. `frame` (an index) also looks in the Pixel Value Transformation
    Sequence of the functional groups of enhanced multi-frame images.
    """
    found = _modality_transform(ds, frame)
    if found is None:
        return _passthrough(arr, out, dtype)
    fn, natural = found
    return _run(np.asarray(arr), fn, out, natural if dtype is None and out is None else dtype)


# -- VOI LUT (PS3.3 §C.11.2) ---------------------------------------------------------------

def _window_transform(center: float, width: float, voi_func: str, y_min: float,
                      y_max: float) -> Transform:
    func = (voi_func or "LINEAR").strip().upper()
    y_range = y_max - y_min
    if func in ("LINEAR", "LINEAR_EXACT"):
        if func == "LINEAR":
            # PS3.3 §C.11.2.1.2.1: the window is [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2].
            if width < 1:
                raise ValueError("a LINEAR window needs (0028,1051) Window Width >= 1")
            c, w = center - 0.5, width - 1
        else:  # §C.11.2.1.3.2
            if width <= 0:
                raise ValueError("a LINEAR_EXACT window needs (0028,1051) Window Width > 0")
            c, w = center, width
        lo, hi = c - w / 2, c + w / 2

        def linear(x: np.ndarray, out: np.ndarray) -> None:
            if w > 0:
                np.subtract(x, c, out=out)
                out /= w
                out += 0.5
                out *= y_range
                out += y_min
            else:  # width 1: a step at the centre, every value is below or above
                out.fill(y_max)
            np.copyto(out, y_min, where=x <= lo)
            np.copyto(out, y_max, where=x > hi)

        # One multiply-add and a clip: three passes instead of nine, for values that
        # are not tabulated (float input). It differs from the form above by
        # rounding only: a few ulp of the output range.
        scale = y_range / w if w > 0 else 0.0
        offset = (0.5 - c / w) * y_range + y_min if w > 0 else 0.0

        def linear_fast(x: np.ndarray, out: np.ndarray) -> None:
            if w <= 0:
                linear(x, out)
                return
            np.multiply(x, scale, out=out)
            out += offset
            np.clip(out, min(y_min, y_max), max(y_min, y_max), out=out)
        linear.fast = linear_fast  # type: ignore[attr-defined]
        return linear
    if func == "SIGMOID":
        # PS3.3 §C.11.2.1.3.1: y = (y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min
        if width <= 0:
            raise ValueError("a SIGMOID window needs (0028,1051) Window Width > 0")

        def sigmoid(x: np.ndarray, out: np.ndarray) -> None:
            np.subtract(x, center, out=out)
            out *= -4
            out /= width
            with np.errstate(over="ignore"):  # exp overflow is y_min, as it should be
                np.exp(out, out=out)
            out += 1
            np.divide(y_range, out, out=out)
            out += y_min
        return sigmoid
    raise ValueError(f"unsupported (0028,1056) VOI LUT Function {voi_func!r}")


def apply_voi(arr: np.ndarray, center: float, width: float, voi_func: str = "LINEAR", *,
              y_min: float = 0.0, y_max: float = 255.0, out: np.ndarray | None = None,
              dtype: Any = None) -> np.ndarray:
    """Window `arr` to [y_min, y_max] with Window Center / Width and a VOI LUT Function
    (LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 §C.11.2.1.2 - §C.11.2.1.3).

    ``dtype=np.uint8`` with the default range gives display values directly.
    """
    fn = _window_transform(float(center), float(width), voi_func, y_min, y_max)
    return _run(np.asarray(arr), fn, out, dtype)


def _pick(value: Any, index: int) -> Any:
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        return value[index] if len(value) > 1 else value[0]
    return value


def voi_range(ds: Any, frame: int | None = None) -> tuple[float, float]:
    """The output range pydicom gives a window: the range of the values the window is
    applied to, from Bits Stored and Pixel Representation (or the Modality LUT's
    entry size), through the rescale when there is one."""
    seq = ds.get("ModalityLUTSequence")
    desc = seq[0].get("LUTDescriptor") if seq else None
    if desc is not None and not isinstance(desc, (bytes, bytearray, memoryview)):
        y_min, y_max = 0, 2 ** int(desc[2]) - 1  # LUT output is unsigned, §C.11.1.1.1
    else:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
        if int(ds.get("PixelRepresentation") or 0) == 0:
            y_min, y_max = 0, 2 ** bits - 1
        else:
            y_min, y_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    src = _functional_group_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope, intercept = src.get("RescaleSlope"), src.get("RescaleIntercept")
    if slope not in (None, "") and intercept not in (None, ""):
        y_min = y_min * float(slope) + float(intercept)
        y_max = y_max * float(slope) + float(intercept)
    return y_min, y_max


def window_params(ds: Any, index: int = 0, frame: int | None = None
                  ) -> tuple[float, float, str] | None:
    """(center, width, VOI LUT Function) of window `index`, or None without a window.

    `frame` also looks in the Frame VOI LUT Sequence of the functional groups.
    """
    src = _functional_group_item(ds, frame, "FrameVOILUTSequence") or ds
    center, width = src.get("WindowCenter"), src.get("WindowWidth")
    if center in (None, "") or width in (None, ""):
        return None
    func = src.get("VOILUTFunction") or "LINEAR"
    return float(_pick(center, index)), float(_pick(width, index)), str(func)


def _voi_transform(ds: Any, index: int, prefer_lut: bool, frame: int | None,
                   ) -> tuple[Transform, Any] | None:
    seq = ds.get("VOILUTSequence")
    lut = None
    if seq:
        item = seq[index]
        if item.get("LUTDescriptor") is not None and item.get("LUTData") is not None:
            lut = lut_from_item(item, ds)
            if lut is not None and int(item.get("LUTDescriptor")[2]) not in (8, *range(10, 17)):
                raise NotImplementedError("VOI LUT entries of "
                                          f"{int(item.get('LUTDescriptor')[2])} bits")
    window = window_params(ds, index, frame)
    if lut is not None and (prefer_lut or window is None):
        return _lut_transform(*lut), lut[0].dtype
    if window is None:
        return None
    photometric = str(ds.get("PhotometricInterpretation") or "").strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError("windowing needs (0028,0004) Photometric Interpretation "
                         f"MONOCHROME1 or MONOCHROME2, not {photometric!r}")
    y_min, y_max = voi_range(ds, frame)
    return _window_transform(*window, y_min, y_max), np.float64


def apply_voi_lut(arr: np.ndarray, ds: Any, index: int = 0, prefer_lut: bool = True, *,
                  out: np.ndarray | None = None, dtype: Any = None,
                  frame: int | None = None) -> np.ndarray:
    """The VOI LUT of `ds` applied to `arr` (PS3.3 §C.11.2), as pydicom applies it.

    `arr` holds Modality LUT output. `index` picks one of several windows or VOI
    LUT Sequence items; with both a window and a VOI LUT Sequence, `prefer_lut`
    chooses the LUT. A LUT gives its entry type, a window float64 over the input's
    range (see :func:`voi_range`); with neither, `arr` comes back as it is.
    """
    found = _voi_transform(ds, index, prefer_lut, frame)
    if found is None:
        return _passthrough(arr, out, dtype)
    fn, natural = found
    return _run(np.asarray(arr), fn, out, natural if dtype is None and out is None else dtype)


def apply_modality_voi_lut(arr: np.ndarray, ds: Any, index: int = 0, prefer_lut: bool = True,
                           *, out: np.ndarray | None = None, dtype: Any = None,
                           frame: int | None = None) -> np.ndarray:
    """``apply_voi_lut(apply_modality_lut(arr, ds), ds)`` in one pass.

    For stored integer values the composed transform is tabulated once, so a
    rescaled CT volume is windowed with one gather per pixel. Float64 results
    equal the two-step ones exactly.
    """
    mod = _modality_transform(ds, frame)
    voi = _voi_transform(ds, index, prefer_lut, frame)
    if mod is None and voi is None:
        return _passthrough(arr, out, dtype)
    if mod is None or voi is None:
        fn, natural = (mod or voi)  # type: ignore[misc]
    else:
        mod_fn, voi_fn = mod[0], voi[0]
        natural = voi[1]

        def fn(x: np.ndarray, o: np.ndarray) -> None:
            tmp = np.empty_like(o)
            mod_fn(x, tmp)
            voi_fn(tmp, o)
    return _run(np.asarray(arr), fn, out, natural if dtype is None and out is None else dtype)


# -- Presentation LUT (PS3.3 §C.11.6) and MONOCHROME1 ----------------------------------------

def inverts(ds: Any) -> bool:
    """Whether the grayscale must be inverted for display.

    Presentation LUT Shape INVERSE inverts (§C.11.6.1.2). Without a shape,
    MONOCHROME1 inverts (§C.7.6.3.1.2: the minimum value is white). Modules that
    carry both (DX, MG, IO, CR: §C.8.11.7) require INVERSE for MONOCHROME1, so the
    shape already accounts for it and inverting twice would be wrong.
    """
    shape = str(ds.get("PresentationLUTShape") or "").strip().upper()
    if shape:
        return shape == "INVERSE"
    return str(ds.get("PhotometricInterpretation") or "").strip() == "MONOCHROME1"


def apply_presentation_lut(arr: np.ndarray, ds: Any, *, y_min: float | None = None,
                           y_max: float | None = None, out: np.ndarray | None = None,
                           dtype: Any = None) -> np.ndarray:
    """P-values from VOI output `arr` whose range is [y_min, y_max] (PS3.3 §C.11.6).

    A Presentation LUT Sequence maps the range linearly onto its entries; an
    INVERSE shape (or MONOCHROME1 without a shape, see :func:`inverts`) gives
    ``y_min + y_max - arr``. Without a range, the array's own minimum and maximum
    stand in (pydicom's choice, which makes the result depend on the data).
    """
    arr = np.asarray(arr)
    seq = ds.get("PresentationLUTSequence")
    lut = lut_from_item(seq[0], ds) if seq else None
    if lut is None and not inverts(ds):
        return _passthrough(arr, out, dtype)
    lo = float(np.min(arr)) if y_min is None else float(y_min)
    hi = float(np.max(arr)) if y_max is None else float(y_max)
    if lut is not None:
        table, _first = lut  # §C.11.6.1.1: the first value mapped is always 0
        scale = (table.size - 1) / (hi - lo) if hi > lo else 0.0
        lut_fn = _lut_transform(table, 0)

        def fn(x: np.ndarray, o: np.ndarray) -> None:
            tmp = (x - lo) * scale
            np.floor(tmp, out=tmp)
            lut_fn(tmp, o)
        natural = table.dtype
    else:
        def fn(x: np.ndarray, o: np.ndarray) -> None:
            np.subtract(lo + hi, x, out=o)
        natural = arr.dtype
    return _run(arr, fn, out, natural if dtype is None and out is None else dtype)
