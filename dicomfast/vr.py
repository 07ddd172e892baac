"""Value representations (PS3.5 §6.2) and the rules for ambiguous dictionary VRs."""

from __future__ import annotations

from collections.abc import Callable

#: VRs whose values are character strings (PS3.5 Table 6.2-1).
TEXT_VRS = frozenset(
    "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split()
)
#: Text VRs whose value is never split on backslash (PS3.5 §6.4: VM is always 1).
SINGLE_VALUE_TEXT_VRS = frozenset("LT ST UT UR".split())
#: Text VRs that the Specific Character Set applies to (PS3.5 §6.1.2.3).
CHARSET_VRS = frozenset("LO LT PN SH ST UC UT".split())
#: Binary numeric VRs with the struct code of one value.
BINARY_NUMBER_VRS = {
    "US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q",
    "AT": "L",
}
#: Byte-stream VRs returned as bytes.
BYTES_VRS = frozenset("OB OD OF OL OV OW UN".split())
#: VRs with a 2-byte reserved field and 4-byte length in explicit VR (PS3.5 Table 7.1-1).
LONG_FORM_VRS = frozenset("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
#: Element size in bytes for byte swapping of OB..UV streams.
SWAP_SIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8, "US": 2, "SS": 2, "UL": 4, "SL": 4,
             "FL": 4, "FD": 8, "SV": 8, "UV": 8, "AT": 2}

AMBIGUOUS_VRS = frozenset(["US or SS", "OB or OW", "US or SS or OW", "US or OW"])

# Elements whose 'US or SS' VR follows Pixel Representation (PS3.3 C.7.6.3, C.11).
_US_SS_BY_PIXEL_REPRESENTATION = frozenset({
    0x00189810, 0x00221452, 0x00280104, 0x00280105, 0x00280106, 0x00280107, 0x00280108,
    0x00280109, 0x00280110, 0x00280111, 0x00280120, 0x00280121, 0x00281101, 0x00281102,
    0x00281103, 0x00283002, 0x00409211, 0x00409216, 0x00603004, 0x00603006,
})
# Waveform elements whose 'OB or OW' follows Waveform Bits Allocated (PS3.3 C.10.9.1).
_OB_OW_BY_WAVEFORM_BITS = frozenset({0x54000110, 0x54000112, 0x5400100A, 0x54001010})


def resolve_ambiguous_vr(
    tag: int,
    vr: str,
    *,
    implicit: bool,
    undefined_length: bool,
    lookup: Callable[[int], object],
) -> str:
    """The concrete VR for a dictionary VR such as 'US or SS'.

    `lookup(tag)` returns the value of a related element in this dataset or its
    ancestors (nearest first), or None. The rules follow PS3.5 §A.1/A.2 for Pixel
    Data and PS3.3 for the rest, as other toolkits resolve them.
    """
    if tag == 0x7FE00010:
        if undefined_length:
            return "OB"
        if implicit:
            return "OW"
        bits = lookup(0x00280100)
        return "OW" if isinstance(bits, int) and bits > 8 else "OB"
    if tag in _US_SS_BY_PIXEL_REPRESENTATION:
        rep = lookup(0x00280103)
        return "SS" if rep == 1 else "US"
    if tag in _OB_OW_BY_WAVEFORM_BITS:
        if implicit:
            return "OW"
        bits = lookup(0x003A021A)
        return "OW" if isinstance(bits, int) and bits > 8 else "OB"
    if tag == 0x00283006:
        desc = lookup(0x00283002)
        first = desc[0] if isinstance(desc, list) and desc else desc
        return "US" if first == 1 else "OW"
    if (tag & 0xFF00FFFF) == 0x60003000:
        return "OW"
    # Retired or DICONDE elements with no rule: keep the first choice.
    return vr.split(" or ")[0]
