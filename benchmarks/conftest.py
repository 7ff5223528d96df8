"""The benchmark suite's pytest plugin, loaded for ``pytest benchmarks/`` (it lives in ``plugin.py``,
which other repositories load with ``pytest_plugins = ["compression_bench.benchmarks.plugin"]``)."""
from compression_bench.benchmarks.plugin import (  # noqa: F401  (hooks and fixtures)
    bench, pytest_addoption, pytest_benchmark_update_machine_info, pytest_configure,
    pytest_generate_tests, pytest_report_header, pytest_sessionfinish, pytest_terminal_summary)
