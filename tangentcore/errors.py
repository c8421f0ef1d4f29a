"""The domain exception of tangentcore."""


class TangentcoreError(Exception):
    """Invalid user input or a failed step, with a message that names the value and the fix.

    The command line prints the message without a traceback and exits with status 2.
    """
