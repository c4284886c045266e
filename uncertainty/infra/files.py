"""Every file the project reads or writes goes through here, on `tf.io.gfile`: local
paths, gs:// and ram:// alike.

Writes are atomic: a reader never sees a half-written file (a temporary name beside
the target, then a rename), and a write that fails (disk full, no permission) leaves
the previous file as it was and ends in one line (`UserError`). Reads verify: a JSON
file carries a SHA-256 sidecar (`<name>.sha256`, in `sha256sum -c` format) checked on
every read; an .npz file is a zip whose every array carries a CRC-32 that numpy's
reader checks. A file that fails its check raises `CorruptFile`, naming the file and
what to do.
"""

import functools
import hashlib
import io
import json
import os
import time
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

from uncertainty.infra.errors import UserError, reason

TMP_PREFIX = ".tmp-"
CHECKSUM_SUFFIX = ".sha256"
gfile = tf.io.gfile


@functools.cache
def _umask() -> int:
    """The process's umask, read from /proc where it can be (os.umask can only read it
    by setting it for a moment)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def local_path(path: str) -> str | None:
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
    """Removes the file at `path`, and its checksum sidecar if it has one."""
    gfile.remove(path)
    if gfile.exists(path + CHECKSUM_SUFFIX):
        gfile.remove(path + CHECKSUM_SUFFIX)


def remove_leftovers(directory: str) -> None:
    """Removes the temporary files that writers killed mid-write left directly in
    `directory` (call it only while holding the directory's lock)."""
    for name in listdir(directory) if isdir(directory) else []:
        if name.startswith(TMP_PREFIX):
            remove(os.path.join(directory, name))


def read_bytes(path: str) -> bytes:
    with gfile.GFile(path, "rb") as f:
        return f.read()


class CorruptFile(UserError):
    """A file the project wrote that fails its check (truncated, damaged, edited)."""

    def __init__(self, path: str, problem: str,
                 fix: str = "delete it and re-run the command that wrote it"):
        super().__init__(f"{path} is damaged ({problem}); {fix}")
        self.path = path


def read_json(path: str, fix: str | None = None):
    """The JSON value at `path`, verified against its checksum sidecar when it has one
    (files written before sidecars, or cut off between the two renames, are checked
    only as JSON). Raises `CorruptFile` (with `fix` as its advice) if either check
    fails."""
    path = os.fspath(path)
    advice = {} if fix is None else {"fix": fix}
    for attempt in (1, 2):  # a second look, in case a writer was between its renames
        data, expected = read_bytes(path), _recorded_checksum(path)
        problem = None
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            problem = (f"its content does not match its checksum in "
                       f"{os.path.basename(path)}{CHECKSUM_SUFFIX}")
        else:
            try:
                return json.loads(data)
            except ValueError:
                problem = "empty" if not data else "not valid JSON: cut off or overwritten"
        if attempt == 1:
            time.sleep(0.2)
    raise CorruptFile(path, problem, **advice)


def _recorded_checksum(path: str) -> str | None:
    """The SHA-256 the sidecar of `path` records, or None without a sidecar (or with
    one that is not a sha256sum line: then the file is checked as JSON only)."""
    try:
        fields = read_bytes(path + CHECKSUM_SUFFIX).split()
    except (OSError, tf.errors.OpError):
        return None  # none, or removed meanwhile by a writer
    if len(fields) != 2 or len(fields[0]) != 64:
        logging.warning("%s%s is not a sha256sum line; checking %s as JSON only", path,
                        CHECKSUM_SUFFIX, path)
        return None
    return fields[0].decode()


def read_npz(path: str):
    """The arrays of an .npz file as an `np.lib.npyio.NpzFile` (a mapping and a
    context manager); an .npy file's array."""
    return np.load(io.BytesIO(read_bytes(path)))


def read_npz_if_intact(path: str) -> dict | None:
    """Every array of the .npz file at `path` (read whole, so that each one's CRC-32
    is checked), or None when it does not exist or fails to read (cut off, damaged,
    not an npz): a derived file, which the caller computes again. A failure other
    than absence is logged."""
    try:
        with read_npz(path) as saved:
            return {name: saved[name] for name in saved.files}
    except tf.errors.NotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 (zip, CRC, pickle and format errors alike)
        logging.warning("%s is damaged (%s: %s); computing it again", path,
                        type(e).__name__, str(e)[:120])
        return None


def write_atomically(path: str, write, mode: str = "w", durable: bool = True) -> None:
    """Calls `write(f)` on an in-memory file (binary if "b" in `mode`), then stores
    its content at `path` atomically (`_store`)."""
    buffer = io.BytesIO() if "b" in mode else io.StringIO()
    write(buffer)
    _store(path, buffer.getvalue(), "wb" if "b" in mode else "w", durable=durable)


# Object stores whose upload of an object is atomic (it appears whole or not at all),
# and where a rename is a copy: files there are written in place.
ATOMIC_UPLOADS = ("gs://", "s3://")


def _store(path: str, content, mode: str, before_rename=None, durable: bool = True) -> None:
    """Writes `content` to a temporary name beside `path`, then (after calling
    `before_rename()`, if given) renames it over `path`; on an object store with
    atomic uploads (`ATOMIC_UPLOADS`), writes it at `path` directly. A local file is
    flushed to disk before its rename (`durable`), so that after a power loss `path`
    holds the old content or the new; a file that is checked when read and can be made
    again (a prediction cache) may skip that."""
    directory, name = os.path.split(path)
    if directory:
        gfile.makedirs(directory)
    if path.startswith(ATOMIC_UPLOADS):
        if before_rename is not None:
            before_rename()
        try:
            with gfile.GFile(path, mode) as f:
                f.write(content)
        except (OSError, tf.errors.OpError) as e:
            raise UserError(f"cannot write {path} ({reason(e)}); check the bucket's "
                            f"permissions and quota, or pass another output "
                            f"directory") from None
        return
    tmp = os.path.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-{name}")
    try:
        with gfile.GFile(tmp, mode) as f:
            f.write(content)
        local = local_path(tmp)
        if local is not None:
            if durable:
                fd = os.open(local, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.chmod(local, 0o666 & ~_umask())  # results stay readable by other users
        if before_rename is not None:
            before_rename()
        gfile.rename(tmp, path, overwrite=True)
    except BaseException as e:
        if gfile.exists(tmp):
            gfile.remove(tmp)
        if isinstance(e, (OSError, tf.errors.OpError)):
            raise UserError(f"cannot write {path} ({reason(e)}); free space or fix "
                            f"the permissions there, or pass another output directory "
                            f"(what was there is unchanged)") from None
        raise


def write_bytes(path: str, data: bytes) -> None:
    _store(path, data, "wb")


def write_text(path: str, text: str) -> None:
    _store(path, text, "w")


def copy(source: str, target: str) -> None:
    """The file at `source`, stored atomically at `target`."""
    write_bytes(target, read_bytes(source))


def write_json(path: str, obj) -> None:
    """`obj` as JSON at `path`, then its SHA-256 at `path`.sha256. The old sidecar is
    removed once the new file is written under its temporary name, just before the
    rename: a write that fails leaves the old pair whole, and an interruption between
    the renames leaves a file checked as JSON only, never a sidecar that disagrees
    with its file (on an object store the sidecar goes before the upload: a failed
    upload leaves the old file whole, checked as JSON only)."""
    path = os.fspath(path)
    text = json.dumps(obj, indent=2, sort_keys=True)
    sidecar = path + CHECKSUM_SUFFIX

    def remove_old_sidecar():
        if exists(sidecar):
            gfile.remove(sidecar)

    _store(path, text, "w", before_rename=remove_old_sidecar)
    checksum = hashlib.sha256(text.encode()).hexdigest()
    try:
        write_text(sidecar, f"{checksum}  {os.path.basename(path)}\n")
    except UserError as e:
        raise UserError(f"{path} is written, but not its checksum file ({e}); until it is, "
                        f"the file is checked as JSON only") from None


def write_npz(path: str, *, durable: bool = True, **arrays) -> None:
    """`arrays` as an .npz at `path`, stored atomically (`_store`: `durable` flushes it
    to disk before its rename)."""
    write_atomically(path, lambda f: np.savez(f, **arrays), mode="wb", durable=durable)


def write_figure(path: str, fig, **savefig_kwargs) -> None:
    """A matplotlib figure, `fig.savefig(**savefig_kwargs)`, stored atomically."""
    write_atomically(path, lambda f: fig.savefig(f, **savefig_kwargs), mode="wb")


def digest(obj) -> str:
    """SHA-1 of `obj` as sorted-key JSON: a stable identity for configs and cache keys."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()
