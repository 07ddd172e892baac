from collections.abc import Callable, Iterable
from typing import Any

from dicomfast._native._scan import ElementIndex

class NeedsDataset(Exception): ...

class Plan:
    def __init__(self, actions: dict[int, int], repeaters: list[tuple[int, int, int]],
                 dummies: dict[int, bytes], long_form_vrs: Iterable[int],
                 records_explicit: list[tuple[int, bytes]],
                 records_implicit: list[tuple[int, bytes]]) -> None: ...

def rewrite(index: ElementIndex, plan: Plan, new_uids: Callable[[bytes], bytes],
            explicit: bool) -> tuple[bytes, bytes | None, Any]: ...
