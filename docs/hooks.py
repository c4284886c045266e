"""How the Python API page (docs/api.md) shows the library's docstrings.

The docstrings are plain prose written to be read in the source: they name
placeholders like `test/<m>_<type>_<intensity>` and products like `a* (1 - a)` outside
backticks, and lay out small tables with line breaks and indentation. Read as Markdown
they would lose all of that (a browser swallows `<m>` as an unknown tag, `_..._` and
`*...*` turn into emphasis, the tables' lines run together). So:

- `Literal`, a griffe extension (mkdocs.yml: the python handler's `extensions`),
  escapes every character Markdown would act on in a docstring, outside backtick code
  and indented code blocks, so the text shows as written and `code` stays code; a
  paragraph laid out in columns is shown verbatim in a fixed-width font;
- `on_post_page`, an MkDocs hook (mkdocs.yml `hooks:`), keeps the docstrings' line
  breaks and indentation on the API page.
"""

import re

import griffe

_STYLE = ("<style>.doc-contents > p, .doc-contents > ul > li "
          "{white-space: pre-wrap}</style>")
_CODE_SPAN = re.compile(r"(`[^`\n]*`)")
_COLUMNS = re.compile(r"(?m)\S {3,}\S")  # a line laid out in aligned columns
_ACTIVE = re.compile(r"([\\*_\[\]])")


def _escape_text(text: str) -> str:
    text = _ACTIVE.sub(r"\\\1", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"(?m)^(\s*)#", r"\1\\#", text)


def escape(docstring: str) -> str:
    """`docstring` as Markdown that renders as its text (backtick code stays code)."""
    paragraphs = re.split(r"(\n[ \t]*\n)", docstring)
    out = []
    for paragraph in paragraphs:
        if not paragraph.strip() or paragraph.startswith("    "):
            out.append(paragraph)  # a blank separator, or an indented code block
            continue
        if _COLUMNS.search(paragraph):  # a table: verbatim, in a fixed-width font
            out.append("\n".join("    " + line for line in paragraph.split("\n")))
            continue
        out.append("".join(part if _CODE_SPAN.fullmatch(part) else _escape_text(part)
                           for part in _CODE_SPAN.split(paragraph)))
    return "".join(out)


class Literal(griffe.Extension):
    """Escapes every docstring as it is loaded (see the module's docstring)."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None and not getattr(obj, "_escaped", False):
            obj.docstring.value = escape(obj.docstring.value)
            obj._escaped = True


def on_post_page(output, page, config):
    if page.file.src_uri == "api.md":
        output = output.replace("</head>", _STYLE + "</head>", 1)
    return output
