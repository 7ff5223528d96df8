"""Variants: the compressed models of the eager runtime, built or read from the cache (``cached``), the
artifacts of the other runtimes lowered from them (``runtime_variants``), the peak memory of either in a
child process (``memory``), and the workspace that builds each once per session (``workspace``). No pytest."""
