"""One exception type for problems a user can fix: bad parameters, bad input files."""


class G2IError(Exception):
    """A user-facing error. Command-line entry points print it in plain words and exit non-zero."""
