"""Claims: at most one process computes a run at a time, across processes and machines that share storage.

A claim is a file created atomically (``O_CREAT | O_EXCL``) in the run's folder, holding who made it.
Its holder refreshes it every ``HEARTBEAT_S`` from a background thread; a claim whose holder is a dead
process on this machine, or whose file has not been refreshed for ``STALE_S``, is taken over (the run
then resumes from its last saved cycle). A process that finds a live claim either waits for it to be
released or, asked not to wait, moves on to other work.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLAIM_FILE = "claim.json"
HEARTBEAT_S = 30.0
STALE_S = 300.0
POLL_S = 1.0


class ClaimedElsewhere(Exception):
    """Another live process holds the claim (raised only when not waiting)."""


def holder() -> str:
    """This process, as it appears in claims and records: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(dict(holder=holder(), since=time.time()), f)
    return True


def _is_stale(path: Path) -> bool:
    """The claim's holder is gone: a dead process on this host, or no heartbeat for STALE_S."""
    try:
        info = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (FileNotFoundError, json.JSONDecodeError):
        return True  # released meanwhile, or caught half-written: try again
    host, _, pid = info.get("holder", "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return age > STALE_S


@contextmanager
def claimed(folder: str | Path, wait: bool = True) -> Iterator[None]:
    """Holds the claim on ``folder`` for the block. A live claim elsewhere: wait for it (``wait``) or raise
    ClaimedElsewhere; a stale one is taken over."""
    path = Path(folder) / CLAIM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    while not _try_create(path):
        if _is_stale(path):
            path.unlink(missing_ok=True)
        elif not wait:
            raise ClaimedElsewhere(f"{path.parent} is being computed by {path.read_text()}")
        else:
            time.sleep(POLL_S)
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)
