"""Which processes of a data dir are alive: each holds an exclusive ``flock`` on its own file for its lifetime.

``hold`` and ``is_held`` are the mechanism; ``ProcessLock`` / ``is_alive`` use it for process entries, the
store for its spill folders (``server.store.db``). Export jobs record the process running them. A process
that starts up marks a job Failed only when the kernel says its process is gone (its lock can be taken),
so a job still running in another live ``serve`` or ``stdio`` process is left alone. A killed process
(kill -9 included) releases its lock with its last file descriptor: no pid reuse or clock can fool it,
which a pid file could.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from typing import IO


def hold(path: Path) -> IO[bytes]:
    """``path`` locked (flock, exclusive) until the returned file is closed or the process dies."""
    f = open(path, "wb")  # noqa: SIM115 (the caller holds it)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(str(os.getpid()).encode())
    f.flush()
    return f


def is_held(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock. One nobody holds (its holder died) is deleted."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        path.unlink(missing_ok=True)
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


class ProcessLock:
    """This process's entry in ``DATA_DIR/processes``; ``close`` (or exit) ends it."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "processes"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex
        self._file: IO[bytes] | None = hold(self.folder / f"{self.id}.lock")
        # Entries of processes that died without closing (kill -9) would pile up: checking one removes it.
        for entry in self.folder.glob("*.lock"):
            if entry.stem != self.id:
                is_held(entry)

    def close(self) -> None:
        if self._file is not None:
            (self.folder / f"{self.id}.lock").unlink(missing_ok=True)
            self._file.close()
            self._file = None


def is_alive(data_dir: Path, process_id: str | None) -> bool:
    """Whether the process ``process_id`` of this data dir still runs (None, or an unknown id: no)."""
    if not process_id or not process_id.isalnum():
        return False
    return is_held(data_dir / "processes" / f"{process_id}.lock")
