"""dicomfast: fast DICOM reading, decoding, writing and networking.

    >>> import dicomfast
    >>> ds = dicomfast.read("image.dcm")
    >>> ds.PatientName, ds.pixel_array.shape
"""

from dicomfast import json_model as _json_model  # registers Dataset.to_json/from_json
from dicomfast import pixels as _pixels  # registers ds.pixel_array
from dicomfast import transcode as _transcode  # registers transcoding for save()
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
from dicomfast.pixels import decode_many
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

del _json_model, _pixels, _transcode
