from typing import Any

available: bool
DIRECT_ALIGN: int

def commit_batch(jobs: list[Any], dir_fd: int, do_fsync: bool) -> None: ...
def create_whole(dir_fd: int, chunks: list[Any], stage: Any = None) -> int: ...
