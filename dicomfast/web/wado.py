"""WADO-RS payloads (PS3.18 §10.4): instances, metadata, bulk data, frames, rendered images.

Everything here is synchronous work on one stored file (reading, transcoding,
rendering); the server runs it on worker threads. Media types and the transfer
syntaxes they carry follow PS3.18 Table 8.7.3-5 (frames) and §8.7.4 (rendered).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dicomfast.dataset import Dataset
from dicomfast.errors import DicomfastError
from dicomfast.json_model import dataset_to_json_dict
from dicomfast.part10 import read
from dicomfast.pixels import ImageParams, pixel_source
from dicomfast.pixels.codecs import codec_for
from dicomfast.pixels.encaps import split_frames
from dicomfast.render import (
    encode_jpeg,
    encode_png,
    jpeg_available,
    render_frame,
    scale_to_fit,
)
from dicomfast.transfer_syntax import transfer_syntax
from dicomfast.web.http import HTTPError, MediaRange

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
_NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
           "1.2.840.10008.1.2.1.99")

# PS3.18 Table 8.7.3-5: media type -> (default transfer syntax, all it may carry).
FRAME_MEDIA: dict[str, tuple[str, tuple[str, ...]]] = {
    "application/octet-stream": (EXPLICIT_VR_LE, _NATIVE),
    "image/jpeg": ("1.2.840.10008.1.2.4.70", ("1.2.840.10008.1.2.4.50",
                                              "1.2.840.10008.1.2.4.51",
                                              "1.2.840.10008.1.2.4.57",
                                              "1.2.840.10008.1.2.4.70")),
    "image/jls": ("1.2.840.10008.1.2.4.80", ("1.2.840.10008.1.2.4.80",
                                             "1.2.840.10008.1.2.4.81")),
    "image/jp2": ("1.2.840.10008.1.2.4.90", ("1.2.840.10008.1.2.4.90",
                                             "1.2.840.10008.1.2.4.91")),
    "image/jpx": ("1.2.840.10008.1.2.4.92", ("1.2.840.10008.1.2.4.92",
                                             "1.2.840.10008.1.2.4.93")),
    "image/jphc": ("1.2.840.10008.1.2.4.201", ("1.2.840.10008.1.2.4.201",
                                               "1.2.840.10008.1.2.4.202",
                                               "1.2.840.10008.1.2.4.203")),
    "image/dicom-rle": ("1.2.840.10008.1.2.5", ("1.2.840.10008.1.2.5",)),
}
_LOSSY = frozenset(("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                    "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",
                    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.203"))
RENDERED_MEDIA = ("image/png", "image/jpeg")


def media_for(ts_uid: str) -> str:
    """The frame media type of a stored transfer syntax."""
    for media, (_, uids) in FRAME_MEDIA.items():
        if ts_uid in uids:
            return media
    return "application/octet-stream" if ts_uid in _NATIVE else "application/octet-stream"


def _stored_syntax(ds: Dataset) -> str:
    ts = getattr(ds, "transfer_syntax", None)
    return ts.uid if ts is not None else EXPLICIT_VR_LE


# -- instances -----------------------------------------------------------------------------

def check_target_syntax(uid: str) -> None:
    """Refuse (406) a transfer syntax we cannot write."""
    try:
        ts = transfer_syntax(uid)
    except DicomfastError:
        raise HTTPError(406, f"unknown transfer syntax {uid!r}") from None
    if uid in _LOSSY:
        raise HTTPError(406, f"{ts.name} is lossy; only lossless transcoding is offered")
    if ts.is_encapsulated:
        try:
            codec = codec_for(uid)
        except DicomfastError:
            raise HTTPError(406, f"no encoder for {ts.name}") from None
        if codec.encoder is None:
            raise HTTPError(406, f"no encoder for {ts.name}")


def transcoded_instance(path: str, target: str) -> bytes:
    """The Part 10 bytes of the file at `path` in transfer syntax `target`."""
    ds = read(path)
    try:
        return ds.to_bytes(transfer_syntax=target)
    except DicomfastError as exc:
        raise HTTPError(406, f"cannot transcode to {target}: {exc}") from None


def read_chunks(path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


# -- metadata and bulk data ------------------------------------------------------------------

def _element_paths(ds: Dataset, prefix: str, out: dict[int, str]) -> None:
    for el in ds:
        path = f"{prefix}{el.tag:08X}"
        out[id(el)] = path
        if el.VR == "SQ" and el.value:
            for i, item in enumerate(el.value):
                _element_paths(item, f"{path}/{i}/", out)


def metadata(ds: Dataset, instance_url: str, threshold: int = 1024) -> dict[str, Any]:
    """DICOM JSON of one instance (PS3.18 §10.4.1.1.2): binary values longer than
    `threshold` base64 characters, and Pixel Data always, become BulkDataURIs."""
    paths: dict[int, str] = {}
    _element_paths(ds, "", paths)

    def uri(el: Any) -> str:
        return f"{instance_url}/bulk/{paths.get(id(el), f'{el.tag:08X}')}"

    out = dataset_to_json_dict(ds, bulk_data_threshold=threshold, bulk_data_uri_handler=uri)
    for key in ("7FE00010", "7FE00008", "7FE00009"):
        if key in out and "InlineBinary" in out[key]:
            out[key] = {"vr": out[key]["vr"], "BulkDataURI": f"{instance_url}/bulk/{key}"}
    return out


def bulk_value(ds: Dataset, path: str) -> tuple[Any, str]:
    """(value, VR) of the element a bulk data path names (``TAG[/ITEM/TAG]...``)."""
    parts = path.strip("/").split("/")
    if len(parts) % 2 != 1 or len(parts) > 15:
        raise HTTPError(404, f"no bulk data at {path!r}")
    current: Any = ds
    el = None
    for i in range(0, len(parts), 2):
        key = parts[i]
        if len(key) != 8 or not all(c in "0123456789ABCDEFabcdef" for c in key):
            raise HTTPError(404, f"{key!r} is not a tag")
        tag = int(key, 16)
        if tag not in current:
            raise HTTPError(404, f"no element {key} at {path!r}")
        el = current[tag]
        if i + 1 < len(parts):
            index = parts[i + 1]
            if el.VR != "SQ" or not index.isdigit() or int(index) >= len(el.value or []):
                raise HTTPError(404, f"no item {index} at {path!r}")
            current = el.value[int(index)]
    assert el is not None
    return el, el.VR


# -- frames ------------------------------------------------------------------------------------

def frame_numbers(text: str, count: int) -> list[int]:
    """1-based frame numbers of a ``frames/{list}`` path (PS3.18 §10.4.1.1.3)."""
    numbers = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or len(item) > 9:
            raise HTTPError(400, f"frame number {item!r} is not a positive integer")
        n = int(item)
        if n < 1:
            raise HTTPError(400, "frame numbers start at 1")
        if n > count:
            raise HTTPError(404, f"frame {n} of {count}")
        numbers.append(n)
    if not numbers or len(numbers) > 10000:
        raise HTTPError(400, "no frame numbers")
    return numbers


def choose_frame_media(accept: list[MediaRange], stored_ts: str) -> tuple[str, str | None]:
    """(media type, transfer syntax or None for "as stored") the client accepts.

    The parts of a frames response are single media types inside multipart/related
    (PS3.18 §8.7.3.3). ``multipart/related; type=X`` and bare ``X`` both ask for
    X; with no type, or ``*/*``, or ``transfer-syntax=*``, frames go as stored.
    """
    for item in accept:
        media, params = item.media, item.params
        if media == "multipart/related":
            media = params.get("type", "*/*").lower()
        ts = params.get("transfer-syntax")
        if media in ("*/*", "image/*") or ts == "*":
            stored_media = media_for(stored_ts)
            if media in ("*/*", stored_media) or media == "image/*" and \
                    stored_media.startswith("image/"):
                return stored_media, None
            if media not in FRAME_MEDIA:
                continue
        if media not in FRAME_MEDIA:
            continue
        default, allowed = FRAME_MEDIA[media]
        if ts is None or ts == "*":
            if stored_ts in allowed:
                return media, None
            ts = default
        if ts not in allowed:
            continue
        if ts == stored_ts or (ts == EXPLICIT_VR_LE and stored_ts in _NATIVE):
            return media, None
        if ts in _NATIVE:
            return media, EXPLICIT_VR_LE
        try:
            check_target_syntax(ts)
        except HTTPError:
            continue
        return media, ts
    raise HTTPError(406, "none of the Accept media types can carry these frames "
                         f"(stored as {stored_ts}); offered: " + ", ".join(FRAME_MEDIA))


def _decoded_bytes(arr: np.ndarray) -> bytes:
    if arr.dtype.itemsize > 1 and arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr).tobytes()


def frames(ds: Dataset, numbers: list[int], target: str | None) -> list[tuple[str, bytes]]:
    """(transfer syntax, bytes) of each frame: as stored (`target` None), decoded to
    native little-endian samples (an uncompressed `target`), or re-encoded."""
    stored = _stored_syntax(ds)
    buf, tag, little, encapsulated, _ = pixel_source(ds)
    params = ImageParams.from_dataset(ds, tag)
    out: list[tuple[str, bytes]] = []
    if target is None and encapsulated:
        found = split_frames(buf, params.number_of_frames, stored, little_endian=little,
                             eot=ds.get("ExtendedOffsetTable"),
                             eot_lengths=ds.get("ExtendedOffsetTableLengths"))
        for n in numbers:
            if n > len(found):
                raise HTTPError(404, f"frame {n} of {len(found)}")
            out.append((stored, bytes(found.frame(n - 1))))
        return out
    if target is None or target in _NATIVE:
        return [(EXPLICIT_VR_LE, _decoded_bytes(ds.frame(n - 1))) for n in numbers]
    codec = codec_for(target)
    photometric = params.photometric_interpretation
    if photometric.startswith("YBR") and stored.startswith("1.2.840.10008.1.2.4.5"):
        photometric = "RGB"  # our JPEG decoders give RGB, as pydicom's do
    enc = replace(params, number_of_frames=1, planar_configuration=0,
                  photometric_interpretation=photometric)
    for n in numbers:
        arr = ds.frame(n - 1)
        out.append((target, codec.encode(np.ascontiguousarray(arr), enc)))
    return out


# -- rendered ------------------------------------------------------------------------------------

def choose_rendered_media(accept: list[MediaRange]) -> str:
    for item in accept:
        if item.media in ("*/*", "image/*"):
            return "image/png"
        if item.media in RENDERED_MEDIA:
            if item.media == "image/jpeg" and not jpeg_available():
                continue
            return item.media
    raise HTTPError(406, "rendered images are image/png or image/jpeg"
                    + ("" if jpeg_available() else " (this build has no JPEG encoder)"))


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``window=center,width[,function]`` (PS3.18 §8.3.5.1.3)."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        raise HTTPError(400, f"window={text!r} is not center,width[,function]") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise HTTPError(400, f"window={text!r}: width must be at least 1")
    if len(parts) > 3 or len(parts) == 3 and parts[2].lower() not in (
            "linear", "linear-exact", "sigmoid"):
        raise HTTPError(400, f"window={text!r}: unknown VOI LUT function")
    return center, width


#: The largest viewport side served: a bigger one only costs memory.
MAX_VIEWPORT = 8192


@dataclass(frozen=True)
class Viewport:
    """PS3.18 §8.3.5.1.3 ``viewport=vw,vh[,sx,sy,sw,sh]``: the image (or its region
    from (sx, sy), sw x sh pixels) scaled to fit vw x vh, its aspect kept."""
    width: int
    height: int
    region: tuple[int, int, int, int] | None = None


def parse_viewport(text: str | None) -> Viewport | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise HTTPError(400, f"viewport={text!r} is not vw,vh[,sx,sy,sw,sh]") from None
    if len(values) not in (2, 6) or not all(1 <= v <= MAX_VIEWPORT for v in values[:2]):
        raise HTTPError(400, f"viewport={text!r}: vw,vh of 1-{MAX_VIEWPORT}, then optionally "
                             "sx,sy,sw,sh")
    if len(values) == 2:
        return Viewport(values[0], values[1])
    sx, sy, sw, sh = values[2:]
    if sx < 0 or sy < 0 or sw <= 0 or sh <= 0:
        # Negative sw / sh ask for a flipped image (PS3.18 §8.3.5.1.3): refused, not
        # answered with another image than the one asked for.
        raise HTTPError(400, f"viewport={text!r}: sx,sy,sw,sh must be positive (flipping "
                             "is not supported)")
    return Viewport(values[0], values[1], (sx, sy, sw, sh))


def rendered(ds: Dataset, frame: int, media: str, window: tuple[float, float] | None,
             quality: int, viewport: Viewport | None = None, *,
             upscale: bool = True) -> bytes:
    """Frame `frame` (0-based) rendered for display (PS3.18 §10.4.1.1.4), fitted to
    `viewport` when given (scaled up too unless `upscale` is false)."""
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise HTTPError(406, "the instance has no pixel data to render")
    image = render_frame(ds, frame, window=window)
    if viewport is not None:
        if viewport.region is not None:
            sx, sy, sw, sh = viewport.region
            image = image[sy:sy + sh, sx:sx + sw]
            if image.size == 0:
                raise HTTPError(400, "the viewport's region lies outside the image")
        image = scale_to_fit(image, viewport.width, viewport.height, upscale=upscale)
    if media == "image/png":
        return encode_png(image)
    return encode_jpeg(image, quality)


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1
