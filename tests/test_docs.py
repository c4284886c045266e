"""The documentation: the mkdocs site builds with --strict (every page, link and API
docstring), no file of the repository refers to a document or module that is not in
it, and the README, licence, citation and changelog are where a reader looks."""

import ast
import functools
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

# Documents outside the repository that no file of it may refer to.
ABSENT_DOCUMENTS = ("PAPER.md", "DESIGN.md", "EXAMPLES.md", "../shared")
LAYERS = ("infra", "core", "datasets", "models", "runs", "samplers", "train", "analyses",
          "study", "cli")


def _tracked_files() -> list[str]:
    """The repository's tracked files that exist, as paths relative to its root."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, cwd=REPO,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in listed if f and os.path.isfile(os.path.join(REPO, f))]


def _is_this_file(path: str) -> bool:
    return os.path.abspath(os.path.join(REPO, path)) == os.path.abspath(__file__)


def _text(path: str) -> str | None:
    """A file's text, or None for a binary file."""
    with open(os.path.join(REPO, path), "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _pages() -> list[str]:
    docs = sorted(f"docs/{name}" for name in os.listdir(os.path.join(REPO, "docs"))
                  if name.endswith(".md"))
    return ["README.md"] + docs


def _without_code_blocks(markdown: str) -> str:
    return re.sub(r"(?ms)^```.*?^```", "", markdown)


def test_mkdocs_builds_strict(tmp_path):
    mkdocs = os.path.join(os.path.dirname(sys.executable), "mkdocs")
    site = tmp_path / "site"
    done = subprocess.run([mkdocs, "build", "--strict", "-d", str(site)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (site / "api" / "index.html").read_text()
    # every layer's modules are documented from their docstrings...
    for module in ("core.metrics", "runs.predictions", "study.report", "train.trainer"):
        assert f'id="uncertainty.{module}"' in api, module
    assert 'id="uncertainty.runs.predictions.RunPredictions.checkpoint"' in api
    # ...shown as written: placeholders are not swallowed as HTML tags (docs/hooks.py)
    assert "test/&lt;m&gt;_&lt;type&gt;_&lt;intensity&gt;" in api
    assert not os.path.exists(site / "hooks.py")


def test_no_file_refers_to_an_absent_document():
    found = []
    for path in _tracked_files():
        if _is_this_file(path):
            continue
        text = _text(path)
        if text is None:
            continue
        for line_number, line in enumerate(text.splitlines(), 1):
            found += [f"{path}:{line_number}: {name}" for name in ABSENT_DOCUMENTS
                      if name in line]
    assert not found, "\n".join(found)


def test_every_relative_markdown_link_resolves():
    broken = []
    for page in _pages():
        text = _without_code_blocks(_text(page))
        text = re.sub(r"`[^`\n]*`", "", text)
        targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
        targets += re.findall(r"(?m)^\s*\[[^\]]+\]:\s*(\S+)", text)  # [name]: target
        for target in targets:
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (https:, mailto:) or an anchor on the same page
            resolved = os.path.normpath(os.path.join(REPO, os.path.dirname(page),
                                                     target.split("#")[0]))
            inside = resolved == REPO or resolved.startswith(REPO + os.sep)
            if not (inside and os.path.exists(resolved)):
                broken.append(f"{page}: {target}")
    assert not broken, "\n".join(broken)


@functools.cache
def _names(module_file: str) -> frozenset:
    """The names a module defines at any level (functions, classes, assignments,
    imports): what `module.name` may refer to."""
    with open(module_file) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t)
                         if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def _resolves(dotted: str) -> bool:
    """Whether `uncertainty.a.b[.name]` names a module of the library, or something
    its module defines."""
    path = REPO
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        package, module = os.path.join(path, part), os.path.join(path, part + ".py")
        if os.path.isfile(os.path.join(package, "__init__.py")):
            path = package
        elif os.path.isfile(module):
            path = module
        else:
            source = path if path.endswith(".py") else os.path.join(path, "__init__.py")
            return i > 0 and os.path.isfile(source) and (
                part.startswith("__") or part in _names(source))
    return True


def _module_references(text: str) -> tuple[list[str], list[str]]:
    """The modules `text` names: dotted (`uncertainty.x.y`, and `layer.module` in
    backticks) and as paths (`uncertainty/x/y.py`)."""
    dotted = [m for m in re.findall(r"(?<![\w./-])uncertainty(?:\.[A-Za-z_]\w*)+", text)
              if not m.endswith((".py", ".json", ".md"))]
    dotted += ["uncertainty." + m for m in re.findall(
        rf"`((?:{'|'.join(LAYERS)})(?:\.[A-Za-z_]\w*)+)", text)
        if not re.search(r"\.(py|sh|json|md|txt|png)$", m)]
    paths = [m.rstrip("./") for m in re.findall(r"(?<![\w.-])uncertainty/[\w./]*", text)]
    return dotted, paths


def test_every_module_the_files_name_exists():
    """Docs, docstrings and comments name the library's modules by their current
    names (the changelog, which maps the old ones, is left out)."""
    stale = []
    for path in _tracked_files():
        if (path == "CHANGELOG.md" or _is_this_file(path) or
                not path.endswith((".py", ".md", ".sh", ".ipynb", ".yml", ".toml",
                                   ".importlinter"))):
            continue
        text = _text(path)
        if text is None:
            continue
        dotted, paths = _module_references(text)
        stale += [f"{path}: {d}" for d in dotted if not _resolves(d)]
        stale += [f"{path}: {p}" for p in paths if not os.path.exists(os.path.join(REPO, p))]
    assert not stale, "\n".join(sorted(set(stale)))


def test_readme_licence_citation_changelog():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    assert len(readme.splitlines()) <= 250
    for command in ("bash run_scripts/quickstart.sh", "bash run_scripts/test.sh"):
        assert command in readme, command
    for name in ("LICENSE", "CITATION.cff", "CHANGELOG.md"):
        assert os.path.isfile(os.path.join(REPO, name)), name
    with open(os.path.join(REPO, "LICENSE")) as f:
        licence = f.read()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    with open(os.path.join(REPO, "CITATION.cff")) as f:
        citation = f.read()
    assert re.search(r"(?m)^cff-version: ", citation)
    assert re.search(r"(?m)^license: Apache-2\.0$", citation)
