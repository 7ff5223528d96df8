"""The pytest benchmark suite (``pytest benchmarks/ --benchmark-only``) and its plain helpers."""
