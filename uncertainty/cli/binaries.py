r"""The binaries of baselines/ as modules, and several calls of binaries in one process.

  python -m uncertainty.cli.binaries subspace --base_run=runs/seed0 --output_dir=a \
      ::: subspace --base_run=runs/seed1 --output_dir=b ::: similarity --runs=runs ...

runs `python baselines/subspace.py` with the first call's flags, then each following
call's binary with its flags, in one process: TensorFlow starts once (~6-9 s of a small
analysis's ~10-15 s on a 2-core CPU), and the networks, traced steps and data the
library keeps per process are shared by the calls. `reproduce.py` runs a study's
stages of several small calls this way (`scales.Stage`). Each call runs as it would
alone: its flags start from their defaults, and an error or a stop request ends it with
its one line and exit code. The first call that fails ends the process with its code;
the calls after it do not run.
"""

import os
import sys

from uncertainty.cli import startup
from uncertainty.study import scales


def unknown_binary(calls: list[tuple[str, tuple]]) -> str | None:
    """The error line for the first call whose binary baselines/ does not have."""
    for name, _ in calls:
        if not os.path.exists(scales.binary_path(name)):
            return (f"binaries.py: error: {name or 'nothing'!r} is not a binary of "
                    f"{scales.BASELINES}; each call is a binary's name (e.g. subspace), "
                    f"then its flags, calls separated by '{scales.SEPARATOR}'")
    return None


if __name__ == "__main__":  # a command line: checked, then set up before TensorFlow
    _CALLS = scales.split_calls(sys.argv[1:])
    _ERROR = unknown_binary(_CALLS)
    if _ERROR:
        print(_ERROR, file=sys.stderr)
        sys.exit(2)
    startup.before_tensorflow()

import importlib.util  # noqa: E402

from absl import flags, logging  # noqa: E402

from uncertainty.cli import app  # noqa: E402


def load(name: str):
    """baselines/<name>.py imported as the module `binary_<name>`, once per process (its
    flags are defined when it is first imported)."""
    module_name = f"binary_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, scales.binary_path(name))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_each(calls: list[tuple[str, tuple]]) -> int:
    """Runs each call (binary, flags): baselines/<binary>.py's main under `app.run`, in
    turn; the exit code of the first that fails, else 0."""
    for i, (name, args) in enumerate(calls):
        main = load(name).main
        flags.FLAGS.unparse_flags()  # every call starts from the defaults
        logging.set_verbosity(logging.INFO)
        if len(calls) > 1:
            logging.info("call %d/%d: %s.py %s", i + 1, len(calls), name, " ".join(args))
        try:
            app.run(main, [scales.binary_path(name), *args])
        except SystemExit as e:
            if e.code not in (None, 0):
                return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(run_each(_CALLS))
