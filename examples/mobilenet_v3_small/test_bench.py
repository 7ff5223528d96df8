from compression_bench.benchmarks.suite import test_variant  # noqa: F401
