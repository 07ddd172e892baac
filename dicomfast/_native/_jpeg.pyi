from typing import Any

LIBRARY: str
MAX_PRECISION: int

def info(src: Any, photometric: str = "") -> dict[str, Any]: ...
def decode(src: Any, dst: Any, *, photometric: str = "", as_rgb: bool = True,
           strict: bool = False) -> int: ...
