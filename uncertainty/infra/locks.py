"""One writer per directory: `hold(directory)` locks a run or output directory while a
process writes it.

The lock is a file, `<directory>/.lock`, holding its owner: host, pid, the process's
start time, the command, when it was taken, and a heartbeat refreshed every
`HEARTBEAT_SECONDS`. On local disks it appears whole and only if absent (written
under a temporary name, then hard-linked to `.lock`). A second writer gets one
line naming the owner. A lock is stale, and taken over with a log line, when its
owner is gone: on the same host, when no process with that pid and start time runs;
from another host (a shared filesystem), when its heartbeat is older than
`STALE_SECONDS` (hosts' clocks are assumed to agree within that). On object stores
(gs://), which have no exclusive create, the lock is best effort: it is written if
absent, then read back, and a process that does not find its own token there gives
way; two processes starting within the same moment may both proceed.

Written here rather than taken from `filelock`: its locks are fcntl/flock locks of one
host's local disk, while a run directory may be written from several hosts (a shared
filesystem, a multi-worker job) or live on an object store, and a refused writer must
be told who holds the directory.
"""

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid

from absl import logging

from uncertainty.infra import files
from uncertainty.infra.errors import UserError, reason

LOCK_NAME = ".lock"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (Linux: clock ticks since boot), None if no such
    process runs or it cannot be known."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the process that took the lock `owner` still runs (pid reuse aside)."""
    if owner.get("host") != socket.gethostname():
        return time.time() - owner.get("heartbeat", 0) < STALE_SECONDS
    started = _start_time(owner["pid"])
    if started is not None or os.path.exists("/proc/self/stat"):
        return started is not None and started == owner.get("start_time")
    try:  # no /proc: is any process with that pid there?
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _read(path: str) -> bytes | None:
    """The lock file's bytes, None if there is none."""
    try:
        return files.read_bytes(path)
    except Exception:  # noqa: BLE001 (gone between a listing and the read)
        if files.exists(path):
            raise
        return None


def _owner(content: bytes) -> dict:
    """The owner a lock file's `content` names, {} if it names none (hand-made or
    damaged)."""
    try:
        owner = json.loads(content)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else {}


def _create(path: str, content: str) -> bool:
    """Creates the lock file with `content` unless it exists; whether it did."""
    local = files.local_path(path)
    if local is None:
        if files.exists(path):
            return False
        files.write_text(path, content)
        return True
    tmp = f"{local}.{uuid.uuid4().hex[:8]}.new"  # not .tmp-*: the holder removes those
    with open(tmp, "w") as f:
        f.write(content)
    try:
        os.link(tmp, local)  # atomic, and fails if the lock exists
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)


class _Lock:
    def __init__(self, directory: str, what: str):
        self.directory, self.what = directory, what
        self.path = os.path.join(directory, LOCK_NAME)
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "start_time": _start_time(os.getpid()),
                      "command": " ".join(os.path.basename(a) if i == 0 else a
                                          for i, a in enumerate(sys.argv))[:300],
                      "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                      "token": uuid.uuid4().hex}
        self._stop = threading.Event()
        self._beat = None

    def acquire(self) -> None:
        self.created = not files.exists(self.directory)
        try:
            files.makedirs(self.directory)
        except Exception as e:  # noqa: BLE001 (OSError or a TensorFlow error)
            raise UserError(f"cannot write {self.what} {self.directory} "
                            f"({reason(e)}); pass a directory you can write "
                            f"to") from None
        for _ in range(3):
            if self._try_create():
                self._start_heartbeat()
                return
            content = _read(self.path)
            if content is None:
                continue  # released meanwhile
            holder = _owner(content)
            if holder and _alive(holder):
                raise UserError(
                    f"{self.what} {self.directory} is being written by another process "
                    f"(pid {holder['pid']} on {holder.get('host', '?')}, since "
                    f"{holder.get('since', '?')}: {holder.get('command', '?')}); wait for "
                    f"it to finish or use another directory (if that process is gone, "
                    f"delete {self.path})")
            self._take_over(content, holder)
        raise UserError(f"could not lock {self.directory}: other processes keep taking "
                        f"its lock; run one writer at a time")

    def _try_create(self) -> bool:
        try:
            if not _create(self.path, self._content()):
                return False
        except Exception as e:  # noqa: BLE001 (OSError or a TensorFlow error)
            raise UserError(f"cannot write {self.what} {self.directory} "
                            f"({reason(e)}); pass a directory you can write "
                            f"to") from None
        if files.local_path(self.path) is None:  # no exclusive create: did we win?
            return self._mine()
        return True

    def _mine(self) -> bool:
        content = _read(self.path)
        return content is not None and _owner(content).get("token") == self.owner["token"]

    def _take_over(self, content: bytes, holder: dict) -> None:
        """Removes the stale lock whose file held `content`: renamed aside first, then
        checked, so that a fresh lock another process made meanwhile is put back."""
        described = (f"pid {holder['pid']} on {holder.get('host', '?')}, since "
                     f"{holder.get('since', '?')}" if holder else "unreadable")
        logging.warning("%s: taking over a stale lock (%s): its process is gone",
                        self.directory, described)
        aside = f"{self.path}.stale-{self.owner['token']}"
        try:
            files.gfile.rename(self.path, aside)
        except Exception:  # noqa: BLE001 (another process took it over first)
            return
        if files.read_bytes(aside) != content and not files.exists(self.path):
            files.gfile.rename(aside, self.path)  # a live lock: put it back
        elif files.exists(aside):
            files.remove(aside)

    def _content(self) -> str:
        return json.dumps({**self.owner, "heartbeat": time.time()})

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception):
                    if not self._mine():
                        logging.warning("%s: another process took this directory's lock "
                                        "over; stop one of them", self.directory)
                        return
                    files.write_text(self.path, self._content())

        self._beat = threading.Thread(target=beat, daemon=True, name="lock-heartbeat")
        self._beat.start()

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        with contextlib.suppress(Exception):
            if self._mine():
                files.remove(self.path)
            if self.created and not files.listdir(self.directory):
                files.gfile.rmtree(self.directory)  # refused before writing anything


@contextlib.contextmanager
def hold(directory: str, what: str = "--output_dir"):
    """Locks `directory` (created if need be, and removed again if nothing was
    written to it) for the duration; `what` names it in messages (the flag that chose
    it). Temporary files that a killed writer left in it are removed once the lock is
    held."""
    lock = _Lock(directory, what)
    lock.acquire()
    try:
        files.remove_leftovers(directory)
        yield
    finally:
        lock.release()
