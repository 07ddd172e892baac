"""The Grayscale Standard Display Function (dicomfast.pixels.gsdf) against PS3.14.

Spot values are rows of PS3.14 Table B-1 (luminance in cd/m² for JND indices,
given there to 4 decimals): the function must round to them. The last row
(j = 1023, about 3993.4 cd/m²) is checked to 1e-4 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from dicomfast.pixels import gsdf

# PS3.14 Table B-1: (JND index, luminance cd/m²)
TABLE_B1 = [(1, 0.0500), (2, 0.0547), (3, 0.0594), (4, 0.0643), (5, 0.0696)]


@pytest.mark.parametrize("j, luminance", TABLE_B1)
def test_table_b1_spot_values(j, luminance):
    assert round(float(gsdf.jnd_to_luminance(j)), 4) == luminance


def test_range_end():
    assert float(gsdf.jnd_to_luminance(1023)) == pytest.approx(3993.4, rel=1e-4)


def test_inverse_within_a_fraction_of_a_jnd():
    j = np.arange(1, 1024)
    back = gsdf.luminance_to_jnd(gsdf.jnd_to_luminance(j))
    assert np.max(np.abs(back - j)) < 0.1
    assert float(gsdf.luminance_to_jnd(0.05)) == pytest.approx(1, abs=0.05)


def test_monotonic_and_domain():
    lum = gsdf.jnd_to_luminance(np.arange(1, 1024))
    assert np.all(np.diff(lum) > 0)
    with pytest.raises(ValueError):
        gsdf.jnd_to_luminance(0)
    with pytest.raises(ValueError):
        gsdf.luminance_to_jnd(5000)


def test_p_values_step_evenly_in_jnd():
    lum = gsdf.p_values_to_luminance(np.arange(256), 8, l_min=1.0, l_max=400.0)
    assert lum[0] == pytest.approx(1.0, rel=1e-3) and lum[-1] == pytest.approx(400.0, rel=1e-3)
    steps = np.diff(gsdf.luminance_to_jnd(lum))
    assert np.ptp(steps) < 0.05  # equal P steps are equal JND steps
    with_ambient = gsdf.p_values_to_luminance(np.arange(256), 8, 1.0, 400.0, ambient=2.0)
    assert with_ambient[0] == pytest.approx(1.0, rel=1e-3)


def test_ddl_lut_power_law_and_measured_curve():
    lut = gsdf.ddl_lut(8, 8, l_min=0.5, l_max=300.0, gamma=2.2)
    assert lut.dtype == np.uint8 and lut[0] == 0 and lut[-1] == 255
    assert np.all(np.diff(lut.astype(int)) >= 0)
    # a linear display: the DDL is the GSDF luminance scaled linearly
    curve = np.linspace(0.5, 300.0, 256)
    measured = gsdf.ddl_lut(8, 8, characteristic=curve)
    target = gsdf.p_values_to_luminance(np.arange(256), 8, 0.5, 300.0)
    expected = np.rint((target - 0.5) / (299.5 / 255))
    assert np.max(np.abs(measured.astype(int) - expected)) <= 1
    wide = gsdf.ddl_lut(12, 10, l_min=0.5, l_max=300.0)
    assert wide.dtype == np.uint16 and wide.size == 4096 and wide[-1] == 1023
    p = np.array([[0, 128], [255, 64]], np.uint8)
    np.testing.assert_array_equal(gsdf.apply_gsdf(p, l_min=0.5, l_max=300.0), lut[p])
    with pytest.raises(ValueError):
        gsdf.ddl_lut(8, 8, l_min=0.01, l_max=300.0)
