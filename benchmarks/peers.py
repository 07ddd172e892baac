"""How the benchmarks drive peers whose setup is longer than one call."""

from __future__ import annotations

from typing import Any


def gdcm_image(frame: bytes, *, rows: int, columns: int, samples: int, bits_allocated: int,
               bits_stored: int, signed: bool, photometric: str, syntax: str) -> Any:
    """A python-gdcm Image around one compressed frame, set up as pydicom's gdcm
    plugin sets it up; each ``GetBuffer()`` call decodes the frame again.

    `syntax` names a ``gdcm.TransferSyntax`` constant (``"RLELossless"``,
    ``"JPEGLosslessProcess14_1"``, ``"JPEG2000"``, ...).
    """
    import gdcm

    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(frame)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((columns, rows, 1))
    image.SetDataElement(element)
    pi = gdcm.PhotometricInterpretation.GetPIType(photometric)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi))
    if samples > 1:
        image.SetPlanarConfiguration(0)
    image.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
    image.SetPixelFormat(gdcm.PixelFormat(samples, bits_allocated, bits_stored,
                                          bits_stored - 1, int(signed)))
    return image


def gdcm_image_for(case: Any, frame: bytes, syntax: str) -> Any:
    """gdcm_image for a benchmark case holding a pydicom data set as `case.ds`."""
    ds = case.ds
    bits = int(ds.BitsAllocated)
    return gdcm_image(frame, rows=int(ds.Rows), columns=int(ds.Columns),
                      samples=int(ds.SamplesPerPixel), bits_allocated=bits,
                      bits_stored=int(ds.get("BitsStored") or bits),
                      signed=bool(ds.get("PixelRepresentation") or 0),
                      photometric=str(ds.PhotometricInterpretation), syntax=syntax)
