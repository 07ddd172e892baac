# _status has no Python-level API: its `check` is cimported by the other modules.
