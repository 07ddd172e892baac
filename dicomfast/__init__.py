"""dicomfast: fast DICOM reading, decoding, writing and networking.

    >>> import dicomfast
    >>> ds = dicomfast.read("image.dcm")
    >>> ds.PatientName, ds.pixel_array.shape
"""

import importlib as _importlib
from typing import Any as _Any

from dicomfast import dataset as _dataset
from dicomfast import json_model as _json_model  # registers Dataset.to_json/from_json
from dicomfast.dataset import Dataset, Sequence
from dicomfast.element import DataElement
from dicomfast.errors import (
    CodecUnavailableError,
    DecodeError,
    DicomfastError,
    DicomfastWarning,
    InvalidDicomError,
    MalformedDataError,
    TruncatedDataError,
    UnsupportedTransferSyntaxError,
)
from dicomfast.part10 import dcmread, read
from dicomfast.tag import Tag
from dicomfast.uid import UID, generate_uid
from dicomfast.writer import to_bytes, write

__version__ = "0.1.0"

__all__ = [
    "CodecUnavailableError",
    "DataElement",
    "Dataset",
    "DecodeError",
    "DicomfastError",
    "DicomfastWarning",
    "InvalidDicomError",
    "MalformedDataError",
    "Sequence",
    "Tag",
    "TruncatedDataError",
    "UID",
    "UnsupportedTransferSyntaxError",
    "dcmread",
    "decode_many",
    "generate_uid",
    "read",
    "to_bytes",
    "write",
]


# Pixel decoding and transcoding import numpy, most of what importing dicomfast
# would cost (70 of 120 ms): they are imported on first use instead, so that a
# job that reads and writes headers only (a dump, a scan, de-identification) and
# each worker process it starts stay light. Their Dataset methods stand in until then.
_ON_FIRST_USE = {"pixel_array": "dicomfast.pixels", "frame": "dicomfast.pixels",
                 "frames": "dicomfast.pixels", "transcode": "dicomfast.transcode",
                 "refragment": "dicomfast.transcode"}


def _stand_in(name: str, module: str) -> _Any:
    def first_use(*args: _Any, **kwargs: _Any) -> _Any:
        _importlib.import_module(module)  # registers the real function over this one
        real = _dataset.extensions[name]
        if real is first_use:
            raise RuntimeError(f"{module} did not provide {name!r}")
        return real(*args, **kwargs)
    return first_use


for _name, _module in _ON_FIRST_USE.items():
    _dataset.extensions.setdefault(_name, _stand_in(_name, _module))


def __getattr__(name: str) -> _Any:
    """``dicomfast.decode_many``, ``dicomfast.pixels`` and ``dicomfast.transcode``,
    imported when first asked for."""
    if name == "decode_many":
        return _importlib.import_module("dicomfast.pixels").decode_many
    if name in ("pixels", "transcode"):
        return _importlib.import_module(f"dicomfast.{name}")
    raise AttributeError(f"module 'dicomfast' has no attribute {name!r}")


del _json_model, _name, _module
