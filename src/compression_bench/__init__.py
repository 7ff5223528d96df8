"""compression-bench: what INT8 quantization and pruning cost a PyTorch model in accuracy and buy in
size and CPU speed.

* :mod:`compression_bench.zoo`: models, datasets, profiles, training and the artifact cache;
* :mod:`compression_bench.compression`: the methods (quantization, pruning, compositions);
* :mod:`compression_bench.benchmarks`: runtimes, measurement, the session, reporting and the pytest plugin.
"""
