"""The one exception type for mistakes a user can fix, and the short reason a
failure gives in its line."""


class UserError(Exception):
    """Bad input (unknown name, invalid value, missing data, refused directory).

    The message is one line that names the problem and the fix; binaries print it
    without a traceback and exit non-zero.
    """


def reason(error: BaseException) -> str:
    """A short reason for a failure, to put in a UserError's line: an OSError's
    strerror, else a TensorFlow error's message or the text of any other, its first
    line (at most 200 characters), or the exception's type name when it has no text."""
    text = ((error.strerror if isinstance(error, OSError) else None)
            or getattr(error, "message", None) or str(error)).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
