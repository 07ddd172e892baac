"""Write the small sample files shipped in dicomfast/samples (used by `dicomfast demo`).

    python tools/make_samples.py

The images are synthetic (phantom-like shapes), the people fictitious. Each file
exercises a different encoding: explicit VR little endian with nested sequences,
implicit VR little endian multi-frame signed data, explicit VR big endian,
planar RGB, and a deflated data set.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "dicomfast" / "samples"
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
SOP_SC = "1.2.840.10008.5.1.4.1.1.7"
SOP_CT = "1.2.840.10008.5.1.4.1.1.2"
SOP_MR = "1.2.840.10008.5.1.4.1.1.4"
ROOT = "2.25.31415926535897932384626433832795028"


def pad(vr: str, raw: bytes) -> bytes:
    if len(raw) % 2:
        raw += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return raw


def encode(tag: int, vr: str, value, *, explicit=True, little=True) -> bytes:
    """One element (PS3.5 §7.1): tag, [VR], length, value."""
    e = "<" if little else ">"
    if vr == "SQ":
        items = b""
        for item in value:
            body = b"".join(encode(t, v, x, explicit=explicit, little=little) for t, v, x in item)
            items += struct.pack(e + "HHI", 0xFFFE, 0xE000, len(body)) + body
        raw = items
    elif isinstance(value, bytes):
        raw = pad(vr, value)
    elif vr in ("US", "SS", "UL", "SL", "FL", "FD"):
        code = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}[vr]
        vals = value if isinstance(value, (list, tuple)) else [value]
        raw = struct.pack(e + code * len(vals), *vals)
    else:
        vals = value if isinstance(value, (list, tuple)) else [value]
        text = "\\".join(str(v) for v in vals)
        raw = pad(vr, text.encode("utf-8"))
    head = struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
    if not explicit:
        return head + struct.pack(e + "I", len(raw)) + raw
    if vr in LONG_VRS:
        return head + vr.encode() + b"\0\0" + struct.pack(e + "I", len(raw)) + raw
    return head + vr.encode() + struct.pack(e + "H", len(raw)) + raw


def part10(elements, ts: str, sop_class: str, sop_instance: str, *, explicit=True, little=True,
           deflate=False) -> bytes:
    meta_body = b"".join(encode(t, v, x) for t, v, x in [
        (0x00020001, "OB", b"\0\1"),
        (0x00020002, "UI", sop_class),
        (0x00020003, "UI", sop_instance),
        (0x00020010, "UI", ts),
        (0x00020012, "UI", ROOT + ".9"),
        (0x00020013, "SH", "DICOMFAST_010"),
    ])
    meta = encode(0x00020000, "UL", len(meta_body)) + meta_body
    body = b"".join(encode(t, v, x, explicit=explicit, little=little)
                    for t, v, x in sorted(elements, key=lambda e: e[0]))
    if deflate:
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = c.compress(body) + c.flush()
    return b"\0" * 128 + b"DICM" + meta + body


def phantom(n: int, frames: int = 1) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] - (n - 1) / 2
    r = np.hypot(x, y)
    out = []
    for f in range(frames):
        img = np.where(r < n * 0.45, 1000.0, -1000.0)
        img += np.where(np.hypot(x - n * 0.15, y + f * 2) < n * 0.1, 600.0, 0.0)
        img += 40.0 * np.sin(x / 3.0)
        out.append(img)
    return np.array(out)


def common(uid: str, modality: str, name: str) -> list:
    return [
        (0x00080016, "UI", {"CT": SOP_CT, "MR": SOP_MR}.get(modality, SOP_SC)),
        (0x00080018, "UI", uid),
        (0x00080020, "DA", "20250314"),
        (0x00080030, "TM", "101530.25"),
        (0x00080060, "CS", modality),
        (0x00100010, "PN", name),
        (0x00100020, "LO", "DF-0001"),
        (0x00100030, "DA", "19700101"),
        (0x0020000D, "UI", ROOT + ".1"),
        (0x0020000E, "UI", ROOT + ".2"),
        (0x00200013, "IS", 1),
    ]


def image(arr: np.ndarray, samples=1, planar=None, signed=False) -> list:
    rows, cols = arr.shape[-3:-1] if samples > 1 else arr.shape[-2:]
    bits = arr.dtype.itemsize * 8
    els = [
        (0x00280002, "US", samples),
        (0x00280004, "CS", "RGB" if samples == 3 else "MONOCHROME2"),
        (0x00280010, "US", rows),
        (0x00280011, "US", cols),
        (0x00280100, "US", bits),
        (0x00280101, "US", bits if bits == 8 else 12 if not signed else 16),
        (0x00280102, "US", (bits if bits == 8 else 12 if not signed else 16) - 1),
        (0x00280103, "US", 1 if signed else 0),
    ]
    if planar is not None:
        els.append((0x00280006, "US", planar))
    return els


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ts_ex, ts_im, ts_be, ts_df = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
                                  "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")

    # 1. CT, explicit VR LE, 64x64 unsigned 12-bit, nested sequences, UTF-8 names.
    ct = (phantom(64)[0] + 1024).clip(0, 4095).astype("<u2")
    uid = ROOT + ".101"
    els = common(uid, "CT", "Yamada^Tarou=山田^太郎=やまだ^たろう")
    els += image(ct)
    els += [
        (0x00080005, "CS", "ISO_IR 192"),
        (0x00180050, "DS", "1.25"),
        (0x00200032, "DS", ["-32.0", "-32.0", "12.5"]),
        (0x00200037, "DS", [1, 0, 0, 0, 1, 0]),
        (0x00281050, "DS", "40"),
        (0x00281051, "DS", "400"),
        (0x00281052, "DS", "-1024"),
        (0x00281053, "DS", "1"),
        (0x00081140, "SQ", [
            [(0x00081150, "UI", SOP_CT), (0x00081155, "UI", ROOT + ".100")],
        ]),
        (0x00082112, "SQ", [
            [(0x00081150, "UI", SOP_CT), (0x00081155, "UI", ROOT + ".99"),
             (0x0040A170, "SQ", [[(0x00080100, "SH", "121322"), (0x00080102, "SH", "DCM"),
                                  (0x00080104, "LO", "Source image for image processing")]])],
        ]),
        (0x00090010, "LO", "DICOMFAST SAMPLE"),
        (0x00091001, "LO", "a private value"),
        (0x7FE00010, "OW", ct.tobytes()),
    ]
    (OUT / "ct_explicit_le.dcm").write_bytes(part10(els, ts_ex, SOP_CT, uid))

    # 2. MR, implicit VR LE, 3 frames of signed 16-bit.
    mr = (phantom(48, frames=3) / 4).astype("<i2")
    uid = ROOT + ".102"
    els = common(uid, "MR", "Doe^Jane") + image(mr, signed=True)
    els += [(0x00280008, "IS", 3), (0x00180087, "DS", "1.5"),
            (0x7FE00010, "OW", mr.tobytes())]
    (OUT / "mr_implicit_le.dcm").write_bytes(
        part10(els, ts_im, SOP_MR, uid, explicit=False))

    # 3. Explicit VR big endian, 16-bit.
    be = (phantom(40)[0] + 1024).clip(0, 4095).astype(">u2")
    uid = ROOT + ".103"
    els = common(uid, "CT", "Mustermann^Erika") + image(be)
    els += [(0x7FE00010, "OW", be.tobytes())]
    (OUT / "ct_explicit_be.dcm").write_bytes(
        part10(els, ts_be, SOP_CT, uid, little=False))

    # 4. Planar RGB (Planar Configuration 1), explicit VR LE.
    g = phantom(32)[0]
    rgb = np.stack([(g > 0) * 200, np.abs(g) / 8, np.linspace(0, 255, 32 * 32).reshape(32, 32)],
                   axis=-1).clip(0, 255).astype("u1")
    uid = ROOT + ".104"
    els = common(uid, "OT", "Rossi^Mario") + image(rgb, samples=3, planar=1)
    els += [(0x7FE00010, "OB", np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes())]
    (OUT / "rgb_planar.dcm").write_bytes(part10(els, ts_ex, SOP_SC, uid))

    # 5. Deflated explicit VR LE (PS3.5 §A.5).
    uid = ROOT + ".105"
    els = common(uid, "CT", "Dupont^Jean") + image(ct)
    els += [(0x00080005, "CS", "ISO_IR 100"), (0x7FE00010, "OW", ct.tobytes())]
    (OUT / "ct_deflated.dcm").write_bytes(part10(els, ts_df, SOP_CT, uid, deflate=True))
    for p in sorted(OUT.glob("*.dcm")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
