"""The suite's one benchmark test, ``test_variant`` (it lives in ``suite.py``, which other repositories
import the same way)."""
from compression_bench.benchmarks.suite import test_variant  # noqa: F401
