"""The scanner's view of the data dictionary, built once on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dicomfast._native import _scan
from dicomfast.dictionary import implicit_vr_table


@lru_cache(maxsize=1)
def vr_table() -> Any:
    """The dictionary's VRs laid out for the C scanner's implicit VR lookup."""
    exact, masks = implicit_vr_table()
    return _scan.VRTable(exact, masks)
