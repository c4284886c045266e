"""The library's shape: layers whose imports flow one way (import-linter's contracts in
.importlinter), no import cycle, modules that do nothing when imported, and the
binaries' filter of TensorFlow's start-up notices."""

import os
import subprocess
import sys
import textwrap

import grimp
from conftest import REPO


def test_import_contracts_hold():
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "lint-imports"),
                           "--config", os.path.join(REPO, ".importlinter")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_no_module_imports_itself_through_others():
    """No cycle, counting the imports inside functions: for every direct import a -> b,
    no chain leads back from b to a."""
    graph = grimp.build_graph("uncertainty")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back and not imported.startswith(module + "."):
                cycles.append((module, *back))
    # a package importing its own submodules (re-exports) is not a cycle
    cycles = [c for c in cycles if not any(b.startswith(c[0] + ".") for b in c[1:2])]
    assert not cycles, cycles[:5]


IMPORT_EVERYTHING = textwrap.dedent("""
    import os, pkgutil, importlib, sys, warnings
    from absl import flags
    def umask():
        with open("/proc/self/status") as f:
            return [line for line in f if line.startswith("Umask:")]
    def state():
        registry = {m: sorted(f.name for f in fs)
                    for m, fs in flags.FLAGS.flags_by_module_dict().items()}
        return (dict(os.environ), [os.fstat(fd).st_ino for fd in (0, 1, 2)], registry,
                sys.stderr.fileno(), list(warnings.filters), umask(),
                matplotlib.get_backend(), dict(matplotlib.rcParams))
    # the third-party libraries' own import-time effects are theirs, not ours
    import tensorflow, tensorflow_datasets, tensorflow_probability, tf_keras
    import matplotlib, sklearn.metrics
    before = state()
    import uncertainty
    names = [m.name for m in pkgutil.walk_packages(uncertainty.__path__, "uncertainty.")]
    for name in names:
        importlib.import_module(name)
    after = state()
    assert before[0] == after[0], set(after[0].items()) ^ set(before[0].items())
    for what, was, now in zip(("descriptors", "flags", "stderr", "warnings filters",
                               "umask", "matplotlib backend", "rcParams"),
                              before[1:], after[1:]):
        assert was == now, (what, was, now)
    print(len(names), "modules")
""")


def test_importing_any_module_touches_no_descriptor_environment_flag_or_global():
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[0]) >= 60


NOTICE_AND_ERROR = textwrap.dedent("""
    import os, sys
    from uncertainty.cli import notices
    notices.hide_tensorflow_notices()
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\\n")
    os.write(2, b"I0000 00:00:1796.1   15267 cpu_feature_guard.cc:227] This TensorFlow "
                b"binary is optimized to use available CPU instructions in "
                b"performance-critical operations.\\nTo enable the following instructions: "
                b"AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
                b"compiler flags.\\n")
    os.write(2, b"I0000 00:00:1796.2   15267 cudart_stub.cc:31] Could not find cuda "
                b"drivers on your machine, GPU will not be used.\\n")
    os.write(2, b"E0000 00:00:1796.3   15267 cuda_platform.cc:52] failed call to cuInit\\n")
    print("a Python error line", file=sys.stderr)
    sys.stderr.flush()
    os.write(2, b"F0000 00:00:1796.4   15267 some_op.cc:1] Check failed: fatal")
    os.abort() if sys.argv[1] == "abort" else None
""")


def test_notice_filter_hides_only_the_notices_even_when_the_process_aborts():
    for ending in ("exit", "abort"):
        done = subprocess.run([sys.executable, "-c", NOTICE_AND_ERROR, ending],
                              capture_output=True, text=True, cwd=REPO)
        assert done.stderr.splitlines() == [
            "I0000 00:00:1796.2   15267 cudart_stub.cc:31] Could not find cuda drivers on "
            "your machine, GPU will not be used.",
            "E0000 00:00:1796.3   15267 cuda_platform.cc:52] failed call to cuInit",
            "a Python error line",
            "F0000 00:00:1796.4   15267 some_op.cc:1] Check failed: fatal"], ending
        assert done.returncode == (0 if ending == "exit" else -6)


def test_tensorflow_notices_are_off_with_tf_cpp_min_log_level_0():
    done = subprocess.run([sys.executable, "-c", NOTICE_AND_ERROR, "exit"],
                          capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert "cpu_feature_guard" in done.stderr and "To enable the following" in done.stderr


def test_notice_filter_passes_partial_lines_that_cannot_become_notices():
    """A progress bar redraws with a carriage return and no newline: the filter copies
    such text at once, and holds back only what may still become a notice."""
    from uncertainty.cli import notices

    assert not notices._may_become_notice(b"\rtraining:  50%|#####")
    assert not notices._may_become_notice(b"epoch 3/10")
    for start in (b"I0000 00:00:17", b"WARNING: All log", b"WARN", b"To enable the"):
        assert notices._may_become_notice(start)


TERMINAL_BEFORE_FILTER = textwrap.dedent("""
    import os, pty, sys
    from uncertainty.cli import notices
    from uncertainty.infra import progress
    assert os.isatty(2)
    notices.hide_tensorflow_notices()
    print(os.isatty(2), notices.stderr_is_terminal())
""")


def test_a_terminal_is_still_known_as_one_behind_the_filter():
    """Behind the filter descriptor 2 is a pipe; progress bars still know the user's
    stderr is a terminal (a pseudo-terminal here)."""
    import pty

    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", TERMINAL_BEFORE_FILTER], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=terminal, text=True)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0 and done.stdout.split() == ["False", "True"]


BEFORE_TENSORFLOW = textwrap.dedent("""
    import os, sys
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
    from uncertainty.cli import startup
    startup.before_tensorflow()
    import tensorflow as tf, tf_keras
    from uncertainty import models
    from uncertainty.cli import binaries
    for name in sorted(os.listdir("baselines")):  # every binary, as the test above
        if name.endswith(".py"):
            binaries.load(name.removesuffix(".py"))
    models.build("cnn1d", (40, 1), 10)
    print("keras.src" in sys.modules, tf.keras.Model is tf_keras.Model,
          "tensorflow_probability" in sys.modules)
    models.build("cnn1d", (40, 1), 10, variational=models.Variational(0.1, 0.01, 100))
    print("tensorflow_probability" in sys.modules)
""")


def test_binaries_start_without_keras_3_or_tfp():
    """Each binary's first statement (under __main__, before any other import) is
    `startup.before_tensorflow()`; after it, TensorFlow imports tf_keras as tf.keras,
    the library's Keras, and never Keras 3 (seconds of every start). TFP comes with the
    first variational model (or Gaussian sample), not with the binaries' imports."""
    import ast
    for name in sorted(os.listdir(os.path.join(REPO, "baselines"))):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(REPO, "baselines", name)).read())
        body = [node for node in tree.body if not isinstance(node, ast.Expr)]
        main = next(i for i, node in enumerate(body) if isinstance(node, ast.If))
        assert all(isinstance(n, ast.ImportFrom) and n.module.startswith("uncertainty.")
                   for n in body[:main]), name
        assert ast.unparse(body[main].body[0]) == "startup.before_tensorflow()", name
    done = subprocess.run([sys.executable, "-c", BEFORE_TENSORFLOW], capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True", "False", "True"]


def test_every_binary_loads_beside_the_others():
    """The binaries share one process (`python -m uncertainty.cli.binaries`, the tests,
    notebooks): loaded together, none defines a flag another defined (absl's
    DuplicateFlagError)."""
    from uncertainty.cli import binaries

    names = sorted(n.removesuffix(".py") for n in os.listdir(os.path.join(REPO, "baselines"))
                   if n.endswith(".py"))
    assert {"train", "export", "reproduce", "similarity", "subspace"} <= set(names)
    for name in names:
        assert callable(binaries.load(name).main), name
