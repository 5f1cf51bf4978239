"""One run per output folder: an `fcntl` lock that the kernel drops when its process dies.

A crashed or killed run therefore never leaves the folder stuck: its lock file may stay behind, but nobody
holds the lock on it, and the next run takes it over. The file records host and pid for the refusal message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = ".hfgen-run.lock"


class RunLock:
    """Held by the main process for the whole `Trainer.train`; refuses a second run into the same folder."""

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self._file = None
        self._created_folder = False

    def acquire(self) -> None:
        self._created_folder = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            file = open(self.path, "a+")
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "another process"
                file.close()
                raise ValueError(
                    f"--output_dir {str(self.path.parent)!r} is in use by a live run ({holder}): wait for it, stop "
                    f"it, or pick another --output_dir."
                ) from None
            if self.path.exists() and os.stat(self.path).st_ino == os.fstat(file.fileno()).st_ino:
                break
            file.close()  # the holder released and unlinked it between our open and our lock: lock the new file
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is None:
            return
        self.path.unlink(missing_ok=True)  # unlink while still locked, so no run can lock the old file meanwhile
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        if self._created_folder and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()  # a run refused before writing anything leaves no trace

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
