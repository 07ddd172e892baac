"""Print Management vocabulary shared by the SCU and the SCP (PS3.4 Annex H): SOP
classes, the well-known Printer instance, action and event type IDs, the
service-specific statuses, and the Image Display Format grammar."""

from __future__ import annotations

from dicomfast.errors import DicomfastError

# SOP classes (PS3.4 H.3, PS3.6 Annex A).
GRAYSCALE_META = "1.2.840.10008.5.1.1.9"    # Basic Grayscale Print Management Meta
COLOR_META = "1.2.840.10008.5.1.1.18"       # Basic Color Print Management Meta
FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"
GRAYSCALE_IMAGE_BOX = "1.2.840.10008.5.1.1.4"
COLOR_IMAGE_BOX = "1.2.840.10008.5.1.1.4.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"   # the well-known Printer SOP Instance
PRINT_JOB = "1.2.840.10008.5.1.1.14"
META_CLASSES = (GRAYSCALE_META, COLOR_META)
IMAGE_BOX_FOR_META = {GRAYSCALE_META: GRAYSCALE_IMAGE_BOX, COLOR_META: COLOR_IMAGE_BOX}

PRINT_ACTION = 1    # N-ACTION Action Type ID of Film Session and Film Box (H.4.1.2.4, H.4.2.2.4)
# Printer N-EVENT-REPORT Event Type IDs (PS3.4 Table H.4-13) and statuses.
PRINTER_EVENTS = {"NORMAL": 1, "WARNING": 2, "FAILURE": 3}
# Print Job N-EVENT-REPORT Event Type IDs (PS3.4 Table H.4-10).
JOB_EVENTS = {"PENDING": 1, "PRINTING": 2, "DONE": 3, "FAILURE": 4}

# Service-specific statuses (PS3.4 H.4.1.2, H.4.2.2, H.4.3.1).
WARN_SESSION_EMPTY_PAGE = 0xB602        # film session printed with an empty page
WARN_FILM_BOX_EMPTY_PAGE = 0xB603       # film box printed with no image set
WARN_IMAGE_DEMAGNIFIED = 0xB604         # image larger than its box: demagnified
FAIL_SESSION_NO_FILM_BOX = 0xC600       # film session has no film box to print
FAIL_SESSION_QUEUE_FULL = 0xC601
FAIL_FILM_BOX_QUEUE_FULL = 0xC602
FAIL_IMAGE_TOO_LARGE = 0xC603
FAIL_UNPRINTED_FILM_BOX = 0xC616        # a film box exists that was not printed yet

FILM_SIZES_INCHES = {
    "8INX10IN": (8, 10), "8_5INX11IN": (8.5, 11), "10INX12IN": (10, 12),
    "10INX14IN": (10, 14), "11INX14IN": (11, 14), "11INX17IN": (11, 17),
    "14INX14IN": (14, 14), "14INX17IN": (14, 17), "24CMX24CM": (9.45, 9.45),
    "24CMX30CM": (9.45, 11.81), "A4": (8.27, 11.69), "A3": (11.69, 16.54),
}


class DisplayFormatError(DicomfastError, ValueError):
    """An Image Display Format (2010,0010) that cannot be laid out."""


def parse_display_format(value: str) -> list[int]:
    """Images per row, top to bottom, of an Image Display Format (PS3.3 C.13.8):
    ``STANDARD\\C,R`` (R rows of C), ``ROW\\a,b,...`` (row i holds a_i images),
    ``COL\\a,b,...`` (column i holds a_i images; returned as columns, flagged by
    :func:`is_column_format`). SLIDE, SUPERSLIDE and CUSTOM are not supported."""
    text = str(value).strip().upper()
    kind, _, rest = text.partition("\\")
    try:
        numbers = [int(x) for x in rest.split(",")] if rest else []
    except ValueError:
        raise DisplayFormatError(f"bad Image Display Format {value!r}") from None
    if not numbers or any(n < 1 for n in numbers):
        raise DisplayFormatError(f"bad Image Display Format {value!r}")
    if kind == "STANDARD":
        if len(numbers) != 2:
            raise DisplayFormatError(f"STANDARD takes columns,rows: {value!r}")
        cols, rows = numbers
        return [cols] * rows
    if kind in ("ROW", "COL"):
        return numbers
    raise DisplayFormatError(f"unsupported Image Display Format {value!r}")


def is_column_format(value: str) -> bool:
    return str(value).strip().upper().startswith("COL\\")


def box_count(value: str) -> int:
    return sum(parse_display_format(value))
