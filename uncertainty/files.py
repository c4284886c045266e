"""Atomic writes: a reader never sees a half-written file (temp file + rename)."""

import hashlib
import json
import os
import tempfile

import numpy as np

TMP_PREFIX = ".tmp-"
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomically(path: str, write, mode: str = "w") -> None:
    """Calls `write(f)` on a temporary file beside `path`, then renames it to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=os.path.basename(path))
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from other users
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, obj) -> None:
    write_atomically(path, lambda f: json.dump(obj, f, indent=2, sort_keys=True))


def write_text(path: str, text: str) -> None:
    write_atomically(path, lambda f: f.write(text))


def digest(obj) -> str:
    """SHA-1 of `obj` as sorted-key JSON: a stable identity for configs and cache keys."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def write_npz(path: str, **arrays) -> None:
    write_atomically(path, lambda f: np.savez(f, **arrays), mode="wb")


def write_npy(path: str, array) -> None:
    write_atomically(path, lambda f: np.save(f, array), mode="wb")
