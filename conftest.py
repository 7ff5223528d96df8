"""Options shared by the test suite (tests/) and the benchmark suite (benchmarks/).

Each option also reads an environment variable, so the same settings work from the shell:
``--zoo-profile``/``ZOO_PROFILE``, ``--zoo-cache``/``ZOO_CACHE``,
``--zoo-data-root``/``ZOO_DATA_ROOT``, ``--zoo-train-device``/``ZOO_TRAIN_DEVICE``.
"""
from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("zoo", "model zoo (training data, profile, cache)")
    g.addoption("--zoo-profile", default=None,
                help="smoke, default or full (default: $ZOO_PROFILE, else default)")
    g.addoption("--zoo-cache", default=None,
                help="cache directory for trained models and variants (default: $ZOO_CACHE, else ~/.cache/compression-bench)")
    g.addoption("--zoo-data-root", default=None,
                help="data root holding MNIST/ and cifar-10-batches-py/ for the full profile (default: $ZOO_DATA_ROOT, else ~/data)")
    g.addoption("--zoo-download", action="store_true", default=False,
                help="download MNIST/CIFAR-10 into the data root when missing (needs network)")
    g.addoption("--zoo-train-device", default=None,
                help="device for training and fine-tuning: cpu, cuda or auto (default: $ZOO_TRAIN_DEVICE, else cpu); timing always runs on CPU")


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
