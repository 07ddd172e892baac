from typing import Any

PROGRESSIONS: tuple[str, ...]

def info(src: Any, codec: str = "JPEG 2000") -> dict[str, Any]: ...
