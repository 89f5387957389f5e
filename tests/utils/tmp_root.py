"""The tests' temporary directories in RAM (/dev/shm) when it has room.

Nearly every test opens an app on a data dir of its own, and the embedded store's SQLite files sync
to disk when they are created and closed: ~0.5 s of waiting per fresh data dir on a disk, ~0.03 s
on tmpfs (the CPU work is the same). So pytest's temp root moves to /dev/shm, unless the user chose
one (`TMPDIR`, `PYTEST_DEBUG_TEMPROOT`, or `--basetemp`, which wins over both) or it has little room.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

RAM = Path("/dev/shm")
MIN_FREE_BYTES = 2 << 30  # a full run with its retained temp dirs stays well below this


def prefer_ram_tmp_root() -> None:
    """Set `PYTEST_DEBUG_TEMPROOT` (pytest's temp root) to /dev/shm when it is a roomy, writable tmpfs."""
    if "PYTEST_DEBUG_TEMPROOT" in os.environ or "TMPDIR" in os.environ:
        return
    try:
        if (_fs_type(RAM) == "tmpfs" and os.access(RAM, os.W_OK | os.X_OK)
                and shutil.disk_usage(RAM).free >= MIN_FREE_BYTES):
            os.environ["PYTEST_DEBUG_TEMPROOT"] = str(RAM)
    except OSError:  # no /proc/mounts or no /dev/shm: the default temp dir
        pass


def _fs_type(path: Path) -> str | None:
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[1] == str(path):
                return fields[2]
    return None
