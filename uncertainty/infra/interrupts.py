"""Stop requests (Ctrl-C's SIGINT, and SIGTERM: what `kill`, `timeout`, Kubernetes,
SLURM and preemptible machines send before SIGKILL) that are not lost inside
TensorFlow.

Python raises the handler's exception where the main thread next runs Python code;
when that happens inside TensorFlow's runtime, the exception can be cleared there and
the run goes on. `install()` (the binaries call it) records every request as well as
raising `Interrupted`, so `check()`, called by the training loop between host calls,
raises it again. Inside `deferred()` a first request is only recorded: the training
loop runs its device loop there, so that a stop lands between host calls, where the
state can be saved whole; a second request raises at once."""

import contextlib
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested: int | None = None  # the signal received, if any
_deferred = False  # inside `deferred()`: record, do not raise


class Interrupted(KeyboardInterrupt):
    """A stop request: `signal` is the signal's number (SIGINT for a KeyboardInterrupt
    Python raised itself)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signal = signum
        self.where = ""  # where the work stopped, for the user's line (" in epoch 3 ...")


def _handler(signum, frame):
    global _requested
    again, _requested = _requested is not None, signum
    if not _deferred or again:  # a second request does not wait
        raise Interrupted(signum)


def install(hold: bool = False) -> None:
    """Routes SIGINT and SIGTERM through the recording handler (main thread only), and
    unblocks them: a process inherits its parent's signal mask, and a parent that
    blocked them (a test runner's worker, a job scheduler's wrapper) would otherwise
    leave every request pending, never delivered. With `hold` a request is only
    recorded until the next `install()`: what a binary does first, before its slow
    imports, so that a request during start-up is a clean stop once it runs."""
    global _deferred
    _deferred = hold
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


@contextlib.contextmanager
def deferred():
    """A block that a stop request does not cut short: the request is recorded, and
    `requested()` / `check()` see it after the block."""
    global _deferred
    outer, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = outer


def requested() -> int | None:
    """The signal of the stop request received since `install`, if any."""
    return _requested


def check() -> None:
    """Raises Interrupted if a stop request came since `install`."""
    if _requested is not None:
        raise Interrupted(_requested)


def signal_of(error: KeyboardInterrupt) -> int:
    """The signal behind an interrupt (a bare KeyboardInterrupt: SIGINT)."""
    return getattr(error, "signal", _requested or signal.SIGINT)
