r"""The binaries of baselines/ as modules, and several calls of one binary in one process.

  python -m uncertainty.cli.binaries subspace --base_run=runs/seed0 --output_dir=a \
      ::: --base_run=runs/seed1 --output_dir=b

runs `python baselines/subspace.py` with each call's flags in turn, in one process:
TensorFlow starts once (~6 s of a small analysis's ~10 s on a 2-core CPU), and the
networks, traced steps and data the library keeps per process are shared by the calls.
`reproduce.py` runs a study's stages of several small calls of one binary this way
(`scales.Stage`). Each call runs as it would alone: its flags start from their
defaults, and an error or a stop request ends it with its one line and exit code. The
first call that fails ends the process with its code; the calls after it do not run.
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import importlib.util
import os
import sys

from absl import flags, logging

from uncertainty.cli import app
from uncertainty.study import scales


def load(name: str):
    """baselines/<name>.py imported as the module `binary_<name>`, once per process (its
    flags are defined when it is first imported)."""
    module_name = f"binary_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, os.path.join(scales.BASELINES, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_each(name: str, commands: list[tuple]) -> int:
    """Runs baselines/<name>.py (`app.run` of its main) with each of `commands`' flags
    in turn; the exit code of the first that fails, else 0."""
    main = load(name).main
    program = os.path.join(scales.BASELINES, f"{name}.py")
    for i, args in enumerate(commands):
        flags.FLAGS.unparse_flags()  # every call starts from the defaults
        logging.set_verbosity(logging.INFO)
        if len(commands) > 1:
            logging.info("call %d/%d: %s.py %s", i + 1, len(commands), name, " ".join(args))
        try:
            app.run(main, [program, *args])
        except SystemExit as e:
            if e.code not in (None, 0):
                return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.path.exists(os.path.join(scales.BASELINES,
                                                            f"{sys.argv[1]}.py")):
        print(f"binaries.py: error: the first argument must name a binary of "
              f"{scales.BASELINES} (e.g. subspace), then its flags, calls separated by "
              f"'{scales.SEPARATOR}'", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_each(sys.argv[1], scales.split_commands(sys.argv[2:])))
