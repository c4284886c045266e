"""Progress of long work, with rate and ETA: a tqdm bar on a terminal, a log line every
`LOG_SECONDS` otherwise (and a last one at the end). `ENABLED = False` (the binaries'
--noprogress) silences it. The log lines are written here, not by tqdm: off a terminal
(a job's log, a pipe) they are one absl log line each, whole, at a fixed interval.

    meter = Progress(total, "predicting checkpoints", "function")
    for ...:
        ...
        meter.update()
    meter.close()
"""

import sys
import time

import tqdm
from absl import logging

ENABLED = True
# Whether stderr is a terminal (None: ask it). A binary whose stderr passes through a
# filter sets what it was before (`cli.notices.stderr_is_terminal`).
TERMINAL = None
_open: list = []  # meters not closed yet (`close_all`)
LOG_SECONDS = 30.0  # between log lines when stderr is not a terminal
BAR_SECONDS = 0.5  # between redraws of the bar


def clock(seconds: float) -> str:
    """`seconds` as MM:SS, or H:MM:SS from an hour on."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Counts `total` units of `what` (`unit` names one) as `update(n)` reports them."""

    def __init__(self, total: int, what: str, unit: str = "step"):
        self.total, self.what, self.unit = max(int(total), 0), what, unit
        self.done, self.began = 0, time.time()
        self._shown = self.began
        self._closed = not ENABLED or self.total == 0
        self._bar = None
        if not self._closed:
            _open.append(self)
            if sys.stderr.isatty() if TERMINAL is None else TERMINAL:
                self._bar = tqdm.tqdm(total=self.total, desc=what, unit=unit,
                                      file=sys.stderr, mininterval=BAR_SECONDS,
                                      dynamic_ncols=True)

    def line(self) -> str:
        """`what`: done/total units (percent), rate, elapsed and ETA."""
        elapsed = max(time.time() - self.began, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        units = self.unit if self.unit.endswith("s") else self.unit + "s"
        return (f"{self.what}: {self.done}/{self.total} {units} "
                f"({100 * self.done / self.total:.0f}%), {rate:.3g} {units}/s, "
                f"{clock(elapsed)} elapsed, ETA "
                f"{clock(eta) if eta == eta else '?'}")

    def update(self, n: int = 1) -> None:
        if self._closed:
            return
        self.done = min(self.done + n, self.total)
        now = time.time()
        if self._bar is not None:
            self._bar.update(n)
        elif now - self._shown >= LOG_SECONDS:
            logging.info("%s", self.line())
            self._shown = now

    def close(self) -> None:
        """Ends the bar's line, or logs the last line (if anything was shown or the
        work took longer than one interval)."""
        if self._closed:
            return
        self._closed = True
        _open.remove(self)
        if self._bar is not None:
            self._bar.close()
        elif self._shown > self.began or time.time() - self.began >= LOG_SECONDS:
            logging.info("%s", self.line())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def close_all() -> None:
    """Closes every meter still open (work ended by an error or an interrupt), so that
    what is printed next starts on its own line."""
    for meter in list(_open):
        meter.close()
