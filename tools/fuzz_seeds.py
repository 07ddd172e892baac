"""Write seed corpora for the libFuzzer harnesses of csrc/fuzz/ from real files.

    python tools/fuzz_seeds.py TARGET OUTDIR [--max-bytes N]

Seeds come from the test corpus (pydicom's test files, pydicom-data, the package
samples; tests/corpus.py lists them) read with dicomfast itself, plus the files kept
in tests/fuzz_regressions/TARGET/. Each harness reads an options byte (or two) before
the payload (see its header comment), so every payload is written once per option
value that matters. Nothing here is committed: tools/fuzz.sh regenerates the seeds.

Targets: scan, encaps, swap, rle, ljpeg, j2k, htj2k, jpeg, jpegls, inflate, pdu.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import corpus  # noqa: E402  (tests/corpus.py: where the real files are)

import dicomfast  # noqa: E402
from dicomfast.errors import DicomfastError  # noqa: E402
from dicomfast.pixels.encaps import split_frames  # noqa: E402

PIXEL_DATA = 0x7FE00010

# Transfer syntax UID prefixes of the encapsulated families (PS3.5 §8.2, §10).
RLE = ("1.2.840.10008.1.2.5",)
LJPEG = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
JPEG = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
JPEGLS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
J2K = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
       "1.2.840.10008.1.2.4.93")
HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")

TARGETS = ("scan", "encaps", "swap", "rle", "ljpeg", "j2k", "htj2k", "jpeg", "jpegls",
           "inflate", "pdu")


def _files() -> list[Path]:
    samples = sorted((ROOT / "dicomfast" / "samples").glob("*.dcm"))
    return samples + corpus.all_files()


def _read(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dicomfast.read(path)
        except (DicomfastError, OSError):
            return None


def _first_frames(ts_family: tuple[str, ...], max_bytes: int) -> Iterator[tuple[bytes, object]]:
    """Frame 0 of every corpus file whose transfer syntax is in the family."""
    for path in _files():
        if path.stat().st_size > 64 * max_bytes:
            continue
        ds = _read(path)
        if ds is None:
            continue
        ts = str(ds.transfer_syntax or "")
        if ts not in ts_family or PIXEL_DATA not in ds:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                n = int(ds.get("NumberOfFrames", 1) or 1)
                frames = split_frames(ds[PIXEL_DATA].value, n, ts)
                frame = bytes(frames.frame(0))
        except (DicomfastError, ValueError, TypeError, KeyError):
            continue
        if 0 < len(frame) <= max_bytes:
            yield frame, ds


def _pixel_values(max_bytes: int) -> Iterator[tuple[bytes, str]]:
    for path in _files():
        if path.stat().st_size > 4 * max_bytes:
            continue
        ds = _read(path)
        if ds is None or PIXEL_DATA not in ds:
            continue
        try:
            value = bytes(ds[PIXEL_DATA].value)
        except (DicomfastError, ValueError, TypeError):
            continue
        yield value[:max_bytes], str(ds.transfer_syntax or "")


def seeds(target: str, max_bytes: int) -> Iterator[bytes]:
    if target == "scan":
        for path in _files():
            data = path.read_bytes()
            if len(data) > max_bytes:
                continue
            # fuzz_scan.c byte 0: bit 0 little endian, bit 1 explicit, bit 2 strict,
            # bit 4 stop before pixels; Part 10 path (bit 7 clear).
            for mode in (0x03, 0x07, 0x13, 0x01):
                yield bytes([mode]) + data
    elif target == "encaps":
        for value, ts in _pixel_values(max_bytes):
            if ts.startswith(J2K + HTJ2K):
                marker = 1
            elif ts.startswith(JPEG + LJPEG + JPEGLS):
                marker = 2
            else:
                continue
            yield bytes([(marker << 4) | 0]) + value
            yield bytes([(marker << 4) | 3]) + value
    elif target == "swap":
        for value, _ in _pixel_values(4096):
            yield bytes([1, 0]) + value
            yield bytes([2, 3]) + value
    elif target == "rle":
        for frame, _ds in _first_frames(RLE, max_bytes):
            yield bytes([0, 0]) + frame
            yield bytes([2, 1]) + frame
    elif target == "ljpeg":
        for frame, _ in _first_frames(LJPEG, max_bytes):
            yield bytes([0]) + frame
            yield bytes([1]) + frame
    elif target in ("j2k", "htj2k"):
        family = J2K if target == "j2k" else HTJ2K
        for frame, _ in _first_frames(family, max_bytes):
            yield bytes([0]) + frame
            yield bytes([1]) + frame
        if target == "htj2k":
            # Only Part 1 codestreams seed fuzz_j2k: see the header of csrc/fuzz/fuzz_j2k.c.
            yield from _encoded_htj2k()
    elif target == "jpeg":
        for frame, _ in _first_frames(JPEG, max_bytes):
            yield bytes([0]) + frame
            yield bytes([0x0C]) + frame
    elif target == "jpegls":
        for frame, _ in _first_frames(JPEGLS, max_bytes):
            yield frame
    elif target == "inflate":
        for value, _ in _pixel_values(4096):
            raw = value[:4096] or b"\0"
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = comp.compress(raw) + comp.flush()
            size = struct.pack("<H", len(raw) - 1)
            yield size + b"\0" + body
            yield size + b"\1" + body
    elif target == "pdu":
        yield from _pdus()
    else:
        raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")


def _encoded_htj2k() -> Iterator[bytes]:
    """HTJ2K codestreams made by the package's own encoder from the sample images
    (the corpus has few HTJ2K files), cropped small so that executions stay fast."""
    try:
        from dicomfast._native import _htj2k
    except ImportError:
        return
    for path in sorted((ROOT / "dicomfast" / "samples").glob("*.dcm")):
        ds = _read(path)
        if ds is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = ds.pixel_array
        except DicomfastError:
            continue
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in (1, 3) or arr.dtype.itemsize > 2:
            continue  # multi-frame (frames, rows, columns) or wide samples
        crop = arr[:32, :32].copy()
        bits = 8 * crop.dtype.itemsize
        for lossless in (True, False):
            try:
                data = _htj2k.encode(crop.view("u1").reshape(-1), crop.shape[0], crop.shape[1],
                                     crop.shape[2], bits, crop.dtype.kind == "i",
                                     lossless=lossless)
            except (DicomfastError, ValueError):
                continue
            yield bytes([0]) + bytes(data)


def _pdus() -> Iterator[bytes]:
    """One PDU of each type, and a stream of several, from dicomfast.net.pdu's encoder."""
    from dicomfast.net import dimse
    from dicomfast.net import pdu as P

    ts = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
    user = P.UserInformation(max_length=16384, implementation_class_uid="1.2.3.4",
                             implementation_version_name="FUZZ")
    out: list[bytes] = []
    try:
        rq = P.AssociateRQ(called_ae="ANY-SCP", calling_ae="FUZZ",
                           contexts=[P.PresentationContext(1, "1.2.840.10008.1.1", ts)],
                           user=user)
        out.append(P.encode(rq))
        ac = P.AssociateAC(called_ae="ANY-SCP", calling_ae="FUZZ",
                           results=[P.PresentationContextResult(1, P.PC_ACCEPTANCE, ts[0])],
                           user=user)
        out.append(P.encode(ac))
    except TypeError:
        pass  # the dataclasses changed shape; the fixed PDUs below still seed
    out.append(P.encode(P.AssociateRJ(result=P.RJ_PERMANENT, source=P.RJ_SOURCE_USER,
                                      reason=P.RJ_NO_REASON)) if _has(P.AssociateRJ) else b"")
    out.append(P.encode(P.ReleaseRQ()))
    out.append(P.encode(P.ReleaseRP()))
    out.append(P.encode(P.Abort(source=P.ABORT_SOURCE_PROVIDER,
                                reason=P.ABORT_UNEXPECTED_PDU)) if _has(P.Abort) else b"")
    cmd = dimse.encode_command(dimse.echo_rq(1))
    out.append(P.encode_pdata(1, P.CONTROL_COMMAND | P.CONTROL_LAST, cmd))
    out = [p for p in out if p]
    for p in out:
        yield b"\0" + p
        yield b"\1" + p
    yield b"\0" + b"".join(out)


def _has(cls: type) -> bool:
    import dataclasses
    return dataclasses.is_dataclass(cls)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", choices=TARGETS)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--max-bytes", type=int, default=256 * 1024,
                    help="skip payloads larger than this (default 256 KiB)")
    args = ap.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    n = 0
    for seed in seeds(args.target, args.max_bytes):
        name = hashlib.sha1(seed).hexdigest()
        (args.outdir / name).write_bytes(seed)
        n += 1
    regress = ROOT / "tests" / "fuzz_regressions" / args.target
    if regress.is_dir():
        for f in sorted(regress.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.suffix != ".md":
                (args.outdir / ("regression-" + f.name)).write_bytes(f.read_bytes())
                n += 1
    print(f"fuzz_seeds: {n} seeds for {args.target} in {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
