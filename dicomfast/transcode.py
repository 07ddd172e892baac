"""Transcoding: pixel data decoded and re-encoded for another transfer syntax.

Used by ``Dataset.save(..., transfer_syntax=X)`` and ``dicomfast transcode``.
The caller's data set is never changed: a shallow copy gets the new pixel data
and the attributes that describe it (PS3.3 C.7.6.3 Image Pixel, C.7.6.1.1.5
Lossy Image Compression).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dicomfast import dataset as _dataset
from dicomfast.dataset import Dataset
from dicomfast.element import DataElement
from dicomfast.errors import UnsupportedTransferSyntaxError
from dicomfast.pixels import ImageParams, encapsulated_frames, pixel_source, workers
from dicomfast.pixels.codecs import codec_for
from dicomfast.pixels.encaps import encapsulate
from dicomfast.transfer_syntax import TransferSyntax, transfer_syntax

# Lossy-only transfer syntaxes and the Lossy Image Compression Method they
# imply (PS3.3 C.7.6.1.1.5.1).
_LOSSY_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def needs_transcoding(ds: Dataset, target: TransferSyntax) -> bool:
    """Whether writing `ds` as `target` changes how its pixel data is stored."""
    if "PixelData" not in ds:
        return False
    source = getattr(ds, "transfer_syntax", None)
    encapsulated = bool(ds["PixelData"].is_undefined_length)
    if encapsulated != target.is_encapsulated:
        return True
    return encapsulated and source is not None and source.uid != target.uid


def _copy(ds: Dataset) -> Dataset:
    """A shallow copy: the same elements (shared, not changed), a new element map.
    Change the copy with `_put` only: setting an attribute would change the shared
    element, and with it the source data set."""
    new = Dataset()
    for el in ds:
        new[el.tag] = el
    for name in ("file_meta", "preamble", "filename", "is_little_endian", "is_implicit_VR"):
        new.__dict__[name] = ds.__dict__.get(name)
    new.__dict__["_encodings"] = ds._charset()
    return new


def _put(out: Dataset, tag: int, vr: str, value: Any) -> None:
    """Set an element of a `_copy` by replacing it, never the shared one in place."""
    out[tag] = DataElement(tag, vr, value)


OFFSET_TABLES = ("basic", "extended", "none")


def _check_layout(offset_table: str | None, max_fragment_size: int | None) -> None:
    if offset_table is not None and offset_table not in OFFSET_TABLES:
        raise ValueError(f"offset_table is one of {OFFSET_TABLES}, not {offset_table!r}")
    if max_fragment_size is not None and max_fragment_size < 2:
        raise ValueError("max_fragment_size is at least 2 bytes")


def _set_encapsulated(out: Dataset, frames: list[Any], syntax_uid: str | None,
                      offset_table: str | None, max_fragment_size: int | None) -> None:
    """Store encoded frames as the Pixel Data items of `out` (PS3.5 §A.4).

    "basic" fills the Basic Offset Table (when every offset fits 32 bits);
    "extended" leaves it empty and adds the Extended Offset Table and its lengths
    (PS3.3 C.7.6.3.1.8: the two never carry offsets together); "none" leaves
    frames to be found from the fragments.
    """
    table = offset_table or "basic"
    if max_fragment_size is not None:
        if syntax_uid == "1.2.840.10008.1.2.5":
            raise ValueError("RLE Lossless frames are one fragment each (PS3.5 §A.4.2); "
                             "max_fragment_size does not apply")
        if table == "extended":
            # Readers slice each frame out of the value by its offset and length
            # (PS3.5 §A.4, PS3.3 C.7.6.3.1.8): a frame there is one fragment.
            raise ValueError("the Extended Offset Table holds frames of one fragment each; "
                             "max_fragment_size does not apply")
        if table == "none" and len(frames) > 1:
            raise ValueError("frames split into fragments need an offset table to be found "
                             "again; use offset_table='basic' or 'extended'")
    value, offsets, lengths = encapsulate(frames, with_offset_table=table == "basic",
                                          max_fragment_size=max_fragment_size)
    for t in (0x7FE00001, 0x7FE00002):
        if t in out:
            del out[t]
    if table == "extended":
        out[0x7FE00001] = DataElement(0x7FE00001, "OV", offsets)
        out[0x7FE00002] = DataElement(0x7FE00002, "OV", lengths)
    out[0x7FE00010] = DataElement(0x7FE00010, "OB", value, is_undefined_length=True)


def refragment(ds: Dataset, *, offset_table: str | None = None,
               max_fragment_size: int | None = None) -> Dataset:
    """A copy of `ds` with its compressed frames laid out again (offset table,
    fragment size) without decoding them."""
    _check_layout(offset_table, max_fragment_size)
    if not pixel_source(ds)[3]:
        return ds
    found = encapsulated_frames(ds)
    out = _copy(ds)
    source = getattr(ds, "transfer_syntax", None)
    _set_encapsulated(out, [found.frame(i) for i in range(len(found))],
                      source.uid if source is not None else None, offset_table,
                      max_fragment_size)
    out.__dict__["transfer_syntax"] = getattr(ds, "transfer_syntax", None)
    return out


def transcode(ds: Dataset, target_uid: str, *, threads: int | None = None,
              allow_lossy: bool = False, offset_table: str | None = None,
              max_fragment_size: int | None = None, **encode_options: Any) -> Dataset:
    """A copy of `ds` whose pixel data is stored in transfer syntax `target_uid`.

    Decoding lossy pixel data and storing it under any syntax keeps Lossy Image
    Compression "01": a lossy image never becomes a lossless claim. Encoding to
    a lossy syntax needs `allow_lossy=True`. For compressed targets,
    `offset_table` ("basic", the default; "extended"; "none") and
    `max_fragment_size` (default: one fragment per frame) choose the layout.
    """
    _check_layout(offset_table, max_fragment_size)
    target = transfer_syntax(target_uid)
    source = getattr(ds, "transfer_syntax", None)
    frames = ds.frames(threads=threads)
    _, tag, _, _, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    was_lossy = str(ds.get("LossyImageCompression") or "").strip() == "01" or (
        source is not None and source.uid in _LOSSY_METHOD)
    out = _copy(ds)
    photometric = params.photometric_interpretation
    if photometric.startswith("YBR") and source is not None and source.is_encapsulated:
        # Our decoders hand back RGB for YBR JPEG streams, as pydicom does.
        photometric = "RGB" if source.uid.startswith("1.2.840.10008.1.2.4.5") else photometric
    if photometric in ("YBR_RCT", "YBR_ICT"):
        # These name JPEG 2000's component transforms (PS3.3 C.7.6.3.1.2, PS3.5
        # §8.2.4), which the decoders undo: the samples are RGB.
        photometric = "RGB"
    if params.samples_per_pixel > 1:
        _put(out, 0x00280006, "US", 0)                      # Planar Configuration
    for t in (0x7FE00001, 0x7FE00002):
        if t in out:
            del out[t]
    if not target.is_encapsulated:
        data = np.ascontiguousarray(frames, dtype=frames.dtype.newbyteorder(
            "<" if target.is_little_endian else ">"))
        _put(out, 0x00280004, "CS", photometric)            # Photometric Interpretation
        raw = data.tobytes()
        if len(raw) & 1:
            raw += b"\0"
        vr = "OB" if params.bits_allocated <= 8 else "OW"
        out[0x7FE00010] = DataElement(0x7FE00010, vr, raw)
    else:
        if target.uid in _LOSSY_METHOD and not allow_lossy:
            raise UnsupportedTransferSyntaxError(
                f"{target.name} is lossy: pass allow_lossy=True to compress with it")
        codec = codec_for(target.uid)
        enc_params = ImageParams(
            rows=params.rows, columns=params.columns,
            samples_per_pixel=params.samples_per_pixel, bits_allocated=params.bits_allocated,
            bits_stored=params.bits_stored, pixel_representation=params.pixel_representation,
            planar_configuration=0, photometric_interpretation=photometric,
            number_of_frames=len(frames))
        # Photometric Interpretation: the encoder says (JPEG stores colour as YCbCr).
        _put(out, 0x00280004, "CS", codec.encoded_photometric(enc_params, **encode_options))
        count = len(frames)
        encoded: list[bytes] = [b""] * count

        def one(k: int) -> None:
            encoded[k] = codec.encode(frames[k], enc_params, **encode_options)

        workers.run(one, count, threads)
        _set_encapsulated(out, encoded, target.uid, offset_table, max_fragment_size)
        if target.uid in _LOSSY_METHOD:
            was_lossy = True
            size = sum(len(e) for e in encoded) or 1
            ratio = frames.nbytes / size
            _put(out, 0x00282112, "DS", [f"{ratio:.2f}"[:16]])  # Lossy ... Ratio
            _put(out, 0x00282114, "CS", [_LOSSY_METHOD[target.uid]])  # ... Method
    if was_lossy:
        _put(out, 0x00282110, "CS", "01")                   # Lossy Image Compression
    meta = ds.file_meta
    if meta is not None:
        new_meta = Dataset()
        for el in meta:
            new_meta[el.tag] = DataElement(el.tag, el.VR, el.value)
        new_meta.add_new(0x00020010, "UI", target.uid)
        out.__dict__["file_meta"] = new_meta
    out.__dict__["transfer_syntax"] = target
    return out


_dataset.extensions["transcode"] = transcode
_dataset.extensions["refragment"] = refragment
