"""The codec registry: transfer syntax -> frame decoder/encoder.

A decoder takes one frame's bytes and ImageParams and fills a flat uint8 view
of the caller's array with native little-endian samples, pixel-interleaved.
Codecs never see a Dataset.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dicomfast.errors import CodecUnavailableError, UnsupportedTransferSyntaxError
from dicomfast.pixels.params import ImageParams

Decoder = Callable[[Any, ImageParams, np.ndarray, bool], None]
Encoder = Callable[[np.ndarray, ImageParams], bytes]


@dataclass(frozen=True)
class Codec:
    name: str
    transfer_syntaxes: tuple[str, ...]
    module: str                       # the native module that does the work
    decoder: str                      # function names in this file's adapters below
    encoder: str | None = None
    package_hint: str = ""            # what to install when the module is missing

    def _native(self) -> Any:
        try:
            return importlib.import_module(self.module)
        except ImportError:
            raise CodecUnavailableError(
                f"{self.name}: this build of dicomfast has no {self.module.rsplit('.', 1)[-1]} "
                f"module{'; ' + self.package_hint if self.package_hint else ''}") from None

    def decode(self, data: Any, params: ImageParams, out: np.ndarray, strict: bool) -> None:
        _ADAPTERS[self.decoder](self._native(), data, params, out, strict)

    def encode(self, array: np.ndarray, params: ImageParams) -> bytes:
        if self.encoder is None:
            raise CodecUnavailableError(f"{self.name}: no encoder")
        return _ADAPTERS[self.encoder](self._native(), array, params)


def _rle_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool) -> None:
    mod.decode(data, out, p.rows, p.columns, p.samples_per_pixel, p.bits_allocated, strict)


def _rle_encode(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return mod.encode(raw.view(np.uint8).reshape(-1), p.rows, p.columns, p.samples_per_pixel,
                      p.bits_allocated)


def _ljpeg_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool) -> None:
    info = mod.info(data)
    itemsize = 1 if info["precision"] <= 8 else 2
    if (info["rows"], info["columns"], info["components"]) != (
            p.rows, p.columns, p.samples_per_pixel) or itemsize * 8 > p.bits_allocated:
        from dicomfast.errors import DecodeError

        raise DecodeError(
            f"the JPEG stream is {info['columns']} x {info['rows']} x {info['components']} "
            f"at {info['precision']} bits; the data set says {p.columns} x {p.rows} x "
            f"{p.samples_per_pixel} at {p.bits_allocated} bits", codec="JPEG Lossless")
    if itemsize * 8 == p.bits_allocated:
        mod.decode(data, out, strict)
        return
    # Fewer bits in the stream than allocated: decode, then widen.
    tmp = np.empty(p.pixels_per_frame, np.uint8 if itemsize == 1 else np.uint16)
    mod.decode(data, tmp.view(np.uint8), strict)
    out.view(p.dtype.newbyteorder("<")).reshape(-1)[...] = tmp


def _ljpeg_encode(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    raw = np.ascontiguousarray(array, dtype=np.uint8 if p.bits_allocated <= 8 else "<u2")
    return mod.encode(raw.view(np.uint8).reshape(-1), p.rows, p.columns, p.samples_per_pixel,
                      p.bits_stored)


_ADAPTERS: dict[str, Callable[..., Any]] = {
    "rle_decode": _rle_decode,
    "rle_encode": _rle_encode,
    "ljpeg_decode": _ljpeg_decode,
    "ljpeg_encode": _ljpeg_encode,
}

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"

_CODECS = [
    Codec("RLE Lossless", (RLE_LOSSLESS,), "dicomfast._native._rle", "rle_decode",
          "rle_encode"),
    Codec("JPEG Lossless", (JPEG_LOSSLESS, JPEG_LOSSLESS_SV1), "dicomfast._native._ljpeg",
          "ljpeg_decode", "ljpeg_encode"),
]
_BY_UID: dict[str, Codec] = {uid: c for c in _CODECS for uid in c.transfer_syntaxes}


def register(codec: Codec) -> None:
    """Add (or replace) the codec for its transfer syntaxes."""
    for uid in codec.transfer_syntaxes:
        _BY_UID[uid] = codec


def codec_for(transfer_syntax_uid: str) -> Codec:
    codec = _BY_UID.get(transfer_syntax_uid)
    if codec is None:
        raise UnsupportedTransferSyntaxError(
            f"no decoder for compressed pixel data of transfer syntax {transfer_syntax_uid!r}")
    return codec


def decode_frame(data: Any, params: ImageParams, transfer_syntax: str, *,
                 out: np.ndarray | None = None, strict: bool = False) -> np.ndarray:
    """Decode one frame's bytes into an array of `params.frame_shape` (or `out`)."""
    from dicomfast.pixels.native import check_out, finish

    codec = codec_for(transfer_syntax)
    shape = (1, params.pixels_per_frame)
    arr = np.empty(shape, params.dtype) if out is None else check_out(out, shape, params.dtype)
    codec.decode(data, params, arr.view(np.uint8).reshape(-1), strict)
    # Codecs return pixel-interleaved samples whatever Planar Configuration says.
    interleaved = params if params.planar_configuration == 0 else _interleaved(params)
    return finish(arr, interleaved, 1, out is not None).reshape(params.frame_shape)


def encode_frame(array: np.ndarray, transfer_syntax: str, params: ImageParams) -> bytes:
    """Encode one frame (shape `params.frame_shape`) with the codec of `transfer_syntax`."""
    if tuple(array.shape) != params.frame_shape:
        raise ValueError(f"array shape {array.shape} is not the frame shape {params.frame_shape}")
    return codec_for(transfer_syntax).encode(array, params)


def _interleaved(p: ImageParams) -> ImageParams:
    from dataclasses import replace

    return replace(p, planar_configuration=0)
