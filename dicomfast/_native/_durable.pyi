from typing import Any

available: bool

def commit_batch(jobs: list[Any], dir_fd: int, do_fsync: bool) -> None: ...
