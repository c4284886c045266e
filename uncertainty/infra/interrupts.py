"""A Ctrl-C (SIGINT) that is not lost inside TensorFlow.

Python raises KeyboardInterrupt where the main thread next runs Python code; when that
happens inside TensorFlow's runtime, the exception can be cleared there and the run
goes on. `install()` (the binaries call it) records every SIGINT as well as raising, so
`check()`, called by the training loop between host calls, raises it again."""

import signal

_requested = False


def _handler(signum, frame):
    global _requested
    _requested = True
    raise KeyboardInterrupt


def install() -> None:
    """Routes SIGINT through the recording handler (main thread only)."""
    signal.signal(signal.SIGINT, _handler)


def check() -> None:
    """Raises KeyboardInterrupt if a SIGINT came since `install`."""
    if _requested:
        raise KeyboardInterrupt
