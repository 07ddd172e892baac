"""Every test runs with this folder as the working directory, so a subprocess that
imports dicomfast (``python -c ...``, ``python -m dicomfast ...``) gets the installed
build rather than the source tree's package next to it, which has no compiled
modules. Tests name their files from ``__file__``, never from the working directory.
"""

import os
from pathlib import Path

os.chdir(Path(__file__).resolve().parent)
