"""Plugins: installed distributions that register models, datasets, methods or runtimes.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."compression_bench.plugins"]
    my_models = "my_package.benchmark_plugin"

and the module named there registers what it brings when imported (``register_model``,
``register_dataset``, ``register_method``, ``register_runtime``). Every registry's lookup
(``list_models``, ``get_method``, ``list_runtimes``, ...) loads the plugins once per process, before it
answers, so a ``pip install`` is all it takes. A plugin that fails to import stops with its name and
the error, rather than leaving its entries silently missing.
"""
from __future__ import annotations

from importlib import metadata

GROUP = "compression_bench.plugins"
_loaded: list[str] | None = None
_loading = False


class PluginError(RuntimeError):
    """An installed plugin could not be imported."""


def load_plugins() -> list[str]:
    """Import every module registered under the entry-point group :data:`GROUP` (once per process);
    the names of the entry points loaded."""
    global _loaded, _loading
    if _loaded is not None or _loading:  # a plugin's own registrations call back in while it loads
        return list(_loaded or [])
    _loading = True
    names = []
    try:
        for entry in metadata.entry_points(group=GROUP):
            try:
                entry.load()
            except Exception as err:  # noqa: BLE001 - any failure of a third party's import is reported as one
                raise PluginError(f"plugin {entry.name!r} ({entry.value}) from the entry points of group {GROUP!r} "
                                  f"could not be imported: {type(err).__name__}: {err}") from err
            names.append(entry.name)
    finally:
        _loading = False
    _loaded = names
    return list(names)
