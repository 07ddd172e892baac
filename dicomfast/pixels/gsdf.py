"""The Grayscale Standard Display Function (PS3.14).

PS3.14 §7 defines luminance as a function of the Just-Noticeable Difference
index j (1 to 1023, 0.05 to about 4000 cd/m²), so that equal steps in j look
like equal steps in brightness to a human observer. A display conforms when
P-values (the output of the Presentation LUT, PS3.4 §N.2.1.1) that step evenly
give luminances that step evenly in j between the display's darkest and
brightest luminance. This module gives the function, its inverse, and the table
from P-values to the Digital Driving Levels (DDL) of a display described by its
luminance range and response.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["JND_MAX", "JND_MIN", "L_MAX", "L_MIN", "apply_gsdf", "ddl_lut", "jnd_to_luminance",
           "luminance_to_jnd", "p_values_to_luminance"]

JND_MIN, JND_MAX = 1, 1023

# PS3.14 §7, Equation 7-1: log10 L(j) is a rational function of ln j.
_A, _B, _C, _D, _E = -1.3011877, -2.5840191e-2, 8.0242636e-2, -1.0320229e-1, 1.3646699e-1
_F, _G, _H, _K, _M = 2.8745620e-2, -2.5468404e-2, -3.1978977e-3, 1.2992634e-4, 1.3635334e-3
# PS3.14 §7, Equation 7-2: j(L) as a polynomial in log10 L, the inverse of 7-1 to
# within a fraction of one JND.
L_MIN = 10.0 ** _A  # L(1), ln 1 = 0: 0.04998 cd/m², the 0.0500 of Table B-1
L_MAX = 4000.0  # PS3.14 §7: the range ends at 4000 cd/m² (L(1023) is 3993 cd/m²)
_INVERSE = (71.498068, 94.593053, 41.912053, 9.8247004, 0.28175407, -1.1878455,
            -0.18014349, 0.14710899, -0.017046845)


def jnd_to_luminance(j: Any) -> np.ndarray:
    """Luminance in cd/m² of JND index `j` (scalar or array; 1 <= j <= 1023)."""
    j = np.asarray(j, dtype=np.float64)
    if np.any((j < JND_MIN) | (j > JND_MAX)):
        raise ValueError(f"JND indices run from {JND_MIN} to {JND_MAX}")
    x = np.log(j)
    num = _A + x * (_C + x * (_E + x * (_G + x * _M)))
    den = 1 + x * (_B + x * (_D + x * (_F + x * (_H + x * _K))))
    return np.power(10.0, num / den)


def luminance_to_jnd(luminance: Any) -> np.ndarray:
    """JND index (a real number) of a luminance in cd/m² (0.05 to 4000)."""
    lum = np.asarray(luminance, dtype=np.float64)
    if np.any((lum < L_MIN * (1 - 1e-12)) | (lum > L_MAX)):
        raise ValueError(f"the GSDF is defined from {L_MIN} to {L_MAX} cd/m²")
    x = np.log10(lum)
    result = np.zeros_like(x)
    for coefficient in reversed(_INVERSE):  # Horner's rule
        result = result * x + coefficient
    return result


def _jnd_exact(luminance: Any) -> np.ndarray:
    """The j at which Equation 7-1 gives `luminance`, to 1e-9 JND: Equation 7-2 as the
    start, then Newton steps on log10 L(j). Display ends must map to exactly their
    luminance, which 7-2 alone misses by up to a tenth of a JND."""
    target = np.log10(np.asarray(luminance, dtype=np.float64))
    j = np.clip(luminance_to_jnd(luminance), JND_MIN, JND_MAX)
    for _ in range(8):
        f = np.log10(jnd_to_luminance(j)) - target
        h = 1e-4
        slope = (np.log10(jnd_to_luminance(np.minimum(j + h, JND_MAX)))
                 - np.log10(jnd_to_luminance(np.maximum(j - h, JND_MIN)))) / (
                     np.minimum(j + h, JND_MAX) - np.maximum(j - h, JND_MIN))
        j = np.clip(j - f / slope, JND_MIN, JND_MAX)
        if np.all(np.abs(f) < 1e-13):
            break
    return j


def _check_range(l_min: float, l_max: float, ambient: float) -> None:
    if not L_MIN <= l_min + ambient < l_max + ambient <= L_MAX:
        raise ValueError(f"a display from {l_min} to {l_max} cd/m² (ambient {ambient}) is "
                         f"outside the GSDF's {L_MIN} to {L_MAX} cd/m²")


def p_values_to_luminance(p: Any, bits: int, l_min: float, l_max: float,
                          ambient: float = 0.0) -> np.ndarray:
    """The luminance a GSDF-conformant display emits for P-values `p` of `bits` bits.

    P-values are spread linearly in JND index between the display's darkest and
    brightest luminance, each including the ambient light the screen reflects
    (PS3.14 §6: the function is of the luminance the observer sees). The result is
    what the display itself must emit, ambient excluded.
    """
    _check_range(l_min, l_max, ambient)
    j_lo, j_hi = _jnd_exact([l_min + ambient, l_max + ambient])
    p = np.asarray(p, dtype=np.float64)
    top = (1 << bits) - 1
    if np.any((p < 0) | (p > top)):
        raise ValueError(f"{bits}-bit P-values run from 0 to {top}")
    j = j_lo + p / top * (j_hi - j_lo)
    return jnd_to_luminance(np.clip(j, JND_MIN, JND_MAX)) - ambient


def ddl_lut(bits_in: int = 8, bits_out: int = 8, *, l_min: float = 0.5, l_max: float = 350.0,
            ambient: float = 0.0, gamma: float = 2.2, characteristic: Any = None) -> np.ndarray:
    """The DDL for every P-value of `bits_in` bits: a table of 2**bits_in entries.

    The display emits ``characteristic[d]`` cd/m² at DDL d (a measured, increasing
    curve of 2**bits_out values), or, without a measured curve, follows a power
    law ``l_min + (l_max - l_min) (d / d_max) ** gamma`` (2.2: an sRGB-like monitor,
    the usual target of a PNG). Each P-value gets the DDL whose luminance is
    nearest the GSDF's (PS3.14 §6). The table's dtype is uint8 or uint16.
    """
    d_max = (1 << bits_out) - 1
    dtype = np.uint8 if bits_out <= 8 else np.uint16
    if characteristic is not None:
        curve = np.asarray(characteristic, dtype=np.float64)
        if curve.size != d_max + 1 or np.any(np.diff(curve) < 0):
            raise ValueError(f"the characteristic curve needs {d_max + 1} increasing values")
        l_min, l_max = float(curve[0]), float(curve[-1])
    target = p_values_to_luminance(np.arange(1 << bits_in), bits_in, l_min, l_max, ambient)
    if characteristic is None:
        frac = np.clip((target - l_min) / (l_max - l_min), 0.0, 1.0)
        return np.rint(d_max * frac ** (1.0 / gamma)).astype(dtype)
    upper = np.clip(np.searchsorted(curve, target), 1, d_max)
    nearer_low = (target - curve[upper - 1]) <= (curve[upper] - target)
    return np.where(nearer_low, upper - 1, upper).astype(dtype)


def apply_gsdf(p_values: np.ndarray, bits_in: int = 8, bits_out: int = 8, *,
               out: np.ndarray | None = None, **display: Any) -> np.ndarray:
    """P-values (integers of `bits_in` bits) mapped to DDLs through :func:`ddl_lut`."""
    table = ddl_lut(bits_in, bits_out, **display)
    index = np.clip(np.asarray(p_values), 0, table.size - 1)
    if out is None:
        return table[index]
    np.take(table, index, out=out, mode="clip")
    return out
