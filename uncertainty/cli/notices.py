"""Hides TensorFlow's start-up notices, and only those, from a binary's stderr.

TensorFlow 2.21 writes a few informational notices through absl's C++ log before
`absl::InitializeLog` runs, at import, where TF_CPP_MIN_LOG_LEVEL, ABSL_MIN_LOG_LEVEL
and GLOG_minloglevel have no effect: only the stderr descriptor reaches them. A binary
calls `hide_tensorflow_notices()` before it imports TensorFlow; from then on every line
written to descriptor 2 (by Python, TensorFlow or any library) passes through a small
forked process that drops the lines `is_notice` matches and copies every other one, in
order. Errors, warnings, GPU-library messages and fatal messages are never matched, and
because the filter is a separate process it still copies what a crashing or aborted
binary wrote last. Text without a newline that cannot begin a notice (a progress bar's
redraw) is copied at once. TF_CPP_MIN_LOG_LEVEL=0 in the environment turns the filter
off. `stderr_is_terminal()` says whether descriptor 2 was a terminal before the filter
took it over (progress bars need to know).
"""

import atexit
import os
import re
import sys

# Each: a notice TensorFlow prints on every start that says nothing about this run.
NOTICES = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called "
               rb"are written to STDERR$"),
    re.compile(rb"^I\d{4} [\d:.]+\s+\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow "
               rb"binary is optimized"),
    re.compile(rb"^To enable the following instructions: .*, in other operations, "
               rb"rebuild TensorFlow with the appropriate compiler flags\.$"),
    re.compile(rb"^I\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\] oneDNN custom operations are on"),
)


def is_notice(line: bytes) -> bool:
    """Whether `line` (without its newline) is one of TensorFlow's start-up notices."""
    return any(pattern.match(line) for pattern in NOTICES)


# How every notice begins: a partial line that could still become one is held back.
_NOTICE_STARTS = (b"WARNING: All log messages", b"To enable the following", b"I")


def _may_become_notice(partial: bytes) -> bool:
    return any(start.startswith(partial[:len(start)]) for start in _NOTICE_STARTS)


def _copy(source: int, target: int) -> None:
    """Copies lines from `source` to `target` until end of file, dropping notices."""
    pending = b""
    while True:
        chunk = os.read(source, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_notice(line))
        if pending and not _may_become_notice(pending):
            kept, pending = kept + pending, b""
        if kept:
            os.write(target, kept)
    if pending and not is_notice(pending):
        os.write(target, pending)


_FILTER_PID = None
_WAS_TERMINAL = None


def stderr_is_terminal() -> bool:
    """Whether descriptor 2 is a terminal, or was one before the filter took it over."""
    return os.isatty(2) if _WAS_TERMINAL is None else _WAS_TERMINAL


def hide_tensorflow_notices() -> None:
    """Routes descriptor 2 through the notice filter for the rest of the process (once;
    nothing when TF_CPP_MIN_LOG_LEVEL=0)."""
    global _FILTER_PID, _WAS_TERMINAL
    if _FILTER_PID is not None or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    _WAS_TERMINAL = os.isatty(2)
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter: holds only the pipe and the real stderr
        os.close(write_end)
        os.close(1)
        try:
            _copy(read_end, 2)
        finally:
            os._exit(0)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    _FILTER_PID = pid
    atexit.register(_drain)


def _drain() -> None:
    """At exit: closes this process's end of the pipe and waits until the filter has
    copied everything, so nothing is written after the binary has returned."""
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        os.waitpid(_FILTER_PID, 0)
    except ChildProcessError:
        pass
