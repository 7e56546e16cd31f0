"""Make the unit functions of these tests importable by worker processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# Workers started by multiprocessing inherit sys.path; Dask's nannies may not, so say it twice.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [HERE, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
