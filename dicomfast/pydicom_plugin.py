"""dicomfast as a pixel data decoder for pydicom 3 (``pydicom.pixels.decoders``).

    import dicomfast.pydicom_plugin
    dicomfast.pydicom_plugin.register()       # once, e.g. at start-up

    ds = pydicom.dcmread(path)
    ds.pixel_array                            # RLE, JPEG, JPEG-LS, ... decoded by dicomfast
    ds.pixel_array_options(decoding_plugin="dicomfast")   # or only by dicomfast

:func:`register` adds a plugin labelled ``"dicomfast"`` to pydicom's decoder of
every transfer syntax that both pydicom and this build of dicomfast decode, and
by default puts it first, so pydicom tries it before its own plugins.

The plugin follows pydicom's contract for decoders: it returns one frame's bytes
pixel-interleaved, in Bits Allocated containers, and leaves colour to pydicom.
JPEG frames keep the colour space of their stream (YCbCr is not converted here),
so pydicom's ``as_rgb`` / ``force_rgb`` / ``raw`` options work as with any plugin;
where the stream's colour space (JFIF, Adobe APP14, component ids, PS3.5 §8.2.1)
differs from the Photometric Interpretation, the plugin says so to pydicom.

pydicom is not a dependency of dicomfast: it is imported only by :func:`register`
and :func:`unregister`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dicomfast.pixels.codecs import available_codecs, decode_frame
from dicomfast.pixels.params import ImageParams

__all__ = ["LABEL", "is_available", "register", "unregister"]

#: The plugin's name in pydicom (``decoding_plugin="dicomfast"``).
LABEL = "dicomfast"

_JPEG = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
_J2K = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")

#: What pydicom reports as missing for a syntax this build cannot decode (pydicom
#: asks for it when :func:`is_available` is false).
DECODER_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    uid: ("dicomfast built with the codec library for this transfer syntax",)
    for uid in available_codecs()
}


def is_available(uid: str) -> bool:
    """Whether this build of dicomfast decodes transfer syntax `uid` (pydicom asks)."""
    return available_codecs().get(str(uid), False)


def _decode_frame(src: bytes, runner: Any) -> bytearray:
    """Decode one frame for pydicom's DecodeRunner; the frame's bytes as pydicom wants them.

    dicomfast's codecs give pixel-interleaved samples in Bits Allocated containers,
    sign-extended where Pixel Representation is 1; the runner is told so.
    """
    uid = str(runner.transfer_syntax)
    samples = runner.samples_per_pixel
    photometric = str(runner.photometric_interpretation)
    if runner.bits_allocated == 1:
        raise NotImplementedError("dicomfast does not decode encapsulated 1-bit pixel data")
    if runner.get_option("rle_segment_order", ">") != ">":
        # pydicom's option for encoders that wrote little-endian segments (not PS3.5 §G).
        raise NotImplementedError("dicomfast decodes RLE segments in the standard order only")
    params = ImageParams(
        rows=runner.rows,
        columns=runner.columns,
        samples_per_pixel=samples,
        bits_allocated=runner.bits_allocated,
        bits_stored=runner.bits_stored,
        pixel_representation=runner.pixel_representation,
        planar_configuration=runner.planar_configuration if samples > 1 else 0,
        photometric_interpretation=photometric,
        number_of_frames=1,
    )
    # Decode straight into the buffer pydicom gets: no copy of the frame.
    frame = bytearray(params.frame_nbytes)
    out = np.frombuffer(frame, dtype=params.dtype)
    decode_frame(src, params, uid, out=out, as_rgb=False)

    if samples > 1:
        runner.set_option("planar_configuration", 0)
        if uid in _JPEG:
            _tell_jpeg_colour(src, photometric, runner)
        elif uid in _J2K and photometric in ("YBR_ICT", "YBR_RCT"):
            # The codestream's multiple component transform is undone while decoding.
            runner.set_option("photometric_interpretation", "RGB")
    return frame


def _tell_jpeg_colour(src: bytes, photometric: str, runner: Any) -> None:
    """Make the runner's Photometric Interpretation name the colour space the frame
    was decoded in, so that pydicom converts YCbCr to RGB exactly when it should."""
    from dicomfast._native import _jpeg

    space = _jpeg.info(src, photometric)["colour_space"]
    if space == "RGB" and photometric != "RGB":
        runner.set_option("photometric_interpretation", "RGB")
    elif space == "YBR_FULL" and not photometric.startswith("YBR"):
        runner.set_option("photometric_interpretation", "YBR_FULL")


def _decoders() -> dict[str, Any]:
    """{transfer syntax UID: pydicom Decoder} for the syntaxes this build decodes."""
    from pydicom.pixels import get_decoder

    found = {}
    for uid, ok in available_codecs().items():
        if not ok:
            continue
        try:
            found[uid] = get_decoder(uid)
        except NotImplementedError:
            continue  # pydicom has no decoder for it (e.g. Deflated Image Frame)
    return found


def register(first: bool = True) -> list[str]:
    """Add dicomfast to pydicom's decoders; returns the transfer syntax UIDs.

    With `first` (the default) pydicom tries dicomfast before its own plugins when
    no ``decoding_plugin`` is named. Calling it again changes nothing.
    """
    uids = []
    for uid, decoder in _decoders().items():
        if LABEL not in decoder.available_plugins:
            decoder.add_plugin(LABEL, (__name__, "_decode_frame"))
        if first:
            _move_first(decoder)
        uids.append(uid)
    return uids


def _move_first(decoder: Any) -> None:
    # pydicom tries the plugins in the order of Decoder._available, which has no
    # public reordering; an older or newer layout just keeps the order it has.
    plugins = getattr(decoder, "_available", None)
    if isinstance(plugins, dict) and LABEL in plugins:
        ours = plugins.pop(LABEL)
        rest = dict(plugins)
        plugins.clear()
        plugins[LABEL] = ours
        plugins.update(rest)


def unregister() -> None:
    """Remove dicomfast from pydicom's decoders."""
    for decoder in _decoders().values():
        if LABEL in decoder.available_plugins:
            decoder.remove_plugin(LABEL)
