"""The DICOM JSON Model (PS3.18 Annex F): datasets to and from JSON.

A dataset is a JSON object whose keys are the eight uppercase hex digits of
each tag, in ascending order (PS3.18 §F.2.2); each value is an object with the
VR (``"vr"``) and at most one of ``"Value"`` (a list), ``"InlineBinary"``
(base64) or ``"BulkDataURI"``. An empty element has none of the three
(§F.2.5). Only the public :class:`~dicomfast.dataset.Dataset` API is used, so
any dataset, read or built, converts.

Where the output differs from pydicom's ``Dataset.to_json_dict()``, and why:

* Group Length elements (gggg,0000) are left out, as §F.2.2 requires.
* An empty value among several is ``null`` (§F.2.5); an empty sequence has no
  ``"Value"``; a PN value lists only its non-empty component groups (§F.2.2).
* DS and IS values are JSON numbers; a DS whose text is not a number, or
  whose digits a binary float cannot hold exactly, stays a string, which
  §F.2.3 allows.
* Binary values are base64 of the bytes the dataset holds, in its byte order,
  as pydicom does.
* A Private Creator (gggg,0010-00FF) the dataset holds as UN is written as LO
  (PS3.5 §7.8.1), as pydicom does; other private elements keep their VR.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import warnings
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from dicomfast import dataset as _dataset_module
from dicomfast.dataset import Dataset, Sequence
from dicomfast.dictionary import dictionary_entry
from dicomfast.element import DataElement
from dicomfast.encode import format_ds
from dicomfast.errors import MalformedDataError, ValueWarning
from dicomfast.values import IS, DSfloat, MultiValue, PersonName, decode_value, empty_value
from dicomfast.vr import AMBIGUOUS_VRS, BYTES_VRS

__all__ = ["dataset_from_json", "dataset_to_json", "dataset_to_json_dict"]

_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_INT_VRS = frozenset(("US", "SS", "UL", "SL", "UV", "SV"))
_FLOAT_VRS = frozenset(("FL", "FD"))
# Values PS3.18 Table F.2.3-1 carries as base64: the O* VRs, UN, and
# ambiguous VRs that were never resolved (their values are bytes).
_BINARY_VRS = BYTES_VRS | (AMBIGUOUS_VRS - {"US or SS"})
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
_VALUE_KEYS = ("Value", "InlineBinary", "BulkDataURI")
_HEX = frozenset("0123456789ABCDEFabcdef")

BulkDataHandler = Callable[[DataElement], str]


# --------------------------------------------------------------------------
# Dataset to JSON


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _empty(v: Any) -> bool:
    return v is None or v == ""


def _ds_json(v: Any) -> Any:
    if _empty(v):
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if not isinstance(v, float):
        return str(v)  # text that is not a number (decode_value kept it)
    f = float(v)
    if not math.isfinite(f):
        return str(v)
    text = getattr(v, "original_string", None)
    if text is not None and text != repr(f):
        # PS3.18 §F.2.3: a string where a number would lose digits.
        try:
            if Decimal(text) != Decimal(repr(f)):
                return text
        except InvalidOperation:
            return text
    return f


def _is_json(v: Any) -> Any:
    if _empty(v):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return int(v) if isinstance(v, int) else str(v)


def _pn_json(v: Any) -> Any:
    if _empty(v):
        return None
    groups = str(v).split("=")
    obj = {name: g for name, g in zip(_PN_GROUPS, groups, strict=False) if g}
    return obj or None


def _number_json(v: Any, kind: type) -> Any:
    if v is None:
        return None
    return kind(v)


def _element_json(el: DataElement, threshold: int, handler: BulkDataHandler | None) -> dict:
    vr = el.VR
    value = el.value
    tag = el.tag
    if vr == "UN" and tag >> 16 & 1 and 0x10 <= tag & 0xFFFF <= 0xFF and isinstance(value, bytes):
        # PS3.5 §7.8.1: a Private Creator is LO, whatever an implicit VR
        # data set left unknown; its text is what identifies the block.
        vr = "LO"
        value = decode_value("LO", value)
    obj: dict[str, Any] = {"vr": vr}
    if vr == "SQ":
        if value:
            obj["Value"] = [dataset_to_json_dict(item, bulk_data_threshold=threshold,
                                                 bulk_data_uri_handler=handler)
                            for item in value]
        return obj
    if isinstance(value, bytes | bytearray | memoryview) and vr in _TEXT_VRS:
        value = decode_value(vr, bytes(value))  # text given as its encoded bytes
    if value is None or value == "" or (isinstance(value, list) and not value):
        return obj  # PS3.18 §F.2.5: an empty element has no Value
    if isinstance(value, bytes | bytearray | memoryview):
        # O*, UN, unresolved ambiguous VRs, and numbers decode_value could
        # not read (a length that is not a multiple of the item size).
        data = bytes(value)
        # The threshold counts base64 characters, 4 for every 3 bytes.
        if handler is not None and len(data) > (threshold // 4) * 3:
            obj["BulkDataURI"] = handler(el)
        else:
            obj["InlineBinary"] = base64.b64encode(data).decode("ascii")
        return obj
    items = _values(value)
    if vr == "PN":
        out = [_pn_json(v) for v in items]
    elif vr == "AT":
        out = [None if v is None else f"{int(v):08X}" for v in items]
    elif vr == "DS":
        out = [_ds_json(v) for v in items]
    elif vr == "IS":
        out = [_is_json(v) for v in items]
    elif vr in _INT_VRS:
        out = [_number_json(v, int) for v in items]
    elif vr in _FLOAT_VRS:
        out = [_number_json(v, float) for v in items]
    else:
        out = [None if _empty(v) else str(v) for v in items]
    obj["Value"] = out
    return obj


def dataset_to_json_dict(
    ds: Dataset,
    *,
    bulk_data_threshold: int = 1024,
    bulk_data_uri_handler: BulkDataHandler | None = None,
) -> dict[str, Any]:
    """Return ``ds`` as a DICOM JSON Model object (PS3.18 §F.2).

    ``bulk_data_uri_handler(element)`` returns the BulkDataURI for a binary
    element; it is asked for each whose base64 text would be longer than
    ``bulk_data_threshold`` characters, and the others are InlineBinary. With
    no handler every binary value is inline. The arguments mean what they
    mean for pydicom's ``Dataset.to_json_dict``.
    """
    out: dict[str, Any] = {}
    for el in ds:
        tag = el.tag
        if not tag & 0xFFFF:
            continue  # PS3.18 §F.2.2: no Group Length elements
        out[f"{tag:08X}"] = _element_json(el, bulk_data_threshold, bulk_data_uri_handler)
    return out


def dataset_to_json(
    ds: Dataset,
    *,
    bulk_data_threshold: int = 1024,
    bulk_data_uri_handler: BulkDataHandler | None = None,
    **dumps_kwargs: Any,
) -> str:
    """Return ``ds`` as DICOM JSON text; other keywords go to :func:`json.dumps`."""
    return json.dumps(
        dataset_to_json_dict(ds, bulk_data_threshold=bulk_data_threshold,
                             bulk_data_uri_handler=bulk_data_uri_handler),
        **dumps_kwargs,
    )


# --------------------------------------------------------------------------
# JSON to Dataset


def _bad(key: str, why: str) -> MalformedDataError:
    tag = int(key, 16) if len(key) == 8 and set(key) <= _HEX else None
    return MalformedDataError(f"DICOM JSON attribute {key!r}: {why}", tag=tag)


def _pn_value(key: str, v: Any) -> PersonName:
    if v is None:
        return PersonName("")
    if isinstance(v, str):
        # Some DICOMweb servers send the name as a plain string.
        warnings.warn(f"DICOM JSON attribute {key}: a PN value is a string, not an object "
                      "of component groups (PS3.18 §F.2.2)", ValueWarning, stacklevel=5)
        return PersonName(v)
    if not isinstance(v, dict):
        raise _bad(key, f"PN value {v!r} is not an object")
    groups = [v.get(name) or "" for name in _PN_GROUPS]
    return PersonName("=".join(groups))


def _ds_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str):
        try:
            return DSfloat(v)
        except ValueError:
            return v.strip()  # kept as text, as decode_value keeps it
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"DS value {v!r} is not a number")
    if isinstance(v, int):
        return DSfloat(str(v))
    # The JSON text of a float is its repr; the DS text must fit 16 characters.
    return DSfloat(format_ds(v) if math.isfinite(v) else repr(v))


def _is_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str):
        try:
            return IS(v)
        except ValueError:
            return v.strip()
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"IS value {v!r} is not a number")
    return IS(v)


def _regular_value(key: str, vr: str, v: Any) -> Any:
    if vr == "PN":
        return _pn_value(key, v)
    if vr == "DS":
        return _ds_value(v)
    if vr == "IS":
        return _is_value(v)
    if v is None:
        return None if vr in _INT_VRS or vr in _FLOAT_VRS or vr == "AT" else ""
    if vr == "AT":
        return int(v, 16) if isinstance(v, str) else int(v)
    if vr in _INT_VRS:
        # PS3.18 Table F.2.3-1: SV and UV may be strings, to keep all 64 bits.
        return int(v)
    if vr in _FLOAT_VRS:
        return float(v)
    if not isinstance(v, str):
        raise TypeError(f"{vr} value {v!r} is not a string")
    return v


def _bulk_handler(handler: Any) -> Callable[[str, str, str], Any] | None:
    """pydicom's two handler shapes: handler(tag, vr, uri) or handler(uri)."""
    if handler is None:
        return None
    try:
        n = len(inspect.signature(handler).parameters)
    except (TypeError, ValueError):
        n = 3
    if n == 1:
        return lambda tag, vr, uri: handler(uri)
    return handler  # type: ignore[no-any-return]


def _element_value(key: str, vr: str, obj: dict, handler: Any) -> Any:
    present = [k for k in _VALUE_KEYS if k in obj]
    if len(present) > 1:
        raise _bad(key, f"has more than one of {', '.join(present)} (PS3.18 §F.2.2)")
    if not present:
        return Sequence() if vr == "SQ" else empty_value(vr)
    which = present[0]
    data = obj[which]
    if which == "Value":
        if not isinstance(data, list):
            raise _bad(key, "Value is not an array (PS3.18 §F.2.2)")
        if vr == "SQ":
            return Sequence([_dataset(item or {}, handler) for item in data])
        if not data:
            return empty_value(vr)
        try:
            values = [_regular_value(key, vr, v) for v in data]
        except (TypeError, ValueError) as exc:
            raise _bad(key, str(exc)) from exc
        return values[0] if len(values) == 1 else MultiValue(values)
    # PS3.18 §F.2.7 says a string; the Annex F.4 example wraps it in a list.
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, str):
        raise _bad(key, f"{which} is not a string")
    if vr == "SQ":
        raise _bad(key, f"a sequence has no {which} (PS3.18 §F.2.2)")
    if which == "InlineBinary":
        try:
            raw = base64.b64decode(data, validate=False)
        except ValueError as exc:
            raise _bad(key, f"InlineBinary is not base64: {exc}") from exc
        if vr in _BINARY_VRS:
            return raw
        # Only O*/UN may be inline (Table F.2.3-1); read anything else as
        # its Value Field in Explicit VR Little Endian.
        return decode_value(vr, raw, True)
    if handler is None:
        warnings.warn(f"DICOM JSON attribute {key}: no bulk_data_uri_handler to fetch "
                      f"{data!r}; the element is left empty", ValueWarning, stacklevel=4)
        return empty_value(vr)
    return handler(key, vr, data)


def _dataset(data: dict, handler: Any) -> Dataset:
    if not isinstance(data, dict):
        raise MalformedDataError(f"a DICOM JSON dataset is an object, not {type(data).__name__}")
    ds = Dataset()
    for key, obj in data.items():
        if not (isinstance(key, str) and len(key) == 8 and set(key) <= _HEX):
            raise MalformedDataError(
                f"DICOM JSON attribute name {key!r} is not 8 hex digits (PS3.18 §F.2.2)")
        tag = int(key, 16)
        if not isinstance(obj, dict):
            raise _bad(key, "is not an object")
        vr = obj.get("vr")
        if vr is None:
            # Required by §F.2.2; the dictionary knows public tags.
            entry = dictionary_entry(tag)
            if entry is None or entry.vr in AMBIGUOUS_VRS or entry.vr in ("NONE", ""):
                raise _bad(key, "has no vr")
            vr = entry.vr
        ds.add_new(tag, vr, _element_value(key, vr, obj, handler))
    return ds


def dataset_from_json(
    data: str | bytes | bytearray | dict[str, Any],
    *,
    bulk_data_uri_handler: Callable[..., Any] | None = None,
) -> Dataset:
    """Build a :class:`~dicomfast.dataset.Dataset` from a DICOM JSON Model object.

    ``data`` is the JSON text or the already parsed object of one dataset (a
    QIDO-RS response is a list of them: convert each). Values get the types
    ``decode_value`` gives: ``PersonName``, ``DSfloat``, ``IS``, ``int`` tags,
    ``bytes`` for InlineBinary, ``MultiValue`` for several values, ``""`` or
    ``None`` for empty ones.

    ``bulk_data_uri_handler`` fetches a BulkDataURI: it is called as
    ``handler(tag, vr, uri)``, or ``handler(uri)`` if it takes one argument
    (as pydicom's ``Dataset.from_json`` calls it), and returns the value.
    Without one such elements are empty, with a
    :class:`~dicomfast.errors.ValueWarning`. Malformed input raises
    :class:`~dicomfast.errors.MalformedDataError`.
    """
    if isinstance(data, str | bytes | bytearray):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise MalformedDataError(f"not JSON: {exc}") from exc
    if isinstance(data, list):
        raise MalformedDataError(
            "a list of DICOM JSON datasets: convert each with dataset_from_json")
    return _dataset(data, _bulk_handler(bulk_data_uri_handler))  # type: ignore[arg-type]


_dataset_module.extensions.update(to_json_dict=dataset_to_json_dict, to_json=dataset_to_json,
                                  from_json=dataset_from_json)
