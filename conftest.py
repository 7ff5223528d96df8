"""Options shared by the test suite (tests/) and the benchmark suite (benchmarks/).

Each option also reads an environment variable, so the same settings work from the shell:
``--zoo-profile``/``ZOO_PROFILE``, ``--zoo-cache``/``ZOO_CACHE``,
``--zoo-data-root``/``ZOO_DATA_ROOT``, ``--zoo-train-device``/``ZOO_TRAIN_DEVICE``.
"""
from __future__ import annotations

import os

import pytest

from compression_bench.benchmarks import options


def pytest_addoption(parser):
    options.add_zoo_options(parser)


def _opt(config, name: str, env: str, default=None):
    value = config.getoption(name)
    return value if value not in (None, "") else (os.environ.get(env) or default)


@pytest.fixture(scope="session")
def zoo_profile_name(pytestconfig) -> str:
    return _opt(pytestconfig, "--zoo-profile", "ZOO_PROFILE", "default")


@pytest.fixture(scope="session")
def zoo_cache_dir(pytestconfig) -> str | None:
    return _opt(pytestconfig, "--zoo-cache", "ZOO_CACHE")


@pytest.fixture(scope="session")
def zoo_data_root(pytestconfig) -> str | None:
    return _opt(pytestconfig, "--zoo-data-root", "ZOO_DATA_ROOT")


@pytest.fixture(scope="session")
def zoo_train_device(pytestconfig) -> str:
    return _opt(pytestconfig, "--zoo-train-device", "ZOO_TRAIN_DEVICE", "cpu")
