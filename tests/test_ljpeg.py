"""Lossless JPEG (ITU-T T.81 process 14): the C codec through dicomfast._native._ljpeg.

Oracles: the ISO/IEC 10918-2 process 14 conformance streams and their reference
image (D16.SRC); pylibjpeg-libjpeg, python-gdcm and libjpeg-turbo (via imagecodecs) on
every JPEG Lossless file of the corpus; the uncompressed twins; DCMTK's dcmcjpeg and
dcmdjpeg both ways; and, for what no corpus stream has (predictors 2-7 with restart
intervals, point transforms, sampling factors, one scan per component, fill bytes),
the slow reference encoder below, whose streams libjpeg-turbo decodes too.
"""

from __future__ import annotations

import heapq
import shutil
import struct
import subprocess
import threading
import time
import warnings
from importlib.util import find_spec

import numpy as np
import pydicom
import pytest
from corpus import LJDATA, all_files, file_id, find
from pydicom.encaps import encapsulate

import dicomfast
from dicomfast._native import _ljpeg
from dicomfast.errors import DecodeError

JPEG_LOSSLESS = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
P14 = LJDATA / "jpg" / "10918" / "p14"
DCMCJPEG = shutil.which("dcmcjpeg")
DCMDJPEG = shutil.which("dcmdjpeg")
needs_dcmtk = pytest.mark.skipif(DCMCJPEG is None or DCMDJPEG is None,
                                 reason="DCMTK (dcmcjpeg/dcmdjpeg) is not installed")


# -- helpers ------------------------------------------------------------------------------

def _pydicom(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kw)


def _raw_pixels(path):
    """pydicom's stored values, frames first: (frames, rows, columns, samples)."""
    ds = _pydicom(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = pydicom.pixels.pixel_array(ds, raw=True)
    n, spp = int(ds.get("NumberOfFrames") or 1), int(ds.SamplesPerPixel)
    return arr.reshape(n, int(ds.Rows), int(ds.Columns), spp)


def _lossless_files():
    out = []
    for path in all_files():
        try:
            ds = _pydicom(path, stop_before_pixels=True)
        except Exception:
            continue
        if str(ds.file_meta.get("TransferSyntaxUID", "")) in JPEG_LOSSLESS and "Rows" in ds:
            out.append(path)
    return out


LOSSLESS_FILES = _lossless_files()


def _frames(path):
    """The frames of an encapsulated file, found through dicomfast's element index.

    Fragments are grouped by the Basic Offset Table when it has entries (PS3.5
    A.4: offsets from the first fragment's item tag), else one fragment per frame,
    or all of them for a single frame.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dicomfast.DicomfastWarning)
        ds = dicomfast.read(path)
    n = int(ds.get("NumberOfFrames") or 1)
    index, pos, _tag = ds._pixel_value_view()
    spans = index.fragment_spans(pos)
    src = memoryview(index.source).cast("B")
    (bot_at, bot_len), frags = spans[0], spans[1:]
    if n == 1:
        return [b"".join(bytes(src[o:o + ln]) for o, ln in frags)]
    if bot_len:
        offsets = list(struct.unpack(f"<{bot_len // 4}I", src[bot_at:bot_at + bot_len]))
        first_item = frags[0][0] - 8
        bounds = offsets[1:] + [1 << 62]
        return [b"".join(bytes(src[o:o + ln]) for o, ln in frags
                         if start <= o - 8 - first_item < stop)
                for start, stop in zip(offsets, bounds, strict=True)]
    assert len(frags) == n
    return [bytes(src[o:o + ln]) for o, ln in frags]


def _decode(frame, **kw):
    """Our decode as an array: (rows, columns, components), or a list of planes."""
    info = _ljpeg.info(frame)
    out = np.empty(info["nbytes"], np.uint8)
    assert _ljpeg.decode(frame, out, **kw) == out.size
    samples = out.view(np.uint16 if info["bytes_per_sample"] == 2 else np.uint8)
    if info["planar"] or kw.get("planar"):
        planes, at = [], 0
        for r, c in info["shapes"]:
            planes.append(samples[at:at + r * c].reshape(r, c))
            at += r * c
        return planes
    return samples.reshape(info["rows"], info["columns"], info["components"])


def _libjpeg(frame):
    libjpeg = pytest.importorskip("libjpeg")
    arr = libjpeg.decode(bytes(frame))
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _gdcm_bytes(path):
    gdcm = pytest.importorskip("gdcm")
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    assert reader.Read()
    return reader.GetImage().GetBuffer().encode("utf-8", "surrogateescape")


def _masked(arr, precision):
    """Stored values as the P-bit unsigned samples a lossless JPEG frame carries."""
    unsigned = arr.view(np.dtype(arr.dtype.str.replace("i", "u")))
    return unsigned & np.array((1 << precision) - 1, unsigned.dtype)


# -- a slow reference encoder (T.81 Annex H) ------------------------------------------------

def _category(d):
    return abs(int(d)).bit_length()


def _predict(psv, a, b, c):
    return {1: a, 2: b, 3: c, 4: a + b - c, 5: a + ((b - c) >> 1), 6: b + ((a - c) >> 1),
            7: (a + b) >> 1}[psv]


def _huffman(freq):
    """Code lengths per K.2 (a reserved symbol keeps codes from being all ones; K.3
    limits them to 16 bits), then the canonical codes of C.2."""
    syms = sorted(freq) + [-1]
    heap = [(freq.get(s, 0.5), i, [s]) for i, s in enumerate(syms)]
    heapq.heapify(heap)
    depth = dict.fromkeys(syms, 0)
    while len(heap) > 1:
        f1, i1, a = heapq.heappop(heap)
        f2, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (f1 + f2, i1, a + b))
    counts = [0] * 40
    for s in syms:
        counts[depth[s]] += 1
    for i in range(39, 16, -1):
        while counts[i]:
            j = i - 2
            while not counts[j]:
                j -= 1
            counts[i] -= 2
            counts[i - 1] += 1
            counts[j + 1] += 2
            counts[j] -= 1
    order = sorted(syms, key=lambda s: (depth[s], s == -1, s))[:-1]
    bits, vals, codes, code, k = [], [], {}, 0, 0
    for length in range(1, 17):
        n = counts[length] - (1 if length == max(i for i in range(17) if counts[i]) else 0)
        bits.append(n)
        for _ in range(n):
            codes[order[k]] = (code, length)
            vals.append(order[k])
            code, k = code + 1, k + 1
        code <<= 1
    return bits, vals, codes


class _Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        self.acc, self.n = (self.acc << n) | (value & ((1 << n) - 1)), self.n + n
        while self.n >= 8:
            self.n -= 8
            byte = (self.acc >> self.n) & 0xFF
            self.out += bytes([byte, 0]) if byte == 0xFF else bytes([byte])

    def flush(self):
        if self.n:
            self.put(0xFF, 8 - self.n)  # F.1.2.3: pad with 1 bits
        out, self.out, self.acc = bytes(self.out), bytearray(), 0
        return out


def _segment(marker, payload):
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def ref_encode(planes, precision, *, psv=1, pt=0, ri=0, interleaved=True, hv=None,
               fill=False, shared_table=False):
    """A lossless JPEG frame of `planes` (each component at its A.1.1 size).

    Restart intervals count MCUs; a restart resets prediction as H.1.2.1 says (the
    first sample from 2^(P-Pt-1), the rest of that row from Ra). Samples that only
    complete an MCU past a component's edge (A.2.4) are coded as a difference of 0.
    """
    nf = len(planes)
    hv = hv or [(1, 1)] * nf
    hmax, vmax = max(h for h, _ in hv), max(v for _, v in hv)
    rows = max(p.shape[0] for p, (_, v) in zip(planes, hv, strict=True) if v == vmax)
    cols = max(p.shape[1] for p, (h, _) in zip(planes, hv, strict=True) if h == hmax)
    out = bytearray(b"\xff\xd8") + _segment(0xFE, b"dicomfast reference encoder")
    sof = bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([nf])
    for k, (h, v) in enumerate(hv):
        sof += bytes([k + 1, h << 4 | v, 0])
    out += _segment(0xC3, sof)
    if ri:
        out += _segment(0xDD, ri.to_bytes(2, "big"))
    vals = [np.asarray(p, np.int64) >> pt for p in planes]
    initial = 1 << (precision - pt - 1)
    for comps in ([list(range(nf))] if interleaved else [[k] for k in range(nf)]):
        if len(comps) == 1:
            r_, c_ = vals[comps[0]].shape
            mcus = [[(comps[0], r, c)] for r in range(r_) for c in range(c_)]
        else:
            mcus = [[(k, my * hv[k][1] + v, mx * hv[k][0] + h)
                     for k in comps for v in range(hv[k][1]) for h in range(hv[k][0])]
                    for my in range(-(-rows // vmax)) for mx in range(-(-cols // hmax))]
        reset, first_row, diffs = dict.fromkeys(comps, True), dict.fromkeys(comps, 0), []
        for m, mcu in enumerate(mcus):
            if ri and m and m % ri == 0:
                for k, r, _ in reversed(mcu):
                    reset[k], first_row[k] = True, r  # the component's first row in the MCU
            row = []
            for k, r, c in mcu:
                v = vals[k]
                if r >= v.shape[0] or c >= v.shape[1]:
                    row.append((k, 0))
                    continue
                if reset[k]:
                    p, reset[k] = initial, False
                elif c == 0:
                    p = v[r - 1, 0] if r else initial
                elif r == first_row[k] or psv == 1:
                    p = v[r, c - 1]
                else:
                    p = _predict(psv, v[r, c - 1], v[r - 1, c], v[r - 1, c - 1])
                d = (int(v[r, c]) - int(p)) & 0xFFFF
                row.append((k, d - 65536 if d > 32768 else d))
            diffs.append(row)
        table_of = {k: (comps[0] if shared_table else k) for k in comps}
        tables, dht = {}, b""
        for t in sorted(set(table_of.values())):
            freq = {}
            for row in diffs:
                for k, d in row:
                    if table_of[k] == t:
                        freq[_category(d)] = freq.get(_category(d), 0) + 1
            tables[t] = _huffman(freq)
            dht += bytes([len(tables) - 1]) + bytes(tables[t][0]) + bytes(tables[t][1])
        slot = {t: i for i, t in enumerate(tables)}
        out += _segment(0xC4, dht)
        sos = bytes([len(comps)])
        for k in comps:
            sos += bytes([k + 1, slot[table_of[k]] << 4])
        out += _segment(0xDA, sos + bytes([psv, 0, pt]))
        bits = _Bits()
        for m, row in enumerate(diffs):
            if ri and m and m % ri == 0:
                out += bits.flush() + (b"\xff\xff" if fill else b"")
                out += bytes([0xFF, 0xD0 + (m // ri - 1) % 8])
            for k, d in row:
                code, length = tables[table_of[k]][2][_category(d)]
                bits.put(code, length)
                if 0 < _category(d) < 16:
                    bits.put(d if d > 0 else d - 1, _category(d))
        out += bits.flush() + (b"\xff\xff\xff" if fill else b"")
    return bytes(out + b"\xff\xd9")


def _image(rng, shape, precision, kind):
    if kind == "noise":
        return rng.integers(0, 1 << precision, shape)
    if kind == "flat":
        return np.full(shape, (1 << precision) - 1)
    y, x = np.mgrid[:shape[0], :shape[1]]
    ramp = (x * 3 + y * 7).reshape(shape[:2] + (1,) * (len(shape) - 2))
    return (ramp * (1 + np.arange(shape[2] if len(shape) > 2 else 1)).reshape(
        (1, 1) + shape[2:]) + rng.integers(0, 4, shape)) % (1 << precision)


# -- ISO/IEC 10918-2 conformance ----------------------------------------------------------

@pytest.mark.skipif(not P14.is_dir(), reason="../shared corpus (jpg/10918/p14) is absent")
@pytest.mark.parametrize("name, precision", [("O1.JPG", 8), ("O2.JPG", 16)])
def test_iso_10918_2_process_14(name, precision):
    # O1: 8 bits, four components interleaved with sampling factors 1x1, 1x2, 3x1 and
    # 1x4 and a restart interval; O2: 16 bits, one scan per component, no restarts
    # (O1.TXT, O2.TXT). D16.SRC is the reference for component D: 257 x 85 big-endian
    # 16-bit samples, the 8-bit values shifted left by 8.
    frame = (P14 / name).read_bytes()
    info = _ljpeg.info(frame)
    assert (info["rows"], info["columns"], info["components"]) == (257, 255, 4)
    assert info["precision"] == precision and info["planar"]
    assert info["sampling"] == [(1, 1), (1, 2), (3, 1), (1, 4)]
    assert info["shapes"] == [(65, 85), (129, 85), (65, 255), (257, 85)]
    planes = _decode(frame, strict=True)
    reference = np.frombuffer((P14 / "D16.SRC").read_bytes(), ">u2").reshape(257, 85)
    np.testing.assert_array_equal(planes[3], reference if precision == 16 else reference >> 8)
    # The other components: libjpeg-turbo upsamples by replication, so they must
    # match it sample for sample.
    imagecodecs = pytest.importorskip("imagecodecs")
    full = imagecodecs.jpeg8_decode(frame)
    for k, (h, v) in enumerate(info["sampling"]):
        up = np.repeat(np.repeat(planes[k], 4 // v, 0), 3 // h, 1)[:257, :255]
        np.testing.assert_array_equal(up, full[..., k])


# -- the corpus ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", LOSSLESS_FILES, ids=file_id)
def test_corpus_matches_pylibjpeg_libjpeg(path):
    for frame in _frames(path):
        np.testing.assert_array_equal(_decode(frame), _libjpeg(frame))
        assert _ljpeg.decode(frame, np.empty(_ljpeg.info(frame)["nbytes"], np.uint8),
                             strict=True)


@pytest.mark.parametrize("path", LOSSLESS_FILES, ids=file_id)
def test_corpus_matches_gdcm(path):
    ours = b"".join(_decode(f).tobytes() for f in _frames(path))
    assert ours == _gdcm_bytes(path)


def test_corpus_twin():
    jpeg, twin = find("SC_rgb_jpeg_gdcm.dcm"), find("SC_rgb.dcm")
    if jpeg is None or twin is None:
        pytest.skip("SC_rgb_jpeg_gdcm.dcm / SC_rgb.dcm are not in the corpus")
    np.testing.assert_array_equal(_decode(_frames(jpeg)[0]), _raw_pixels(twin)[0])


def test_predictor_6_overflow_file():
    # JPEGLossless_1s_1f_i_16_16_bad.dcm, a CT slice: 16 bits, predictor 6, made by an
    # encoder that computed Rb + ((Ra - Rc) >> 1) on int16, overflowing. Decoded as
    # T.81 says (H.1.2.1: full precision) it is noise, as pylibjpeg-libjpeg, GDCM
    # and pydicom give it; with int16 arithmetic it is the CT (padding -2000,
    # Pixel Padding Value), as DCMTK's dcmdjpeg +w6 gives it.
    path = find("JPEGLossless_1s_1f_i_16_16_bad.dcm")
    if path is None:
        pytest.skip("JPEGLossless_1s_1f_i_16_16_bad.dcm is not in the corpus")
    frame = _frames(path)[0]
    standard = _decode(frame).view(np.int16)
    np.testing.assert_array_equal(standard, _libjpeg(frame).view(np.int16))
    fixed = _decode(frame, int16_predictors=True).view(np.int16)[..., 0]
    assert fixed.min() == int(_pydicom(path).PixelPaddingValue) == -2000
    assert fixed.max() < 4096 and standard.min() == -32768
    if DCMDJPEG:
        np.testing.assert_array_equal(fixed, _dcmdjpeg(path, "+w6")[0][..., 0])


# -- DCMTK --------------------------------------------------------------------------------

def _dcmcjpeg(src, dst, *options):
    subprocess.run([DCMCJPEG, *options, str(src), str(dst)], check=True,
                   capture_output=True)
    return dst


def _dcmdjpeg(src, *options):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/out.dcm"
        subprocess.run([DCMDJPEG, *options, str(src), out], check=True, capture_output=True)
        return _raw_pixels(out)


DCMTK_SOURCES = ["CT_small.dcm", "MR_small.dcm", "vlut_04.dcm", "mlut_18.dcm",
                 "emri_small.dcm", "SC_rgb.dcm", "SC_rgb_16bit.dcm", "SC_rgb_2frame.dcm",
                 "SC_rgb_16bit_2frame.dcm", "693_UNCI.dcm", "examples_overlay.dcm"]


@needs_dcmtk
@pytest.mark.parametrize("name", DCMTK_SOURCES)
@pytest.mark.parametrize("options", [("+e1",), ("+el", "+sv", "1"), ("+el", "+sv", "2"),
                                     ("+el", "+sv", "3"), ("+el", "+sv", "4"),
                                     ("+el", "+sv", "5"), ("+el", "+sv", "6"),
                                     ("+el", "+sv", "7"), ("+el", "+sv", "1", "+pt", "2")],
                         ids=lambda o: "".join(o))
def test_dcmcjpeg_streams(tmp_path, name, options):
    src = find(name)
    if src is None:
        pytest.skip(f"{name} is not in the corpus")
    pixels = _raw_pixels(src)
    stored = int(_pydicom(src, stop_before_pixels=True).BitsStored)
    frames = _frames(_dcmcjpeg(src, tmp_path / "jpeg.dcm", *options))
    assert len(frames) == pixels.shape[0]
    pt = int(options[-1]) if "+pt" in options else 0
    for frame, expected in zip(frames, pixels, strict=True):
        # DCMTK codes the stored bits, at the precision of Bits Stored or of Bits
        # Allocated, sign-extended or not: compare the Bits Stored low bits.
        assert _ljpeg.info(frame)["precision"] >= stored
        np.testing.assert_array_equal(_masked(_decode(frame), stored),
                                      _masked(expected, stored) >> pt << pt)


def _wrap(source, frames, tmp_path):
    """`source` (uncompressed) with `frames` as its JPEG Lossless SV1 pixel data."""
    ds = _pydicom(source)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.70"
    ds.PixelData = encapsulate(frames, has_bot=len(frames) > 1)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if "PlanarConfiguration" in ds:
        ds.PlanarConfiguration = 0
    path = tmp_path / "ours.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=True)
    return path


def _encode_frames(pixels, precision):
    return [_ljpeg.encode(_masked(f, precision).astype(
        np.uint8 if precision <= 8 else np.uint16), *f.shape, precision) for f in pixels]


@pytest.mark.parametrize("name", DCMTK_SOURCES)
def test_encoder_round_trip_with_dcmtk_libjpeg_gdcm(tmp_path, name):
    src = find(name)
    if src is None:
        pytest.skip(f"{name} is not in the corpus")
    ds = _pydicom(src, stop_before_pixels=True)
    precision = int(ds.BitsStored)
    pixels = _raw_pixels(src)
    frames = _encode_frames(pixels, precision)
    for frame, expected in zip(frames, pixels, strict=True):
        want = _masked(expected, precision)
        np.testing.assert_array_equal(_decode(frame, strict=True), want)
        if find_spec("libjpeg"):
            np.testing.assert_array_equal(_libjpeg(frame), want)
    path = _wrap(src, frames, tmp_path)
    if find_spec("gdcm"):
        np.testing.assert_array_equal(_masked(np.frombuffer(_gdcm_bytes(path), pixels.dtype),
                                              precision), _masked(pixels, precision).reshape(-1))
    if DCMDJPEG:
        np.testing.assert_array_equal(_dcmdjpeg(path), pixels)


@pytest.mark.parametrize("precision", [2, 5, 8, 9, 12, 15, 16])
@pytest.mark.parametrize("components", [1, 3])
@pytest.mark.parametrize("kind", ["noise", "smooth", "flat"])
def test_encoder_round_trip(precision, components, kind):
    rng = np.random.default_rng(precision * 10 + components)
    for shape in [(1, 1), (1, 9), (7, 1), (37, 53)]:
        arr = _image(rng, shape + (components,), precision, kind).astype(
            np.uint8 if precision <= 8 else np.uint16)
        frame = _ljpeg.encode(arr, *arr.shape, precision)
        assert frame[:4] == b"\xff\xd8\xff\xc3" and frame[-2:] == b"\xff\xd9"
        np.testing.assert_array_equal(_decode(frame, strict=True), arr)
        np.testing.assert_array_equal(_libjpeg(frame), arr)


def test_encoder_refuses_bad_input():
    arr = np.full((4, 4), 600, np.uint16)
    for args in [(4, 4, 1, 8),     # two bytes a sample where one is expected
                 (4, 4, 1, 9),     # 600 needs 10 bits
                 (4, 4, 1, 17), (4, 4, 1, 1), (4, 4, 2, 16), (0, 4, 1, 16), (4, 5, 1, 16)]:
        with pytest.raises(ValueError):
            _ljpeg.encode(arr, *args)
    assert _ljpeg.encode(arr, 4, 4, 1, 10)


# -- stream features, through the reference encoder --------------------------------------

CASES = [
    # precision, components, psv, pt, restart interval (MCUs), interleaved, sampling
    (8, 1, 1, 0, 0, True, None),
    (8, 1, 4, 0, 64, True, None),
    (12, 1, 7, 1, 128, True, None),
    (16, 1, 5, 0, 0, True, None),
    (16, 1, 6, 0, 192, True, None),
    (2, 1, 2, 0, 0, True, None),
    (15, 1, 3, 2, 0, True, None),
    (8, 3, 1, 0, 0, True, None),
    (8, 3, 6, 0, 64, True, None),
    (16, 3, 7, 0, 0, True, None),
    (12, 2, 4, 0, 0, True, None),
    (10, 4, 5, 1, 128, True, None),
    (8, 3, 1, 0, 0, False, None),
    (16, 3, 4, 0, 64, False, None),
    (8, 3, 1, 0, 0, True, [(2, 2), (1, 1), (1, 1)]),
    (12, 3, 6, 0, 8, True, [(1, 2), (2, 1), (1, 1)]),
    (8, 4, 7, 0, 0, True, [(1, 1), (1, 2), (2, 1), (2, 2)]),
]


@pytest.mark.parametrize("precision, nf, psv, pt, ri, interleaved, hv", CASES)
@pytest.mark.parametrize("kind", ["noise", "smooth"])
def test_reference_streams(precision, nf, psv, pt, ri, interleaved, hv, kind):
    rng = np.random.default_rng(precision + nf * 16 + psv * 256)
    hv_ = hv or [(1, 1)] * nf
    hmax, vmax = max(h for h, _ in hv_), max(v for _, v in hv_)
    rows, cols = 19, 64
    planes = [_image(rng, (-(-rows * v // vmax), -(-cols * h // hmax)), precision, kind)
              for h, v in hv_]
    # H.1.1 wants restart intervals of whole MCU rows; only a lenient decoder takes others.
    mcus_per_row = -(-cols // hmax) if interleaved and nf > 1 else planes[0].shape[1]
    conforming = ri % mcus_per_row == 0 and (interleaved or len({p.shape for p in planes}) == 1)
    for fill in (False, True):
        frame = ref_encode(planes, precision, psv=psv, pt=pt, ri=ri, interleaved=interleaved,
                           hv=hv, fill=fill, shared_table=kind == "smooth")
        want = [p >> pt << pt for p in planes]
        got = _decode(frame, planar=True, strict=conforming)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        if hv is None:  # libjpeg-turbo upsamples other sampling factors
            imagecodecs = pytest.importorskip("imagecodecs")
            ref = imagecodecs.jpeg8_decode(frame).reshape(rows, cols, nf)
            np.testing.assert_array_equal(ref, np.stack(want, -1))


def test_wide_rows_and_long_codes():
    # Rows of more samples than one batch of differences, 16-bit noise (codes of
    # up to 16 bits, SSSS 16), and a restart interval of one row.
    rng = np.random.default_rng(3)
    for nf, psv in [(1, 1), (3, 1), (3, 5), (1, 7)]:
        planes = [rng.integers(0, 1 << 16, (3, 5000)) for _ in range(nf)]
        frame = ref_encode(planes, 16, psv=psv, ri=5000)
        for g, w in zip(_decode(frame, planar=True), planes, strict=True):
            np.testing.assert_array_equal(g, w)


def test_layout_and_options():
    rng = np.random.default_rng(4)
    planes = [_image(rng, (9, 11), 12, "smooth") for _ in range(3)]
    frame = ref_encode(planes, 12, psv=1)
    info = _ljpeg.info(frame)
    assert info["nbytes"] == 9 * 11 * 3 * 2 and not info["planar"]
    np.testing.assert_array_equal(_decode(frame), np.stack(planes, -1))
    for g, w in zip(_decode(frame, planar=True), planes, strict=True):
        np.testing.assert_array_equal(g, w)
    # int16 arithmetic changes nothing for predictors 1 to 4, or below 16 bits.
    np.testing.assert_array_equal(_decode(frame, int16_predictors=True), _decode(frame))
    with pytest.raises(ValueError):
        _ljpeg.decode(frame, np.empty(info["nbytes"] + 1, np.uint8))
    with pytest.raises(ValueError):
        _ljpeg.decode(frame, np.empty(info["nbytes"] - 1, np.uint8))


def test_lenient_and_strict():
    rng = np.random.default_rng(5)
    plane = _image(rng, (16, 20), 8, "smooth")
    good = ref_encode([plane], 8, psv=1, ri=40)
    out = np.empty(16 * 20, np.uint8)

    def both(frame):
        _ljpeg.decode(frame, out)
        np.testing.assert_array_equal(out.reshape(16, 20), plane)
        with pytest.raises(DecodeError):
            _ljpeg.decode(frame, out, strict=True)

    both(good[:-2])  # no EOI
    both(good.replace(b"\xff\xd1", b"\xff\xd5", 1))  # RST out of sequence
    both(good[:-2] + b"\x00\x11\x22\xff\xd9")  # bytes after the last sample
    # An unused symbol above 16 in the table (some encoders emit 0..255).
    at = good.index(b"\xff\xc4")
    length = int.from_bytes(good[at + 2:at + 4], "big")
    table = bytearray(good[at + 5:at + 2 + length])
    counts, n = list(table[:16]), sum(table[:16])
    longest = max(i for i in range(16) if counts[i])
    if longest < 15:
        counts[15] += 1
        table[:16] = bytes(counts)
        table[16 + n:16 + n] = bytes([200])
        seg = bytes([0xFF, 0xC4]) + (len(table) + 3).to_bytes(2, "big") + b"\x00" + table
        both(good[:at] + seg + good[at + 2 + length:])
    # Restart intervals that are not whole rows (H.1.1): decoded leniently.
    odd = ref_encode([plane], 8, psv=4, ri=7)
    both(odd)


def test_unsupported_processes():
    base = find("JPEGBaseline_1s_1f_u_08_08.dcm")
    if base is not None:
        with pytest.raises(DecodeError):
            _ljpeg.info(_frames(base)[0])
    jls = find("MR_small_jpeg_ls_lossless.dcm")
    if jls is not None:
        with pytest.raises(DecodeError):
            _ljpeg.info(_frames(jls)[0])
    frame = bytearray(ref_encode([np.zeros((4, 4), int)], 8))
    frame[frame.index(b"\xff\xc3") + 1] = 0xCB  # SOF11: arithmetic coding
    with pytest.raises(DecodeError):
        _ljpeg.info(bytes(frame))


# -- malformed input ----------------------------------------------------------------------

def _valid_frames():
    rng = np.random.default_rng(6)
    return [
        ref_encode([_image(rng, (24, 30), 12, "noise")], 12, psv=6, ri=60),
        ref_encode([_image(rng, (12, 16), 8, "smooth") for _ in range(3)], 8, psv=1,
                   fill=True),
        ref_encode([_image(rng, (8, 9), 16, "noise"), _image(rng, (4, 9), 16, "noise")], 16,
                   psv=7, hv=[(1, 2), (1, 1)], ri=3),
        _ljpeg.encode(_image(rng, (20, 24), 16, "smooth").astype(np.uint16), 20, 24, 1, 16),
    ]


def _try(frame, strict):
    try:
        info = _ljpeg.info(frame)
    except DecodeError:
        return False
    if info["nbytes"] > 1 << 24:
        return False
    try:
        _ljpeg.decode(frame, np.empty(info["nbytes"], np.uint8), strict)
    except DecodeError:
        return False
    return True


@pytest.mark.parametrize("strict", [False, True])
def test_truncated_everywhere(strict):
    for frame in _valid_frames():
        decoded = [cut for cut in range(len(frame)) if _try(frame[:cut], strict)]
        # Only fill bytes and the EOI marker may go, and only leniently.
        end = frame.rindex(b"\xff\xd9")
        while frame[end - 1] == 0xFF:
            end -= 1
        assert decoded == ([] if strict else list(range(end, len(frame))))


@pytest.mark.parametrize("strict", [False, True])
def test_bit_flips_never_crash(strict):
    rng = np.random.default_rng(7)
    for frame in _valid_frames():
        for _ in range(300):
            bad = bytearray(frame)
            for pos in rng.integers(0, len(bad), int(rng.integers(1, 4))):
                bad[pos] ^= 1 << int(rng.integers(0, 8))
            _try(bytes(bad), strict)


def test_forged_lengths_and_garbage():
    rng = np.random.default_rng(8)
    for frame in _valid_frames():
        at = 2
        while frame[at + 1] != 0xDA:  # every marker segment up to the first scan
            for length in (0, 1, 2, 3, 0xFFFF, len(frame)):
                bad = frame[:at + 2] + length.to_bytes(2, "big") + frame[at + 4:]
                _try(bad, False)
                assert not _try(bad, True)
            at += 2 + int.from_bytes(frame[at + 2:at + 4], "big")
    for _ in range(500):
        body = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        _try(b"\xff\xd8" + body, False)
        _try(_valid_frames()[0][:200] + body, False)


def test_absurd_dimensions_fail_before_writing():
    frame = bytearray(_valid_frames()[3])
    sof = frame.index(b"\xff\xc3")
    frame[sof + 5:sof + 9] = (65535).to_bytes(2, "big") + (65535).to_bytes(2, "big")
    info = _ljpeg.info(bytes(frame))
    assert info["nbytes"] == 65535 * 65535 * 2
    with pytest.raises(ValueError):  # a tiny buffer: refused before decoding
        _ljpeg.decode(bytes(frame), np.empty(16, np.uint8))
    # With a buffer of the right size (untouched pages cost nothing) the data is
    # found too short for that many samples before anything is written.
    frame[sof + 7:sof + 9] = (2048).to_bytes(2, "big")
    out = np.zeros(65535 * 2048 * 2, np.uint8)
    with pytest.raises(DecodeError):
        _ljpeg.decode(bytes(frame), out)
    assert not out[:1 << 16].any()


def test_decode_releases_the_gil():
    # A large frame decodes for tens of milliseconds; with the GIL free the main
    # thread runs in the middle of the call. A busy machine may keep it off the
    # CPU for one call, so a few calls are allowed.
    rng = np.random.default_rng(9)
    arr = (np.add.outer(np.arange(2048), np.arange(4096)) * 5 % 65536).astype(np.uint16)
    arr += rng.integers(0, 64, arr.shape, dtype=np.uint16)
    frame = _ljpeg.encode(arr, 2048, 4096, 1, 16)
    out = np.empty(arr.nbytes, np.uint8)
    seen = []
    for _attempt in range(5):
        span = {}

        def work(span=span):
            span["start"] = time.perf_counter()
            _ljpeg.decode(frame, out)
            span["stop"] = time.perf_counter()

        ticks = []
        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            ticks.append(time.perf_counter())
        worker.join()
        quarter = (span["stop"] - span["start"]) / 4
        seen.append(sum(1 for t in ticks if span["start"] + quarter < t < span["stop"] - quarter))
        if seen[-1] > 10:
            break
    assert seen[-1] > 10, f"main-thread steps in the middle of each decode: {seen}"
    np.testing.assert_array_equal(out.view(np.uint16).reshape(arr.shape), arr)
