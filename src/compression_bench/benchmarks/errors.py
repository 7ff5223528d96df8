"""The exit statuses of the suite and of ``compression-bench``, and what stops a session or fails one
row. Every status is defined here once (docs/guide/exit-statuses.md says what each means). No pytest.
"""
from __future__ import annotations

EXIT_OK = 0             # every gate passed
EXIT_FAILED = 1         # a gate failed, or a compared run regressed
EXIT_MALFORMED = 2      # compression-bench: a results file or an MLflow run that cannot be read as one
EXIT_USAGE = 4          # bad input, found before anything trains
EXIT_INCONCLUSIVE = 6   # no gate failed, but some speed gates could not be judged: the machine was too busy
EXIT_FAULT = 7          # the cache or the report files could not be read or written (disk full, I/O error)


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
