"""Rendering (dicomfast.render, dicomfast.render_cli): PNGs open with Pillow and match
golden renderings.

The golden image of a file is made with pydicom alone: pixel_array, then
``apply_modality_lut`` and ``apply_voi_lut``, then the VOI output scaled linearly
from its range (computed here as pydicom defines it: Bits Stored / Pixel
Representation through the rescale, or the VOI LUT's entry bits) onto 0-255 and
rounded, inverted for MONOCHROME1. dicomfast windows straight onto 0-255, so the
two round at different points: the tolerance is 1 gray level for every pixel.
"""

from __future__ import annotations

import io
import shutil
import warnings

import numpy as np
import pytest
from corpus import find

import dicomfast
from dicomfast import file_warnings, render, render_cli

PIL = pytest.importorskip("PIL.Image", reason="Pillow reads the PNGs back")
pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_modality_lut, apply_voi_lut  # noqa: E402


def _need(name):
    path = find(name)
    if path is None:
        pytest.skip(f"{name} is not in the corpus")
    return path


def _read_png(data):
    with PIL.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, np.array(im)


# -- the PNG writer ------------------------------------------------------------------------

@pytest.mark.parametrize("shape, dtype, mode", [((37, 53), np.uint8, "L"),
                                                ((20, 31), np.uint16, "I;16"),
                                                ((17, 9, 3), np.uint8, "RGB"),
                                                ((8, 5, 4), np.uint8, "RGBA"),
                                                ((1, 1), np.uint8, "L")])
def test_png_round_trip_through_pillow(shape, dtype, mode):
    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    got_mode, back = _read_png(render.encode_png(image))
    assert got_mode.startswith(mode.split(";")[0])
    np.testing.assert_array_equal(back.astype(dtype), image)


def test_png_refuses_what_it_cannot_write():
    with pytest.raises(ValueError):
        render.encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        render.encode_png(np.zeros((0, 4), np.uint8))


# -- JPEG ----------------------------------------------------------------------------------

@pytest.mark.skipif(not render.jpeg_available(), reason="this build has no libjpeg-turbo")
@pytest.mark.parametrize("name", ["CT_small.dcm", "US1_UNCR.dcm"])
def test_jpeg_of_a_rendered_frame_opens_in_pillow(name):
    """encode_jpeg: Pillow (its own libjpeg-turbo) decodes it to the rendered image
    within what JPEG at quality 95 loses (PSNR >= 35 dB), and lower quality is
    smaller."""
    PIL = pytest.importorskip("PIL.Image")
    image = render.render_frame(dicomfast.read(find(name)), 0)
    data = render.encode_jpeg(image, quality=95)
    opened = PIL.open(io.BytesIO(data))
    assert opened.format == "JPEG" and opened.mode == ("L" if image.ndim == 2 else "RGB")
    back = np.asarray(opened).astype(np.float64)
    mse = ((back - image) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) >= 35
    assert len(render.encode_jpeg(image, quality=40)) < len(data)
    with pytest.raises(ValueError):
        render.encode_jpeg(image.astype(np.uint16))


# -- golden renderings from pydicom -------------------------------------------------------

def _golden(path, index=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    if ds.get("NumberOfFrames", 1) not in (None, "", 1):
        arr = arr[0]
    values = apply_voi_lut(apply_modality_lut(arr, ds), ds, index)
    if ds.get("VOILUTSequence"):
        lo, hi = 0, 2 ** int(ds.VOILUTSequence[index].LUTDescriptor[2]) - 1
    elif ds.get("WindowCenter") is not None:
        bits = int(ds.BitsStored)
        lo, hi = (0, 2 ** bits - 1) if ds.PixelRepresentation == 0 else (
            -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
            lo = lo * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            hi = hi * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    else:
        lo, hi = float(values.min()), float(values.max())
    golden = np.rint(np.clip((values - lo) / (hi - lo) * 255, 0, 255)).astype(np.uint8)
    shape = str(ds.get("PresentationLUTShape") or "").strip().upper()
    if shape == "INVERSE" or (not shape and ds.PhotometricInterpretation == "MONOCHROME1"):
        golden = 255 - golden
    return golden


GOLDEN = ["CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm", "RG3_UNCI.dcm", "vlut_04.dcm",
          "mlut_18.dcm", "MR2_UNCI.dcm", "examples_overlay.dcm", "emri_small.dcm",
          "693_UNCI.dcm"]


@pytest.mark.parametrize("name", GOLDEN)
def test_matches_golden_within_one_level(name, tmp_path):
    path = _need(name)
    out = tmp_path / "out.png"
    assert render_cli.main(["render", str(path), "-o", str(out)]) == 0
    mode, png = _read_png(out.read_bytes())
    assert mode == "L"
    golden = _golden(path)
    assert png.shape == golden.shape
    assert int(np.max(np.abs(png.astype(int) - golden))) <= 1


def test_second_window_and_explicit_window():
    path = _need("examples_overlay.dcm")
    ds = dicomfast.read(path)
    second = render.render_frame(ds, voi_index=1)
    assert int(np.max(np.abs(second.astype(int) - _golden(path, 1)))) <= 1
    explicit = render.render_frame(ds, window=(200, 443))
    assert int(np.max(np.abs(explicit.astype(int) - second))) <= 1


def test_overlays_are_drawn_where_pydicom_unpacks_them():
    path = _need("MR-SIEMENS-DICOM-WithOverlays.dcm")
    ds = dicomfast.read(path)
    plain = render.render_frame(ds)
    drawn = render.render_frame(ds, overlays=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pydicom.dcmread(path).overlay_array(0x6000).astype(bool)
    np.testing.assert_array_equal(render.overlay_mask(ds, 0x6000), expected)
    assert np.all(drawn[expected] == 255)
    np.testing.assert_array_equal(drawn[~expected], plain[~expected])


def test_colour_images_render_as_rgb():
    for name in ("SC_rgb.dcm", "OBXXXX1A.dcm"):
        ds = dicomfast.read(_need(name))
        image = render.render_frame(ds)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        mode, back = _read_png(render.encode_png(image))
        assert mode == "RGB"
    ds = dicomfast.read(_need("SC_rgb.dcm"))
    np.testing.assert_array_equal(render.render_frame(ds), ds.pixel_array)


def test_gsdf_display_mapping_is_monotonic():
    ds = dicomfast.read(_need("CT_small.dcm"))
    plain = render.render_frame(ds)
    mapped = render.render_frame(ds, display={"l_min": 0.5, "l_max": 300.0})
    order = np.argsort(plain, axis=None, kind="stable")
    assert np.all(np.diff(mapped.reshape(-1)[order].astype(int)) >= 0)
    assert not np.array_equal(plain, mapped)


def test_grid_of_a_folder_and_of_a_multiframe_file(tmp_path):
    ct = _need("CT_small.dcm")
    folder = tmp_path / "series"
    folder.mkdir()
    for k in range(5):
        ds = dicomfast.read(ct)
        ds.InstanceNumber = 5 - k
        ds.save(folder / f"{k}.dcm")
    (folder / "notes.txt").write_text("not DICOM")
    out = tmp_path / "grid.png"
    assert render_cli.main(["render", str(folder), "--grid", "--tile", "64", "-o",
                            str(out)]) == 0
    mode, sheet = _read_png(out.read_bytes())
    assert sheet.shape == (2 * 64 + 2, 3 * 64 + 2 * 2)  # 5 tiles: 3 columns, 2 rows
    single = render.render_frame(dicomfast.read(ct))
    np.testing.assert_array_equal(sheet[:64, :64], render._fit(single, 64))
    multi = _need("emri_small.dcm")
    n = int(dicomfast.read(multi).NumberOfFrames)
    sheet = render.contact_sheet(multi, tile=32, gap=0, columns=n)
    assert sheet.shape == (32, 32 * n)


def test_grid_leaves_out_what_does_not_render_and_says_why(tmp_path, capsys):
    """A folder with files that cannot be tiles: one whose Number of Frames is not a
    number, one without pixel data, one cut inside its pixel data, and one that is
    not DICOM. The others make the sheet; each of these is named with its reason,
    and a file's warnings with its path."""
    ct = _need("CT_small.dcm")
    folder = tmp_path / "odd"
    folder.mkdir()
    for k in range(2):
        shutil.copy(ct, folder / f"ct{k}.dcm")
    bad = dicomfast.read(ct)
    bad.NumberOfFrames = "1A"
    bad.save(folder / "frames.dcm")
    no_image = dicomfast.read(ct)
    del no_image.PixelData
    no_image.save(folder / "header.dcm")
    data = ct.read_bytes()
    (folder / "cut.dcm").write_bytes(data[:-5000])  # inside the pixel data
    (folder / "notes.txt").write_text("not DICOM")
    skipped, warned = {}, []
    with file_warnings.collecting():
        sheet = render.contact_sheet(folder, tile=32, gap=0,
                                     on_skip=lambda path, why: skipped.setdefault(path, why),
                                     on_warning=lambda path, text: warned.append((path, text)))
    assert sheet.shape == (32, 64)  # the two good copies
    assert set(skipped) == {str(folder / n) for n in
                            ("frames.dcm", "header.dcm", "cut.dcm", "notes.txt")}
    assert "Number of Frames '1A'" in skipped[str(folder / "frames.dcm")]
    assert skipped[str(folder / "header.dcm")] == "no pixel data"
    assert "pixel data has" in skipped[str(folder / "cut.dcm")]
    expected_warnings = [
        (str(folder / "cut.dcm"), "the data ends inside the last element's value; the value "
                                  "is cut short"),
        (str(folder / "frames.dcm"), "IS value '1A' is not an integer string (PS3.5 Table "
                                     "6.2-1); keeping it as text")]
    assert warned == expected_warnings
    out = tmp_path / "sheet.png"
    assert render_cli.main(["render", str(folder), "--grid", "--tile", "32", "-o",
                            str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert sorted(line.split(": ")[1] for line in err if " left out " in line) == sorted(
        f"left out {folder / n}" for n in ("frames.dcm", "header.dcm", "cut.dcm", "notes.txt"))
    assert [line for line in err if "warning:" in line] == [
        f"dicomfast render: warning: {path}: {text}" for path, text in expected_warnings]
    assert _read_png(out.read_bytes())[1].shape == (32, 2 * 32 + 2)  # with the gap


def test_cli_errors_and_frames(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert render_cli.main(["render", str(tmp_path / "missing.dcm"), "-o", str(out)]) == 1
    multi = _need("emri_small.dcm")
    assert render_cli.main(["render", str(multi), "--frame", "3", "--window=100,200",
                            "--gsdf", "-o", str(out)]) == 0
    assert _read_png(out.read_bytes())[1].shape == (64, 64)
    assert render_cli.main(["render", str(multi), "--frame", "99", "-o", str(out)]) == 1
    with pytest.raises(SystemExit):
        render_cli.main(["render", str(multi), "--window", "abc", "-o", str(out)])
    capsys.readouterr()
    if render.jpeg_available():     # a .jpg output is JPEG, the same frame as the PNG
        PIL = pytest.importorskip("PIL.Image")
        jpg = tmp_path / "x.jpg"
        assert render_cli.main(["render", str(multi), "--frame", "3", "--window=100,200",
                                "--gsdf", "--quality", "97", "-o", str(jpg)]) == 0
        opened = PIL.open(jpg)
        assert opened.format == "JPEG"
        png = _read_png(out.read_bytes())[1].astype(int)
        assert np.abs(np.asarray(opened).astype(int) - png).mean() < 2


def test_grid_tiles_of_jpeg2000_decode_reduced(tmp_path, monkeypatch):
    """A contact sheet decodes JPEG 2000 frames only down to the resolution a tile
    needs: each level dropped halves both sides, so a 256-pixel tile of a 1955 x 1841
    image decodes 2 levels down (488 x 460 and more), not the whole image."""
    pytest.importorskip("dicomfast._native._j2k", exc_type=ImportError)
    source = _need("RG1_J2KR.dcm")
    ds = dicomfast.read(source)
    assert render._tile_reduce(ds, 256) == 2
    assert render._tile_reduce(ds, 4096) == 0
    assert render._tile_reduce(dicomfast.read(_need("CT_small.dcm")), 16) == 0  # native data
    asked = []
    real = dicomfast.Dataset.frame
    monkeypatch.setattr(dicomfast.Dataset, "frame", lambda self, i, **k: (
        asked.append(k.get("reduce", 0)), real(self, i, **k))[1])
    sheet = render.contact_sheet([source], tile=256, gap=0)
    assert asked == [2] and sheet.shape == (256, 256)
    full = render._fit(render.render_frame(ds), 256)
    # The reduced image is the low band of the same picture: close to the full one.
    assert np.abs(sheet.astype(int) - full.astype(int)).mean() < 8
