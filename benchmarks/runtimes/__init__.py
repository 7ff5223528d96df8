"""Runtimes: how a built variant is prepared, run, threaded and sized."""
