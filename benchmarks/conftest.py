import sys
from pathlib import Path

# The corpus listing lives with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
