"""The codec registry: transfer syntax -> frame decoder/encoder.

A decoder takes one frame's bytes and ImageParams and fills a flat uint8 view
of the caller's array with native little-endian samples, pixel-interleaved.
Codecs never see a Dataset.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dicomfast.errors import (
    CodecUnavailableError,
    DicomfastError,
    EncodeError,
    UnsupportedTransferSyntaxError,
)
from dicomfast.pixels import isolated
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
    options: tuple[str, ...] = ()     # decode_frame keywords its decoder takes (e.g. as_rgb)
    span_decoder: str | None = None   # decodes many frames of one buffer in one native call

    @property
    def decodes_spans(self) -> bool:
        return self.span_decoder is not None

    def _native(self) -> Any:
        try:
            return importlib.import_module(self.module)
        except ImportError:
            raise CodecUnavailableError(
                f"{self.name}: this build of dicomfast has no {self.module.rsplit('.', 1)[-1]} "
                f"module{'; ' + self.package_hint if self.package_hint else ''}") from None

    def decode(self, data: Any, params: ImageParams, out: np.ndarray, strict: bool,
               **options: Any) -> None:
        taken = {k: v for k, v in options.items() if k in self.options}
        _ADAPTERS[self.decoder](self._native(), data, params, out, strict, **taken)

    def decode_spans(self, value: Any, spans: list[tuple[int, int]], params: ImageParams,
                     out: np.ndarray, strict: bool) -> None:
        """Decode frames value[offset:offset + length] into the rows of `out` (a flat
        uint8 array of len(spans) frames); DecodeError.frame is the position in spans."""
        if self.span_decoder is None:
            raise NotImplementedError(f"{self.name} decodes one frame per call")
        _ADAPTERS[self.span_decoder](self._native(), value, spans, params, out, strict)

    def encoded_photometric(self, params: ImageParams, **options: Any) -> str:
        """The Photometric Interpretation of what :meth:`encode` makes of a frame
        described by `params` (a JPEG encoder turns RGB into YCbCr)."""
        after = _ENCODED_PHOTOMETRIC.get(self.encoder or "")
        return params.photometric_interpretation if after is None else after(params, **options)

    def encode(self, array: np.ndarray, params: ImageParams, **options: Any) -> bytes:
        """One frame's codestream; `options` go to encoders that take them (quality...)."""
        if self.encoder is None:
            raise CodecUnavailableError(f"{self.name}: no encoder")
        adapter = _ADAPTERS[self.encoder]
        unknown = sorted(set(options) - _encoder_options(adapter))
        if unknown:
            takes = ", ".join(sorted(_encoder_options(adapter))) or "none"
            raise EncodeError(f"{self.name} has no encoder option {unknown[0]!r} "
                              f"(its options: {takes})")
        try:
            return adapter(self._native(), array, params, **options)
        except DicomfastError:
            raise
        except ValueError as exc:
            # The native encoders refuse what they cannot encode with ValueError (a
            # 32-bit frame, a sample above the precision): name the codec.
            raise EncodeError(f"{self.name}: {exc}") from exc


@functools.cache
def _encoder_options(adapter: Callable[..., bytes]) -> frozenset[str]:
    """The keyword-only parameters of an encoder adapter: the options it takes."""
    return frozenset(name for name, par in inspect.signature(adapter).parameters.items()
                     if par.kind is inspect.Parameter.KEYWORD_ONLY)


def _rle_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool) -> None:
    mod.decode(data, out, p.rows, p.columns, p.samples_per_pixel, p.bits_allocated, strict)


def _rle_decode_spans(mod: Any, value: Any, spans: list[tuple[int, int]], p: ImageParams,
                      out: np.ndarray, strict: bool) -> None:
    mod.decode_spans(value, spans, out, p.rows, p.columns, p.samples_per_pixel,
                     p.bits_allocated, strict)


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


def _stream_mismatch(codec: str, info: dict[str, Any], p: ImageParams) -> None:
    """Raise DecodeError when a stream's frame header disagrees with the data set."""
    if (info["rows"], info["columns"], info["components"]) != (
            p.rows, p.columns, p.samples_per_pixel) or info["precision"] > p.bits_allocated:
        from dicomfast.errors import DecodeError

        raise DecodeError(
            f"the stream is {info['columns']} x {info['rows']} x {info['components']} at "
            f"{info['precision']} bits; the data set says {p.columns} x {p.rows} x "
            f"{p.samples_per_pixel} at {p.bits_allocated} bits allocated", codec=codec)


def _widen(decode: Callable[[np.ndarray], Any], stream_bytes: int, p: ImageParams,
           out: np.ndarray) -> np.ndarray:
    """Decode into `out` directly, or into a temporary of the stream's sample size
    that is then widened to Bits Allocated; returns `out` as samples."""
    samples = out.view(p.dtype.newbyteorder("<")).reshape(-1)
    if stream_bytes == p.dtype.itemsize:
        decode(out)
        return samples
    tmp = np.empty(p.pixels_per_frame, np.uint8 if stream_bytes == 1 else "<u2")
    decode(tmp.view(np.uint8))
    samples[...] = tmp
    return samples


def _jpeg_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool,
                 as_rgb: bool = True) -> None:
    # PS3.5 §8.2.1: the stream decides its colour space (JFIF, Adobe APP14, component
    # ids); the Photometric Interpretation is only a hint for streams that say nothing.
    # YCbCr comes out as RGB by default, as pydicom returns it.
    info = mod.info(data, p.photometric_interpretation)
    if info["precision"] > mod.MAX_PRECISION:
        raise CodecUnavailableError(
            f"JPEG Extended: {info['precision']}-bit samples need libjpeg-turbo 3.0 or later "
            f"(its 12-bit decoder API); this build links {mod.LIBRARY}, which decodes "
            f"{mod.MAX_PRECISION}-bit JPEG samples only")
    _stream_mismatch("JPEG", info, p)
    _widen(lambda dst: mod.decode(data, dst, photometric=p.photometric_interpretation,
                                  as_rgb=as_rgb, strict=strict), 1, p, out)


def _jpegls_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool) -> None:
    info = mod.info(data)
    _stream_mismatch("JPEG-LS", info, p)
    precision = info["precision"]
    samples = _widen(lambda dst: mod.decode(data, dst), 1 if precision <= 8 else 2, p, out)
    if (p.pixel_representation == 1 and precision < p.bits_allocated
            and precision != p.bits_stored):
        # JPEG-LS has no signed samples (ISO/IEC 14495-1 §A.1): signed pixels are
        # their two's complement bits in `precision` bits, so extend the sign from
        # there (pydicom does the same); Bits Stored is extended later.
        shift = p.bits_allocated - precision
        signed = samples.view(p.dtype)
        np.left_shift(signed, shift, out=signed)
        np.right_shift(signed, shift, out=signed)


#: The quality DCMTK's dcmcjpeg uses by default, and the subsampling it writes.
JPEG_DEFAULT_QUALITY = 90
_JPEG_SUBSAMPLING = {"422": "YBR_FULL_422", "444": "YBR_FULL"}


def _jpeg_encode(mod: Any, array: np.ndarray, p: ImageParams, *,
                 quality: int = JPEG_DEFAULT_QUALITY, subsampling: str = "422") -> bytes:
    # PS3.5 §8.2.1: baseline JPEG holds unsigned 8-bit samples; 3 components go as
    # YCbCr, which the data set then says (YBR_FULL_422 when the chroma is halved
    # across the rows, YBR_FULL when kept whole).
    pi = p.photometric_interpretation
    if p.bits_allocated != 8 or p.bits_stored != 8 or p.pixel_representation != 0:
        raise EncodeError(f"baseline JPEG holds unsigned 8-bit samples (PS3.5 §8.2.1), not "
                          f"{p.bits_stored} of {p.bits_allocated} bits"
                          f"{' signed' if p.pixel_representation else ''}")
    wanted = ("MONOCHROME1", "MONOCHROME2") if p.samples_per_pixel == 1 else ("RGB", "YBR_FULL")
    if pi not in wanted:
        raise EncodeError(f"baseline JPEG encodes {' or '.join(wanted)} frames of "
                          f"{p.samples_per_pixel} sample(s), not {pi}")
    if subsampling not in _JPEG_SUBSAMPLING:
        raise EncodeError(f"JPEG subsampling is one of {sorted(_JPEG_SUBSAMPLING)}, not "
                          f"{subsampling!r}")
    raw = np.ascontiguousarray(array, np.uint8).reshape(-1)
    return mod.encode(raw, p.rows, p.columns, p.samples_per_pixel, quality=int(quality),
                      ybr=pi == "YBR_FULL", subsample=subsampling == "422")


def _jpeg_photometric(p: ImageParams, *, subsampling: str = "422", **_: Any) -> str:
    if p.samples_per_pixel == 1:
        return p.photometric_interpretation
    return _JPEG_SUBSAMPLING.get(subsampling, "YBR_FULL_422")


#: NEAR when none is given: DCMTK's dcmcjpls uses the same default deviation.
JPEGLS_DEFAULT_NEAR = 2

# PS3.5 §8.2.3: what JPEG-LS frames may hold, by Photometric Interpretation:
# (samples per pixel, bits allocated allowed, near-lossless allowed).
_JPEGLS_IMAGES = {
    "MONOCHROME1": (1, (8, 16), True), "MONOCHROME2": (1, (8, 16), True),
    "PALETTE COLOR": (1, (8, 16), False), "RGB": (3, (8, 16), True),
    "YBR_FULL": (3, (8,), True),
}


def _jpegls_encode_lossless(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    return _jpegls_frame(mod, array, p, 0, lossless_syntax=True)


def _jpegls_encode(mod: Any, array: np.ndarray, p: ImageParams, *,
                   near: int = JPEGLS_DEFAULT_NEAR) -> bytes:
    """Near-lossless: every sample within `near` of its value (NEAR, ISO/IEC 14495-1)."""
    if not 0 <= int(near) <= 255:
        raise EncodeError(f"JPEG-LS NEAR is 0 to 255, not {near}")
    return _jpegls_frame(mod, array, p, int(near), lossless_syntax=False)


def _jpegls_frame(mod: Any, array: np.ndarray, p: ImageParams, near: int, *,
                  lossless_syntax: bool) -> bytes:
    # PS3.5 §A.4.3: Bits Stored is the precision P (2-16); signed samples go as their
    # low P bits, which decoders sign-extend (as _jpegls_decode does). Colour frames
    # are pixel-interleaved here, and no JPEG-LS colour transform is used.
    pi = p.photometric_interpretation
    allowed = _JPEGLS_IMAGES.get(pi)
    if allowed is None or p.samples_per_pixel != allowed[0] or (
            not allowed[2] and not lossless_syntax):
        raise EncodeError(f"JPEG-LS{' Lossless' if lossless_syntax else ' Near-Lossless'} "
                          f"frames are not {p.samples_per_pixel}-sample {pi} (PS3.5 §8.2.3)")
    if p.bits_allocated not in allowed[1] or p.float_pixels:
        raise EncodeError(f"JPEG-LS {pi} samples are {' or '.join(map(str, allowed[1]))} "
                          f"bits allocated, not {p.bits_allocated} (PS3.5 §8.2.3)")
    if p.pixel_representation == 1 and not pi.startswith("MONOCHROME"):
        raise EncodeError(f"JPEG-LS {pi} samples are unsigned (PS3.5 §8.2.3)")
    raw = np.ascontiguousarray(array, dtype=p.dtype.newbyteorder("="))
    return mod.encode(raw.view(np.uint8).reshape(-1), p.rows, p.columns, p.samples_per_pixel,
                      p.bits_stored, p.pixel_representation == 1, near=near,
                      sample_bytes=p.dtype.itemsize)


def _native_frame_nbytes(p: ImageParams) -> int:
    """Bytes of one frame in the native encoding (PS3.5 §8.1.1, §8.2; C.7.6.3.1.2)."""
    if p.bits_allocated == 1:
        return (p.pixels_per_frame + 7) // 8
    if p.photometric_interpretation == "YBR_FULL_422" and p.samples_per_pixel == 3:
        return p.rows * p.columns * 2 * p.dtype.itemsize
    return p.pixels_per_frame * p.dtype.itemsize


def _deflate_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool) -> None:
    # PS3.5 §A.4.13: each frame is its native little-endian byte stream, deflated.
    nbytes = _native_frame_nbytes(p)
    if nbytes == out.shape[0] and (p.samples_per_pixel == 1 or p.planar_configuration == 0):
        mod.inflate(data, out, strict)
        return
    # 1-bit, planar or YBR_FULL_422 frames: inflate, then lay out as native data is.
    from dataclasses import replace

    from dicomfast.pixels.native import decode_native

    raw = np.empty(nbytes, np.uint8)
    mod.inflate(data, raw, strict)
    frame = decode_native(raw, replace(p, number_of_frames=1), little_endian=True)
    out.view(frame.dtype).reshape(frame.shape)[...] = frame


def _deflate_encode(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    if p.photometric_interpretation == "YBR_FULL_422" and p.samples_per_pixel == 3:
        raise EncodeError("Deflated Image Frame: YBR_FULL_422 frames would have to be "
                          "subsampled; encode them as YBR_FULL")
    if p.bits_allocated == 1:
        # PS3.5 §8.1.1: the first pixel in the least significant bit.
        raw = np.packbits(np.asarray(array).reshape(-1) & 1, bitorder="little")
    else:
        raw = np.ascontiguousarray(array, dtype=p.dtype.newbyteorder("<"))
        if p.samples_per_pixel > 1 and p.planar_configuration == 1:
            raw = np.ascontiguousarray(np.moveaxis(raw, -1, 0))
    return mod.deflate(raw.view(np.uint8).reshape(-1))


def _j2k_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool,
                ht: bool | None = None, reduce: int = 0, threads: int | None = None) -> None:
    # pydicom (with pylibjpeg-openjpeg) sizes samples by the codestream's precision
    # and, for monochrome images whose codestream signedness disagrees with Pixel
    # Representation, reads the precision bits as the data set's signedness
    # (two's complement <-> unsigned). The C decoder does the same, and widens to
    # Bits Allocated as that smaller container would. YBR_RCT/YBR_ICT come out as
    # RGB: the codestream's MCT is inverted while decoding.
    if p.dtype.itemsize > 2:
        from dicomfast.errors import DecodeError

        raise DecodeError(f"Bits Allocated {p.bits_allocated} is not supported",
                          codec="JPEG 2000")
    options = dict(strict=strict, reduce=reduce, threads=max(threads or 1, 1),
                   rows=p.rows, columns=p.columns,
                   samples=p.samples_per_pixel, bytes_per_sample=p.dtype.itemsize,
                   out_signed=p.pixel_representation == 1,
                   fix_sign=p.photometric_interpretation in ("MONOCHROME1", "MONOCHROME2"))
    # Frames with HT code-blocks, whatever the transfer syntax says, decode in a
    # helper process: both HT decoders can abort on malformed ones (pixels/isolated.py).
    if isolated.isolation() and (ht if ht is not None else mod.info(data)["htj2k"]):
        isolated.decode(mod.__name__, data, out, codec="HTJ2K", **options)
    else:
        mod.decode(data, out, **options)


# HTJ2K frames decode through OpenJPH, which is about twice as quick as OpenJPEG on
# them (benchmarks/bench_j2k.py), in a helper process like every frame with HT
# code-blocks: Debian's OpenJPH (0.9) ends the process with a failed assert() on some
# malformed packet headers, Debian 12's OpenJPEG (2.5.0) on some malformed code-block
# data, and no check beforehand can rule either out (pixels/isolated.py). OpenJPH
# takes only HT code-blocks with per-subband step sizes; other frames, and builds
# without OpenJPH, go to OpenJPEG. set_htj2k_decoder("openjpeg") (or
# DICOMFAST_HTJ2K_DECODER=openjpeg) sends every HTJ2K frame to OpenJPEG.
HTJ2K_DECODERS = ("openjpeg", "openjph")
_htj2k_decoder = os.environ.get("DICOMFAST_HTJ2K_DECODER", "openjph")
if _htj2k_decoder not in HTJ2K_DECODERS:
    raise ValueError(f"DICOMFAST_HTJ2K_DECODER={_htj2k_decoder!r}: one of {HTJ2K_DECODERS}")


def set_htj2k_decoder(name: str) -> str:
    """Choose the library that decodes HTJ2K frames ("openjpeg" or "openjph").

    Returns the previous choice. OpenJPH is the default and the quicker; either
    runs in a helper process unless isolation is off (pixels/isolated.py)."""
    global _htj2k_decoder
    if name not in HTJ2K_DECODERS:
        raise ValueError(f"HTJ2K decoder {name!r}: one of {HTJ2K_DECODERS}")
    previous, _htj2k_decoder = _htj2k_decoder, name
    return previous


def _htj2k_decode(mod: Any, data: Any, p: ImageParams, out: np.ndarray, strict: bool,
                  reduce: int = 0, threads: int | None = None) -> None:
    # `mod` is whichever of _j2k (OpenJPEG) and _htj2k (OpenJPH) this build has,
    # OpenJPEG first. OpenJPH takes only HT code-blocks with per-subband step sizes.
    openjph = _optional_module("dicomfast._native._htj2k")
    if openjph is not None and (_htj2k_decoder == "openjph" or
                                mod.__name__ != "dicomfast._native._j2k"):
        info = openjph.info(data)
        if info["htj2k"] and (info["reversible"] or info["quant_style"] == 2):
            _j2k_decode(openjph, data, p, out, strict, ht=True, reduce=reduce)
            return
        mod = _j2k_module()
    _j2k_decode(mod, data, p, out, strict, reduce=reduce, threads=threads)


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _j2k_module() -> Any:
    mod = _optional_module("dicomfast._native._j2k")
    if mod is None:
        raise CodecUnavailableError(
            f"JPEG 2000: this build of dicomfast has no _j2k module; {_OPENJPEG_HINT}")
    return mod


def _htj2k_module() -> Any:
    mod = _optional_module("dicomfast._native._htj2k")
    if mod is None:
        raise CodecUnavailableError(
            f"HTJ2K: encoding needs the _htj2k module, which this build of dicomfast does "
            f"not have; {_OPENJPH_HINT}")
    return mod


def _first_built(*modules: str) -> str:
    """The first of `modules` this build has (the last when it has none)."""
    from importlib.util import find_spec

    for name in modules:
        if find_spec(name) is not None:
            return name
    return modules[-1]


def _j2k_samples(array: np.ndarray, p: ImageParams) -> tuple[np.ndarray, dict[str, Any]]:
    """Little-endian bytes of a frame, and the sample description encoders take."""
    if p.dtype.itemsize > 2 or p.float_pixels:
        raise EncodeError(f"JPEG 2000 frames of {p.dtype} samples are not supported")
    raw = np.ascontiguousarray(array, dtype=p.dtype.newbyteorder("<"))
    return raw.view(np.uint8).reshape(-1), {"bytes_per_sample": p.dtype.itemsize}


def _j2k_mct(p: ImageParams, lossless: bool) -> bool:
    # PS3.5 §8.2.4: YBR_RCT names the reversible and YBR_ICT the irreversible
    # colour transform in the codestream; RGB (and anything else) has none.
    pi = p.photometric_interpretation
    if pi == ("YBR_ICT" if lossless else "YBR_RCT"):
        raise EncodeError(f"{pi} does not go with {'lossless' if lossless else 'lossy'} "
                          "JPEG 2000 encoding")
    return p.samples_per_pixel == 3 and pi in ("YBR_RCT", "YBR_ICT")


def _j2k_encode_lossless(mod: Any, array: np.ndarray, p: ImageParams, *,
                         threads: int = 1) -> bytes:
    raw, kw = _j2k_samples(array, p)
    return mod.encode(raw, p.rows, p.columns, p.samples_per_pixel, p.bits_stored,
                      p.pixel_representation == 1, lossless=True, mct=_j2k_mct(p, True),
                      threads=threads, **kw)


def _j2k_encode(mod: Any, array: np.ndarray, p: ImageParams, *, ratio: Any = None,
                quality: Any = None, lossless: bool = False, threads: int = 1) -> bytes:
    # Without ratio or quality (PSNR in dB) the 9/7 layer keeps every coded bit.
    raw, kw = _j2k_samples(array, p)
    return mod.encode(raw, p.rows, p.columns, p.samples_per_pixel, p.bits_stored,
                      p.pixel_representation == 1, lossless=lossless, ratio=ratio,
                      quality=quality, mct=_j2k_mct(p, lossless), threads=threads, **kw)


def _htj2k_encode_lossless(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    raw, kw = _j2k_samples(array, p)
    return _htj2k_module().encode(raw, p.rows, p.columns, p.samples_per_pixel, p.bits_stored,
                                  p.pixel_representation == 1, lossless=True,
                                  mct=_j2k_mct(p, True), progression="RPCL", **kw)


def _htj2k_encode_rpcl(mod: Any, array: np.ndarray, p: ImageParams) -> bytes:
    # PS3.5 §10.18: RPCL, enough decompositions for a base resolution of at most
    # 64 pixels, and TLM marker segments.
    raw, kw = _j2k_samples(array, p)
    levels = 5
    while levels < 32 and max(p.rows, p.columns) > 64 << levels:
        levels += 1
    return _htj2k_module().encode(raw, p.rows, p.columns, p.samples_per_pixel, p.bits_stored,
                                  p.pixel_representation == 1, lossless=True,
                                  mct=_j2k_mct(p, True), progression="RPCL", levels=levels,
                                  tlm=True, **kw)


def _htj2k_encode(mod: Any, array: np.ndarray, p: ImageParams, *, qstep: float | None = None,
                  lossless: bool = False) -> bytes:
    raw, kw = _j2k_samples(array, p)
    return _htj2k_module().encode(raw, p.rows, p.columns, p.samples_per_pixel, p.bits_stored,
                                  p.pixel_representation == 1, lossless=lossless,
                                  qstep=None if lossless else qstep,
                                  mct=_j2k_mct(p, lossless), progression="RPCL", **kw)


# Encoders whose frames come out in another Photometric Interpretation than they go in.
_ENCODED_PHOTOMETRIC: dict[str, Callable[..., str]] = {"jpeg_encode": _jpeg_photometric}

_ADAPTERS: dict[str, Callable[..., Any]] = {
    "rle_decode": _rle_decode,
    "rle_encode": _rle_encode,
    "rle_decode_spans": _rle_decode_spans,
    "ljpeg_decode": _ljpeg_decode,
    "ljpeg_encode": _ljpeg_encode,
    "jpeg_decode": _jpeg_decode,
    "jpegls_decode": _jpegls_decode,
    "jpeg_encode": _jpeg_encode,
    "jpegls_encode_lossless": _jpegls_encode_lossless,
    "jpegls_encode": _jpegls_encode,
    "deflate_decode": _deflate_decode,
    "deflate_encode": _deflate_encode,
    "j2k_decode": _j2k_decode,
    "j2k_encode_lossless": _j2k_encode_lossless,
    "j2k_encode": _j2k_encode,
    "htj2k_decode": _htj2k_decode,
    "htj2k_encode_lossless": _htj2k_encode_lossless,
    "htj2k_encode_rpcl": _htj2k_encode_rpcl,
    "htj2k_encode": _htj2k_encode,
}

RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_BASELINE_8BIT = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED_12BIT = "1.2.840.10008.1.2.4.51"
JPEGLS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEGLS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
DEFLATED_IMAGE_FRAME_COMPRESSION = "1.2.840.10008.1.2.8.1"

JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG2000 = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
_LIBJPEG_HINT = ("install libjpeg62-turbo-dev (Debian) or libjpeg-turbo (conda-forge) and "
                 "rebuild")
_CHARLS_HINT = "install libcharls-dev (Debian) or charls (conda-forge) and rebuild"
_OPENJPEG_HINT = "install libopenjp2-7-dev (Debian) or openjpeg (conda-forge) and rebuild"
_OPENJPH_HINT = "install libopenjph-dev (Debian) or openjph (conda-forge) and rebuild"
_HTJ2K_MODULE = _first_built("dicomfast._native._j2k", "dicomfast._native._htj2k")

_CODECS = [
    Codec("RLE Lossless", (RLE_LOSSLESS,), "dicomfast._native._rle", "rle_decode",
          "rle_encode", span_decoder="rle_decode_spans"),
    Codec("JPEG Lossless", (JPEG_LOSSLESS, JPEG_LOSSLESS_SV1), "dicomfast._native._ljpeg",
          "ljpeg_decode", "ljpeg_encode"),
    Codec("JPEG Baseline", (JPEG_BASELINE_8BIT,), "dicomfast._native._jpeg", "jpeg_decode",
          "jpeg_encode", package_hint=_LIBJPEG_HINT, options=("as_rgb",)),
    Codec("JPEG Extended", (JPEG_EXTENDED_12BIT,), "dicomfast._native._jpeg", "jpeg_decode",
          package_hint=_LIBJPEG_HINT, options=("as_rgb",)),
    Codec("JPEG-LS Lossless", (JPEGLS_LOSSLESS,), "dicomfast._native._jpegls", "jpegls_decode",
          "jpegls_encode_lossless", package_hint=_CHARLS_HINT),
    Codec("JPEG-LS Near-Lossless", (JPEGLS_NEAR_LOSSLESS,), "dicomfast._native._jpegls",
          "jpegls_decode", "jpegls_encode", package_hint=_CHARLS_HINT),
    Codec("Deflated Image Frame", (DEFLATED_IMAGE_FRAME_COMPRESSION,),
          "dicomfast._native._deflate", "deflate_decode", "deflate_encode",
          package_hint="install zlib1g-dev (Debian) or zlib (conda-forge) and rebuild"),
    Codec("JPEG 2000 Lossless", (JPEG2000_LOSSLESS,), "dicomfast._native._j2k", "j2k_decode",
          "j2k_encode_lossless", package_hint=_OPENJPEG_HINT, options=("reduce", "threads")),
    Codec("JPEG 2000", (JPEG2000,), "dicomfast._native._j2k", "j2k_decode", "j2k_encode",
          package_hint=_OPENJPEG_HINT, options=("reduce", "threads")),
    Codec("HTJ2K Lossless", (HTJ2K_LOSSLESS,), _HTJ2K_MODULE, "htj2k_decode",
          "htj2k_encode_lossless", package_hint=f"{_OPENJPH_HINT}; or {_OPENJPEG_HINT}",
          options=("reduce", "threads")),
    Codec("HTJ2K Lossless RPCL", (HTJ2K_LOSSLESS_RPCL,), _HTJ2K_MODULE, "htj2k_decode",
          "htj2k_encode_rpcl", package_hint=f"{_OPENJPH_HINT}; or {_OPENJPEG_HINT}",
          options=("reduce", "threads")),
    Codec("HTJ2K", (HTJ2K,), _HTJ2K_MODULE, "htj2k_decode", "htj2k_encode",
          package_hint=f"{_OPENJPH_HINT}; or {_OPENJPEG_HINT}", options=("reduce", "threads")),
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
                 out: np.ndarray | None = None, strict: bool = False,
                 as_rgb: bool = True, reduce: int = 0, threads: int | None = None
                 ) -> np.ndarray:
    """Decode one frame's bytes into an array of `params.frame_shape` (or `out`).

    `as_rgb=False` keeps JPEG YCbCr frames in YCbCr (the default converts them to
    RGB, as pydicom does); other codecs return samples as stored either way.
    `reduce` (JPEG 2000 and HTJ2K only) drops that many resolution levels, each
    halving rows and columns (15444-1 B.5), without decoding them: a quick
    thumbnail. It is capped at the codestream's decomposition levels; the
    result's shape says what came out. `threads` lets OpenJPEG decode one JPEG 2000
    frame's code-blocks on that many threads (other codecs decode a frame on one).
    """
    from dicomfast.pixels.native import check_out, finish

    codec = codec_for(transfer_syntax)
    stored = params  # the decoder checks the codestream against the full size
    if reduce:
        params, reduce = _reduced(codec, data, params, reduce)
    shape = (1, params.pixels_per_frame)
    arr = np.empty(shape, params.dtype) if out is None else check_out(out, shape, params.dtype)
    options: dict[str, Any] = {"as_rgb": as_rgb, "threads": threads}
    if reduce:
        options["reduce"] = reduce
    codec.decode(data, stored, arr.view(np.uint8).reshape(-1), strict, **options)
    # Codecs return pixel-interleaved samples whatever Planar Configuration says.
    interleaved = params if params.planar_configuration == 0 else _interleaved(params)
    return finish(arr, interleaved, 1, out is not None).reshape(params.frame_shape)


def _reduced(codec: Codec, data: Any, params: ImageParams, reduce: int
             ) -> tuple[ImageParams, int]:
    """The size of a frame decoded `reduce` levels down (capped at the levels the
    codestream has), and the levels to drop; the decoder still checks the full
    size against the data set's."""
    if "reduce" not in codec.options:
        raise ValueError(f"reduce= needs JPEG 2000 or HTJ2K frames, not {codec.name}")
    if reduce < 0:
        raise ValueError(f"reduce={reduce}: a number of resolution levels, 0 or more")
    info = codec._native().info(data)  # _j2k or _htj2k: the same header reader
    reduce = min(reduce, int(info["levels"]))

    def axis(origin: int, size: int) -> int:  # 15444-1 B.5, as the decoder sizes it
        step = 1 << reduce
        return -(-(origin + size) // step) - -(-origin // step)

    return replace(params, rows=axis(info["y0"], params.rows),
                   columns=axis(info["x0"], params.columns)), reduce


def encode_frame(array: np.ndarray, transfer_syntax: str, params: ImageParams) -> bytes:
    """Encode one frame (shape `params.frame_shape`) with the codec of `transfer_syntax`."""
    if tuple(array.shape) != params.frame_shape:
        raise ValueError(f"array shape {array.shape} is not the frame shape {params.frame_shape}")
    return codec_for(transfer_syntax).encode(array, params)


def _interleaved(p: ImageParams) -> ImageParams:
    return replace(p, planar_configuration=0)


def available_codecs() -> dict[str, bool]:
    """{transfer syntax UID: whether this build can decode it} for every registered codec."""
    out: dict[str, bool] = {}
    for uid, codec in sorted(_BY_UID.items()):
        try:
            codec._native()
            out[uid] = True
        except CodecUnavailableError:
            out[uid] = False
    return out
