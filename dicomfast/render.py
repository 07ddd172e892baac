"""Rendering frames to 8-bit images and PNG files, overlays and contact sheets.

The grayscale pipeline is PS3.4 §N.2.1.1: stored values -> Modality LUT -> VOI
LUT (the file's window, the caller's, or the frame's own range) -> Presentation
LUT / MONOCHROME1 inversion -> P-values, then, when asked, the Grayscale Standard
Display Function (PS3.14) from P-values to the DDLs of a described display.
Colour images are converted to RGB (PS3.3 §C.7.6.3.1.2, palettes §C.7.6.3.1.5).

PNG files are written by :func:`write_png`, a small writer on zlib alone: the
format needs nothing more for 8/16-bit gray and RGB (ISO/IEC 15948), it keeps
rendering free of an imaging dependency, and its output is byte-for-byte
deterministic for the same pixels. JPEG (:func:`encode_jpeg`) goes through the
libjpeg-turbo the codecs link, where this build has it.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from dicomfast import file_warnings
from dicomfast.errors import UnsupportedTransferSyntaxError
from dicomfast.pixels import colour, gsdf, luts
from dicomfast.pixels.codecs import codec_for

__all__ = ["contact_sheet", "encode_jpeg", "encode_png", "jpeg_available", "overlay_groups",
           "overlay_mask", "render_frame", "render_to_png", "scale_to_fit", "write_png"]

_RGB_ALREADY = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")  # JPEG decoders give RGB


# -- PNG -------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of a (rows, cols) gray or (rows, cols, 3|4) RGB(A) image, uint8 or uint16.

    Every row uses filter type 2 ("Up", ISO/IEC 15948 §9.2): the difference to the
    row above, which is small in medical images and deflates well.
    """
    img = np.asarray(image)
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG samples are uint8 or uint16, not {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or 0 in img.shape:
        raise ValueError(f"cannot write an image of shape {image.shape} as PNG")
    rows, cols, samples = img.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[samples]
    depth = 8 * img.dtype.itemsize
    raw = img.astype(">u2") if depth == 16 else img
    line = raw.reshape(rows, -1).view(np.uint8).reshape(rows, cols * samples * depth // 8)
    filtered = np.empty((rows, line.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = line[0]
    np.subtract(line[1:], line[:-1], out=filtered[1:, 1:])  # modulo 256, as the filter is
    header = struct.pack(">IIBBBBB", cols, rows, depth, color_type, 0, 0, 0)
    return b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
                     _chunk(b"IEND", b"")))


def write_png(target: str | os.PathLike | IO[bytes], image: np.ndarray, level: int = 6) -> None:
    """Write `image` (see :func:`encode_png`) to a path or a binary file object."""
    data = encode_png(image, level)
    if hasattr(target, "write"):
        target.write(data)  # type: ignore[union-attr]
        return
    with open(os.fspath(target), "wb") as f:  # type: ignore[arg-type]
        f.write(data)


# -- JPEG ------------------------------------------------------------------------------------

def jpeg_available() -> bool:
    """Whether this build encodes JPEG (it links libjpeg-turbo)."""
    from importlib.util import find_spec

    return find_spec("dicomfast._native._jpeg") is not None


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG (JFIF, baseline) bytes of a (rows, cols) gray or (rows, cols, 3) RGB uint8
    image, the chroma halved across the rows; CodecUnavailableError without
    libjpeg-turbo in this build."""
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8 or not (img.ndim == 2 or img.ndim == 3 and img.shape[2] == 3):
        raise ValueError(f"JPEG images are uint8 gray or RGB, not {img.dtype} {img.shape}")
    try:
        from dicomfast._native import _jpeg
    except ImportError:
        from dicomfast.errors import CodecUnavailableError

        raise CodecUnavailableError("JPEG: this build of dicomfast has no _jpeg module; "
                                    "install libjpeg62-turbo-dev (Debian) or libjpeg-turbo "
                                    "(conda-forge) and rebuild") from None
    return _jpeg.encode(img.reshape(-1), img.shape[0], img.shape[1],
                        1 if img.ndim == 2 else 3, quality=int(quality))


# -- overlays (PS3.3 §C.9.2) -------------------------------------------------------------------

def _value(ds: Any, group: int, elem: int, default: Any = None) -> Any:
    el = ds.get((group << 16) | elem)  # a tag gives the DataElement
    value = None if el is None else el.value
    return default if value is None or (isinstance(value, str) and not value) else value


def overlay_groups(ds: Any) -> list[int]:
    """The repeating groups 6000-601E (PS3.3 §C.9.2) that hold Overlay Data."""
    return [g for g in range(0x6000, 0x6020, 2)
            if _value(ds, g, 0x3000) and _value(ds, g, 0x0010) and _value(ds, g, 0x0011)]


def overlay_mask(ds: Any, group: int, frame: int = 0) -> np.ndarray | None:
    """The overlay plane of `group` over frame `frame`, as a bool image of the frame's
    size, or None when the overlay has no plane for that frame.

    Overlay Data is one bit per pixel, the first pixel in the least significant bit
    of the first byte (PS3.5 §8.1.2), rows of Overlay Columns from Overlay Origin
    (1-based row, column: PS3.3 §C.9.2.1.1), one plane after the other for
    multi-frame overlays, the first applying to Image Frame Origin (§C.9.2.1.2).
    """
    rows, cols = int(_value(ds, group, 0x0010)), int(_value(ds, group, 0x0011))
    origin = _value(ds, group, 0x0050, [1, 1])
    first = int(_value(ds, group, 0x0051, 1)) - 1
    n_planes = _value(ds, group, 0x0015)
    # Without Number of Frames in Overlay the one plane is not tied to a frame (the
    # Multi-frame Overlay Module, §C.9.3, is what ties planes to frames).
    plane = 0 if n_planes is None else frame - first
    if not 0 <= plane < int(n_planes or 1):
        return None
    raw = bytes(_value(ds, group, 0x3000, b""))
    el = ds.get((group << 16) | 0x3000)
    if el.VR == "OW" and luts._little_endian(ds) is False:
        # OW words were byte-swapped for big endian; the bit order is of little-endian words.
        raw = np.frombuffer(raw[: len(raw) & ~1], ">u2").astype("<u2").tobytes()
    bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
    start = plane * rows * cols
    if bits.size < start + rows * cols:
        return None
    plane_bits = bits[start:start + rows * cols].reshape(rows, cols).astype(bool)
    img_rows, img_cols = int(ds.get("Rows")), int(ds.get("Columns"))
    mask = np.zeros((img_rows, img_cols), bool)
    r0, c0 = int(origin[0]) - 1, int(origin[1]) - 1
    # Clip the plane to the image: origins may be negative or planes larger.
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r0 + rows, img_rows), min(c0 + cols, img_cols)
    if bottom > top and right > left:
        mask[top:bottom, left:right] = plane_bits[top - r0:bottom - r0, left - c0:right - c0]
    return mask


# -- frames to 8-bit -----------------------------------------------------------------------------

def _transfer_syntax_uid(ds: Any) -> str:
    ts = getattr(ds, "transfer_syntax", None)
    if ts is not None:
        return ts.uid
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID") or "") if meta is not None else ""


def _to_8bit(arr: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Linear scaling of [lo, hi] (the array's own range by default) onto 0-255."""
    if lo is None or hi is None:
        lo, hi = float(np.min(arr)), float(np.max(arr))
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    scaled = (arr.astype(np.float64) - lo) * (255.0 / (hi - lo))
    np.clip(scaled, 0, 255, out=scaled)
    return np.rint(scaled).astype(np.uint8)


def _colour(ds: Any, arr: np.ndarray, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        rgb = colour.apply_palette(arr, ds)[..., :3]
        return rgb if rgb.dtype == np.uint8 else (rgb >> 8).astype(np.uint8)
    if photometric in ("YBR_FULL", "YBR_FULL_422") and \
            _transfer_syntax_uid(ds) not in _RGB_ALREADY and arr.dtype in (np.uint8, np.uint16):
        arr = colour.convert_color_space(arr, photometric, "RGB")
    if arr.dtype == np.uint8:
        return arr[..., :3]
    bits = int(ds.get("BitsStored") or 8 * arr.dtype.itemsize)
    return _to_8bit(arr[..., :3], 0, (1 << bits) - 1)


def render_frame(ds: Any, frame: int = 0, *, window: tuple[float, float] | None = None,
                 voi_index: int = 0, overlays: bool = False, display: Any = None,
                 reduce: int = 0) -> np.ndarray:
    """Frame `frame` of `ds` as an 8-bit image: (rows, cols) gray or (rows, cols, 3) RGB.

    Grayscale: the Modality LUT, then the VOI: `window` (center, width) when given,
    else the file's VOI LUT Sequence or window number `voi_index`, else the frame's
    own value range; then MONOCHROME1 / Presentation LUT Shape inversion. `display`
    (True, or a dict of :func:`dicomfast.pixels.gsdf.ddl_lut` keywords: l_min,
    l_max, ambient, gamma, characteristic) maps the P-values through the GSDF to
    that display's drive levels. `overlays` draws the overlay planes in white
    (full-size images only). `reduce` renders JPEG 2000 / HTJ2K frames that many
    resolution levels down (see Dataset.frame).
    """
    arr = ds.frame(frame, reduce=reduce) if reduce else ds.frame(frame)
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
    if arr.ndim == 3 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        image = _colour(ds, arr, photometric)
        gray = False
    else:
        image = _grayscale(ds, arr, frame, window, voi_index)
        if luts.inverts(ds):
            np.subtract(255, image, out=image)
        if display is not None and display is not False:
            image = gsdf.apply_gsdf(image, 8, 8, **({} if display is True else dict(display)))
        gray = True
    if overlays:
        for group in overlay_groups(ds):
            mask = overlay_mask(ds, group, frame)
            if mask is None or mask.shape != image.shape[:2]:
                continue
            if gray:
                image[mask] = 255
            else:
                image[mask] = (255, 255, 255)
    return image


def _grayscale(ds: Any, arr: np.ndarray, frame: int, window: tuple[float, float] | None,
               voi_index: int) -> np.ndarray:
    fg = frame if ds.get("PerFrameFunctionalGroupsSequence") or \
        ds.get("SharedFunctionalGroupsSequence") else None
    if window is not None:
        values = luts.apply_modality_lut(arr, ds, frame=fg)
        func = str(ds.get("VOILUTFunction") or "LINEAR")
        return luts.apply_voi(values, window[0], window[1], func, y_min=0, y_max=255,
                              dtype=np.uint8)
    seq = ds.get("VOILUTSequence")
    if seq and voi_index < len(seq) and luts.lut_from_item(seq[voi_index], ds) is not None:
        values = luts.apply_voi_lut(luts.apply_modality_lut(arr, ds, frame=fg), ds, voi_index)
        bits = int(seq[voi_index].get("LUTDescriptor")[2])
        return _to_8bit(values, 0, (1 << bits) - 1)
    found = luts.window_params(ds, voi_index, fg)
    if found is not None:
        values = luts.apply_modality_lut(arr, ds, frame=fg)
        center, width, func = found
        try:
            return luts.apply_voi(values, center, width, func, y_min=0, y_max=255,
                                  dtype=np.uint8)
        except ValueError:
            pass  # an unusable window (width 0): fall back to the frame's range
    return _to_8bit(luts.apply_modality_lut(arr, ds, frame=fg))


def render_to_png(ds: Any, target: str | os.PathLike | IO[bytes], frame: int = 0,
                  **kwargs: Any) -> np.ndarray:
    """Render frame `frame` (see :func:`render_frame`) and write it as PNG; returns the image."""
    image = render_frame(ds, frame, **kwargs)
    write_png(target, image)
    return image


# -- contact sheets ------------------------------------------------------------------------------

def scale_to_fit(image: np.ndarray, width: int, height: int, *,
                 upscale: bool = True) -> np.ndarray:
    """`image` (uint8, gray or RGB) scaled to fit `width` x `height`, its aspect kept:
    averaged over whole blocks of pixels first when it shrinks by 2 or more (no
    aliasing of fine detail), then sampled to the exact size."""
    rows, cols = image.shape[:2]
    scale = min(width / cols, height / rows)
    if not upscale:
        scale = min(scale, 1.0)
    h, w = max(1, round(rows * scale)), max(1, round(cols * scale))
    if (h, w) == (rows, cols):
        return image
    k = int(1 / scale) if scale < 1 else 1
    if k >= 2:
        rows, cols = rows // k * k, cols // k * k
        blocks = image[:rows, :cols].reshape(rows // k, k, cols // k, k, *image.shape[2:])
        image = (blocks.mean(axis=(1, 3)) + 0.5).astype(np.uint8)
        rows, cols = image.shape[:2]
    r_idx = np.minimum(((np.arange(h) + 0.5) * rows / h).astype(np.intp), rows - 1)
    c_idx = np.minimum(((np.arange(w) + 0.5) * cols / w).astype(np.intp), cols - 1)
    return image[r_idx][:, c_idx]


def _fit(image: np.ndarray, tile: int) -> np.ndarray:
    """`image` scaled (nearest neighbour, aspect kept) into a tile x tile square, centred."""
    rows, cols = image.shape[:2]
    scale = tile / max(rows, cols)
    h, w = max(1, round(rows * scale)), max(1, round(cols * scale))
    r_idx = np.minimum((np.arange(h) + 0.5) / scale, rows - 1).astype(np.intp)
    c_idx = np.minimum((np.arange(w) + 0.5) / scale, cols - 1).astype(np.intp)
    out = np.zeros((tile, tile, *image.shape[2:]), np.uint8)
    top, left = (tile - h) // 2, (tile - w) // 2
    out[top:top + h, left:left + w] = image[r_idx][:, c_idx]
    return out


def _tile_reduce(ds: Any, tile: int) -> int:
    """Resolution levels a JPEG 2000 / HTJ2K frame can drop and still fill a tile:
    the decoder skips them, so a contact sheet of large images decodes quickly."""
    ts = getattr(ds, "transfer_syntax", None)
    if ts is None or not ts.is_encapsulated:
        return 0
    try:
        if "reduce" not in codec_for(ts.uid).options:  # JPEG 2000 and HTJ2K
            return 0
    except UnsupportedTransferSyntaxError:
        return 0
    side = max(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0))
    levels = 0
    while side >> (levels + 1) >= tile:
        levels += 1
    return levels


def _number(ds: Any, keyword: str, default: int) -> int:
    """An IS attribute as an int, or `default` when it is missing or not a number
    (a contact sheet takes odd files as they are)."""
    try:
        return int(ds.get(keyword) or default)
    except (TypeError, ValueError):
        return default


def _sort_key(ds: Any, path: str) -> tuple:
    return (str(ds.get("SeriesInstanceUID") or ""), _number(ds, "InstanceNumber", 0), path)


def _sheet_sources(sources: Any) -> list[Any]:
    """The files (paths, or data sets given as such) a contact sheet is made of."""
    if not isinstance(sources, (str, os.PathLike)) and not isinstance(sources, Iterable):
        return [sources]  # one data set
    if isinstance(sources, (str, os.PathLike)) and Path(sources).is_dir():
        return sorted(str(p) for p in Path(sources).rglob("*")
                      if p.is_file() and not p.name.startswith("."))
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    return list(sources)


def _has_image(ds: Any) -> bool:
    return "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds


def contact_sheet(sources: Any, *, columns: int | None = None, tile: int = 256,
                  frame: int | None = None, gap: int = 2,
                  on_skip: Callable[[str, str], None] | None = None,
                  on_warning: Callable[[str, str], None] | None = None,
                  progress: bool = False, **render: Any) -> np.ndarray:
    """One image of tiles: every frame of a multi-frame data set or file, or one frame
    (`frame`, default the middle one) of each file of a folder / list of files,
    ordered by series and Instance Number.

    Files that do not render (not DICOM, no image, a frame they lack, pixel data
    that does not decode) are left out, and each is told to ``on_skip(path,
    why)``; while :func:`dicomfast.file_warnings.collecting` runs, what a file's
    reading and rendering warn about goes to ``on_warning(path, message)``, once
    for each file it concerns. Each file's tile is made as the file is read and the file dropped, so
    a folder of any size needs the memory of its tiles only. `progress` shows a
    bar on a terminal's stderr."""
    from dicomfast.part10 import read
    from dicomfast.progress import Progress

    paths = _sheet_sources(sources)
    keyed: list[tuple[tuple, np.ndarray]] = []
    first: Any = None  # (data set, frames) of the first tile, kept while it is the only one
    with Progress(len(paths)) as bar:
        bar.enabled = bar.enabled and progress
        for p in paths:
            name = str(getattr(p, "filename", "") or p) if hasattr(p, "frame") else str(p)
            with file_warnings.kept() as found:
                try:
                    ds = p if hasattr(p, "frame") else read(p)
                    if not _has_image(ds):
                        raise ValueError("no pixel data")
                    n = _number(ds, "NumberOfFrames", 1)
                    image = render_frame(ds, n // 2 if frame is None else frame,
                                         reduce=_tile_reduce(ds, tile), **render)
                    keyed.append((_sort_key(ds, name), _fit(image, tile)))
                    first = (ds, n) if len(keyed) == 1 else None
                    bar.advance()
                except Exception as exc:  # any file that does not render is left out
                    bar.advance(failed=True)
                    if on_skip is not None:
                        on_skip(name, str(exc) or type(exc).__name__)
            if on_warning is not None:
                for text in found:
                    on_warning(name, text)
    if first is not None and frame is None:
        # One image among the sources: a tile for each of its frames (the middle one's
        # is made already).
        ds, n = first
        tiles = [keyed[0][1] if i == n // 2 else
                 _fit(render_frame(ds, i, reduce=_tile_reduce(ds, tile), **render), tile)
                 for i in range(n)]
    else:
        tiles = [t for _, t in sorted(keyed, key=lambda kt: kt[0])]
    if not tiles:
        raise ValueError("nothing to render: no readable image among the sources")
    rgb = any(t.ndim == 3 for t in tiles)
    if rgb:
        tiles = [t if t.ndim == 3 else np.repeat(t[:, :, None], 3, axis=2) for t in tiles]
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    sheet = np.zeros((rows * tile + (rows - 1) * gap, cols * tile + (cols - 1) * gap,
                      *((3,) if rgb else ())), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (tile + gap):r * (tile + gap) + tile, c * (tile + gap):c * (tile + gap) + tile] = t
    return sheet
