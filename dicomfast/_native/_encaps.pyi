from typing import Any

MARKER_NONE: int
MARKER_JPEG: int
MARKER_J2K: int

def frame_spans(value: Any, n_frames: int, marker: int = 0, little_endian: bool = True,
                eot: Any = None, eot_lengths: Any = None
                ) -> tuple[list[tuple[int, int]], list[tuple[int, int, int, int]]]: ...
