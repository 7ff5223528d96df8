"""Options shared by the test suite (tests/) and the benchmark suite (benchmarks/).

Each option also reads an environment variable, so the same settings work from the shell:
``--zoo-profile``/``ZOO_PROFILE``, ``--zoo-cache``/``ZOO_CACHE``,
``--zoo-data-root``/``ZOO_DATA_ROOT``, ``--zoo-train-device``/``ZOO_TRAIN_DEVICE``; the benchmark
session reads them (:mod:`compression_bench.benchmarks.settings.options`).
"""
from compression_bench.benchmarks.settings import options


def pytest_addoption(parser):
    options.add_zoo_options(parser)
