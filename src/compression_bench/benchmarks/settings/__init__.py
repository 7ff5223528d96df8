"""Settings: the options and their checks (``options``) and the one frozen configuration they make
(``config``, with the thresholds file loaded through :mod:`benchmarks.gates`), all read and checked
before anything trains. No pytest."""
