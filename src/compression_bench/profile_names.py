"""The profile names, shared by the zoo (a recipe per profile) and the compression methods (a
fine-tune budget per profile), and the one error for a name that is not among them.

It sits with :mod:`compression_bench.plugins` below both libraries, so that neither imports the
other and ``except zoo.UnknownProfileError`` and ``except compression.UnknownProfileError`` catch
the same exception. Only the standard library is imported here.
"""
from __future__ import annotations

#: Every profile, smallest first: ``smoke`` (seconds), ``quick`` (scikit-learn's digits, minutes),
#: ``default`` (Fashion-MNIST, the main job), ``full`` (every image of the datasets).
PROFILES = ("smoke", "quick", "default", "full")


class UnknownProfileError(ValueError):
    """A profile name that is not one of :data:`PROFILES`."""
