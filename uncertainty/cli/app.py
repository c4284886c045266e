"""`run(main)`: absl's app.run for the binaries, with one-line errors and exit codes."""

import os
import signal
import sys

from absl import app, flags, logging

from uncertainty.cli import notices
from uncertainty.cli.common_flags import define_progress_flags
from uncertainty.infra import interrupts, progress
from uncertainty.infra.errors import UserError

FLAGS = flags.FLAGS


def _fail(program: str, message: str, code: int = 2) -> None:
    print(f"{os.path.basename(program)}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _parse_flags(argv):
    try:
        return FLAGS(argv)
    except flags.Error as e:
        _fail(argv[0], str(e))


def run(main, argv: list[str] | None = None) -> None:
    """Runs `main(argv)` (the command line's, or `argv`) like absl's app.run, but a
    UserError or a bad flag ends in one line and exit code 2, a stop request in one
    line and exit code 128 + the signal (Ctrl-C's SIGINT: 130; SIGTERM: 143).
    The log shows INFO lines; progress is shown as --progress and --progress_seconds
    say (a bar when stderr is a terminal)."""
    define_progress_flags()

    def guarded(argv):
        logging.set_verbosity(logging.INFO)
        progress.ENABLED, progress.LOG_SECONDS = FLAGS.progress, FLAGS.progress_seconds
        progress.TERMINAL = notices.stderr_is_terminal()
        interrupts.install()
        try:
            interrupts.check()  # a request during start-up (`install(hold=True)`)
            main(argv)
        except UserError as e:
            progress.close_all()
            _fail(argv[0], str(e), code=getattr(e, "exit_code", 2))
        except KeyboardInterrupt as e:
            progress.close_all()
            signum = interrupts.signal_of(e)
            stopped = ("interrupted" if signum == signal.SIGINT
                       else f"stopped by {signal.Signals(signum).name}")
            where = getattr(e, "where", "")
            _fail(argv[0], f"{stopped}{where}; every file written so far is whole: run the same "
                           f"command again to finish the work", code=128 + signum)
        finally:
            progress.close_all()

    app.run(guarded, argv=argv, flags_parser=_parse_flags)
