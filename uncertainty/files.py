"""Every file the project reads or writes goes through here, on `tf.io.gfile`: local
paths, gs:// and ram:// alike. Writes are atomic: a reader never sees a half-written
file (a temporary name beside the target, then a rename)."""

import hashlib
import io
import json
import os
import uuid

import numpy as np
import tensorflow as tf

TMP_PREFIX = ".tmp-"
_UMASK = os.umask(0)
os.umask(_UMASK)
gfile = tf.io.gfile


def _local(path: str) -> str | None:
    """`path` as a local filesystem path, or None for a remote one (gs://, ram://)."""
    if path.startswith("file://"):
        return path[len("file://"):]
    return None if "://" in path else path


def normpath(path: str) -> str:
    """os.path.normpath that keeps a scheme's "//" (gs://bucket/x/ -> gs://bucket/x)."""
    scheme, sep, rest = path.partition("://")
    return scheme + sep + os.path.normpath(rest) if sep else os.path.normpath(path)


def exists(path: str) -> bool:
    return gfile.exists(path)


def isdir(path: str) -> bool:
    return gfile.isdir(path)


def listdir(path: str) -> list[str]:
    """The names in directory `path` (without the "/" some filesystems add to folders)."""
    return [name.rstrip("/") for name in gfile.listdir(path)]


def glob(pattern: str) -> list[str]:
    """Paths matching `pattern` (*, ?, [...] within one path component), sorted."""
    return sorted(gfile.glob(pattern))


def find(directory: str, name: str) -> list[str]:
    """Paths of the files called `name` anywhere under `directory` (as a recursive
    glob of directory/**/name: hidden folders skipped), sorted."""
    found = []
    for parent, folders, names in gfile.walk(directory):
        folders[:] = [f for f in folders if not f.rstrip("/").startswith(".")]
        found += [os.path.join(parent, n) for n in names if n == name]
    return sorted(found)


def makedirs(path: str) -> None:
    gfile.makedirs(path)


def remove(path: str) -> None:
    gfile.remove(path)


def read_bytes(path: str) -> bytes:
    with gfile.GFile(path, "rb") as f:
        return f.read()


def read_json(path: str):
    return json.loads(read_bytes(path))


def read_npz(path: str):
    """The arrays of an .npz file as an `np.lib.npyio.NpzFile` (a mapping and a
    context manager); an .npy file's array."""
    return np.load(io.BytesIO(read_bytes(path)))


def write_atomically(path: str, write, mode: str = "w") -> None:
    """Calls `write(f)` on an in-memory file (binary if "b" in `mode`), then stores
    its content at `path` atomically."""
    buffer = io.BytesIO() if "b" in mode else io.StringIO()
    write(buffer)
    _store(path, buffer.getvalue(), "wb" if "b" in mode else "w")


def _store(path: str, content, mode: str) -> None:
    """Writes `content` to a temporary name beside `path`, then renames it over `path`."""
    directory, name = os.path.split(path)
    if directory:
        gfile.makedirs(directory)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{name}")
    try:
        with gfile.GFile(tmp, mode) as f:
            f.write(content)
        local = _local(tmp)
        if local is not None:
            fd = os.open(local, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(local, 0o666 & ~_UMASK)  # results stay readable by other users
        gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        if gfile.exists(tmp):
            gfile.remove(tmp)
        raise


def write_bytes(path: str, data: bytes) -> None:
    _store(path, data, "wb")


def write_text(path: str, text: str) -> None:
    _store(path, text, "w")


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def write_npz(path: str, **arrays) -> None:
    write_atomically(path, lambda f: np.savez(f, **arrays), mode="wb")


def write_npy(path: str, array) -> None:
    write_atomically(path, lambda f: np.save(f, array), mode="wb")


def write_figure(path: str, fig, **savefig_kwargs) -> None:
    """A matplotlib figure, `fig.savefig(**savefig_kwargs)`, stored atomically."""
    write_atomically(path, lambda f: fig.savefig(f, **savefig_kwargs), mode="wb")


def digest(obj) -> str:
    """SHA-1 of `obj` as sorted-key JSON: a stable identity for configs and cache keys."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()
