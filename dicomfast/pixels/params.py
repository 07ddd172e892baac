"""ImageParams: the Image Pixel module facts a codec needs (PS3.3 C.7.6.3).

Codecs see ImageParams and bytes, never a Dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dicomfast.errors import MalformedDataError

# Largest decoded output (bytes) that one call allocates from what the Image Pixel
# attributes claim. Native pixel data is checked against the bytes present; for
# compressed data the attributes alone size the array, so forged Rows x Columns x
# Number of Frames must not make it allocate terabytes. Settable by assigning
# dicomfast.pixels.params.MAX_DECODED_BYTES; docs/limits.md lists it.
MAX_DECODED_BYTES = 4 << 30


def check_decoded_size(params: ImageParams, n_frames: int) -> None:
    """MalformedDataError when n_frames decoded frames exceed MAX_DECODED_BYTES."""
    total = n_frames * params.frame_nbytes
    if total > MAX_DECODED_BYTES:
        raise MalformedDataError(
            f"{n_frames} frame(s) of {params.rows} x {params.columns} x "
            f"{params.samples_per_pixel} at {params.bits_allocated} bits decode to {total} "
            f"bytes, over the {MAX_DECODED_BYTES}-byte limit (pixels.params.MAX_DECODED_BYTES)",
            tag=0x7FE00010)


def _int_attr(value: Any, keyword: str, tag: int) -> int:
    """An Image Pixel attribute as an int; a wrong VR (Rows as OB, a sequence, text,
    NaN) is MalformedDataError, not the TypeError/ValueError int() raises."""
    try:
        if isinstance(value, (bytes, bytearray, memoryview, list)):
            raise TypeError(type(value).__name__)
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise MalformedDataError(f"{keyword} {value!r:.60} is not an integer",
                                 tag=tag) from None


@dataclass(frozen=True)
class ImageParams:
    rows: int
    columns: int
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    pixel_representation: int = 0
    planar_configuration: int = 0
    photometric_interpretation: str = "MONOCHROME2"
    number_of_frames: int = 1
    float_pixels: int = 0  # 0, or 32 / 64 for Float / Double Float Pixel Data

    @classmethod
    def from_dataset(cls, ds: Any, pixel_tag: int = 0x7FE00010) -> ImageParams:
        def need(keyword: str, tag: int) -> int:
            value = ds.get(keyword)
            if value is None or value == "":
                raise MalformedDataError(f"{keyword} is missing, pixel data cannot be read",
                                         tag=tag)
            return _int_attr(value, keyword, tag)

        def optional(keyword: str, tag: int, default: int) -> int:
            value = ds.get(keyword)
            return _int_attr(value, keyword, tag) if value not in (None, "", b"") else default

        rows = need("Rows", 0x00280010)
        cols = need("Columns", 0x00280011)
        samples = optional("SamplesPerPixel", 0x00280002, 1) or 1
        float_bits = {0x7FE00008: 32, 0x7FE00009: 64}.get(pixel_tag, 0)
        bits = float_bits or need("BitsAllocated", 0x00280100)
        stored = optional("BitsStored", 0x00280101, bits) or bits
        frames_value = ds.get("NumberOfFrames")
        try:
            frames = int(frames_value) if frames_value not in (None, "") else 1
        except (TypeError, ValueError, OverflowError):
            raise MalformedDataError(f"Number of Frames {frames_value!r:.60} is not a number",
                                     tag=0x00280008) from None
        params = cls(
            rows=rows,
            columns=cols,
            samples_per_pixel=samples,
            bits_allocated=bits,
            bits_stored=stored,
            pixel_representation=optional("PixelRepresentation", 0x00280103, 0),
            planar_configuration=optional("PlanarConfiguration", 0x00280006, 0),
            photometric_interpretation=str(ds.get("PhotometricInterpretation") or "").strip(),
            number_of_frames=max(frames, 1),
            float_pixels=float_bits,
        )
        params.validate()
        return params

    def validate(self) -> None:
        # Rows and Columns are US (PS3.3 C.7.6.3); Number of Frames is IS (2^31 - 1 at most).
        if not (0 < self.rows <= 0xFFFF and 0 < self.columns <= 0xFFFF):
            raise MalformedDataError(f"image is {self.rows} x {self.columns}", tag=0x00280010)
        if self.number_of_frames > 0x7FFFFFFF:
            raise MalformedDataError(f"Number of Frames {self.number_of_frames}", tag=0x00280008)
        if self.bits_allocated not in (1, 8, 16, 32, 64):
            raise MalformedDataError(f"Bits Allocated {self.bits_allocated} is not supported",
                                     tag=0x00280100)
        if not 1 <= self.samples_per_pixel <= 4:
            raise MalformedDataError(f"Samples per Pixel {self.samples_per_pixel}",
                                     tag=0x00280002)
        if not 0 < self.bits_stored <= self.bits_allocated:
            object.__setattr__(self, "bits_stored", self.bits_allocated)

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of one decoded sample (native byte order)."""
        if self.float_pixels:
            return np.dtype(np.float32 if self.float_pixels == 32 else np.float64)
        if self.bits_allocated == 1:
            return np.dtype(np.uint8)
        kind = "i" if self.pixel_representation == 1 else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")

    @property
    def pixels_per_frame(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one decoded frame in the output array."""
        return self.pixels_per_frame * self.dtype.itemsize

    @property
    def frame_shape(self) -> tuple[int, ...]:
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

    def array_shape(self, frames: int | None = None) -> tuple[int, ...]:
        """pydicom's convention: frames first only when there is more than one."""
        n = self.number_of_frames if frames is None else frames
        return self.frame_shape if n == 1 else (n, *self.frame_shape)
