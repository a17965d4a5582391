"""The directory prometheus-client's multiprocess mode writes to, made ready before any
metric exists.

Standard library only, on purpose: prometheus-client decides at its own import whether
it runs in multiprocess mode (by this variable), so `serve` must call this before
anything imports it, and the uvicorn workers it starts inherit the variable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> Path:
    """Before any worker starts: the operator's `PROMETHEUS_MULTIPROC_DIR` emptied of a
    previous run's files (they would be summed in), or a fresh temporary one, set in the
    environment the workers inherit and removed at exit."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory
    directory = Path(tempfile.mkdtemp(prefix="commerce-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    import atexit

    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory
