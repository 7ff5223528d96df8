"""Shared by the tests: subprocesses of the suite must not think they run under xdist.

pytest-xdist marks its workers with ``PYTEST_XDIST_*`` variables; a ``pytest benchmarks/`` started
from a test inherits them, and pytest-benchmark then disables timing. Removing them per test lets
``pytest tests/ -n 2`` run the end-to-end tests as a serial run does.
"""
import pytest


@pytest.fixture(autouse=True)
def _no_xdist_marks_for_subprocesses(monkeypatch):
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
