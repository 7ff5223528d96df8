"""What stops a session and what fails one row, with the exit statuses they stand for. No pytest."""
from __future__ import annotations

EXIT_USAGE, EXIT_FAULT = 4, 7  # bad input (found before anything trains); the cache or files unusable


class VariantFailure(Exception):
    """A model or variant could not be built or run; ``status`` is its row's text, ``failed: <first line>``."""

    def __init__(self, what: str, err: BaseException):
        first = (str(err).strip().splitlines() or [""])[0][:200]
        self.status = f"failed: {what}{type(err).__name__}: {first}" if first else f"failed: {what}{type(err).__name__}"
        super().__init__(self.status)


class SessionError(Exception):
    """The session cannot go on; ``code`` is the exit status (4 bad input, 7 cache fault)."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code
