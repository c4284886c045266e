"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """Bad input (unknown name, invalid value, missing data, refused directory).

    The message is one line that names the problem and the fix; binaries print it
    without a traceback and exit non-zero.
    """
