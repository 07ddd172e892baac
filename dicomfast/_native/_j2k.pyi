from collections.abc import Sequence
from typing import Any

CODEC: str
PROGRESSIONS: tuple[str, ...]

def library_version() -> str: ...
def info(src: Any) -> dict[str, Any]: ...
def decode(src: Any, out: Any, *, reduce: int = 0, threads: int = 1, strict: bool = False,
           rows: int = 0, columns: int = 0, samples: int = 0, bytes_per_sample: int = 0,
           out_signed: bool | None = None, fix_sign: bool = False) -> int: ...
def encode(src_u8: Any, rows: int, columns: int, samples: int, bits_stored: int,
           is_signed: bool, *, lossless: bool = True,
           ratio: float | Sequence[float] | None = None,
           quality: float | Sequence[float] | None = None, mct: bool | None = None,
           levels: int = 0, progression: str = "LRCP", threads: int = 1, tlm: bool = False,
           bytes_per_sample: int = 0) -> bytes: ...
