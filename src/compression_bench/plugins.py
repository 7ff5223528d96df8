"""Registries and plugins: the one registry class behind models, datasets, methods and runtimes, and
the installed distributions that add to them.

Every open registry of the suite (``register_model``, ``register_dataset``, ``register_method``,
``register_runtime``) is a :class:`Registry`: entries by name in registration order, a name taken
twice refused, an unknown name answered with the registry's own exception listing the valid names.
Before it answers any read, a registry imports its built-in entries where they live in modules of
their own (:func:`import_submodules`: one module per method, per runtime) and loads the plugins.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."compression_bench.plugins"]
    my_models = "my_package.benchmark_plugin"

and the module named there registers what it brings when imported (``register_model``,
``register_dataset``, ``register_method``, ``register_runtime``). Every registry's lookup
(``list_models``, ``get_method``, ``list_runtimes``, ...) loads the plugins once per process, before it
answers, so a ``pip install`` is all it takes. A plugin that fails to import stops with its name and
the error, rather than leaving its entries silently missing; so does a module of built-in entries,
on every later lookup too (a registry that answered from half its built-ins would report a method or
runtime missing, not broken).

Only the standard library is imported here (this module sits below :mod:`compression_bench.zoo`,
:mod:`compression_bench.compression` and :mod:`compression_bench.benchmarks`, which all use it), so a
registry costs its package no import of the others.
"""
from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import Callable, Generic, TypeVar

GROUP = "compression_bench.plugins"
_loaded: list[str] | None = None
_loading = False
_imported: dict[str, PluginError | None] = {}  # package -> how import_submodules went (None: every module imported)

T = TypeVar("T")


class PluginError(RuntimeError):
    """An installed plugin, or a module of a registry's built-in entries, could not be imported."""


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


def import_submodules(package: str) -> None:
    """Import every module of ``package``, by name (once per process): the built-in entries of a
    registry whose package holds one module per entry, so that a new one is one new file there.
    A module that fails to import raises :class:`PluginError` naming it, on this call and every later
    one (importing it again could register its first entries twice and hide the error behind that)."""
    if package in _imported:
        failed = _imported[package]
        if failed is not None:
            raise PluginError(str(failed)) from failed.__cause__
        return
    path = importlib.import_module(package).__path__
    for mod in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        name = f"{package}.{mod.name}"
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - whatever stops a built-in module, the registry is incomplete
            failed = PluginError(f"built-in module {name!r} could not be imported: {type(err).__name__}: {err}")
            failed.__cause__ = err
            _imported[package] = failed
            raise PluginError(str(failed)) from err
    _imported[package] = None


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order.

    ``kind`` names an entry in messages (``"model"``: "model 'x' is registered twice"). A name not
    registered raises ``error`` with the message ``unknown`` formatted with ``kind``, ``name`` and
    ``valid`` (the registered names, comma-separated). Every read (:meth:`names`, :meth:`items`,
    :meth:`get`, ``in``, :meth:`remove`) first runs ``builtins`` once (the loader of built-in entries
    that live elsewhere, e.g. ``lambda: import_submodules(pkg)``), then :func:`load_plugins`; adding
    does not, so that modules register their entries while they are imported. A ``builtins`` that
    raises leaves the registry partial: that read and every later one raise :class:`PluginError`.
    """

    def __init__(self, kind: str, error: type[Exception], *,
                 unknown: str = "unknown {kind} {name!r}; valid names are: {valid}",
                 builtins: Callable[[], object] | None = None):
        self.kind = kind
        self.error = error
        self.unknown = unknown
        self._builtins = builtins
        self._failed: PluginError | None = None  # how ``builtins`` failed
        self._entries: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` (:class:`ValueError` when taken); returns ``item``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = item
        return item

    def remove(self, name: str) -> T:
        """Unregister ``name`` (the registry's error when it is not registered); returns its item."""
        item = self.get(name)
        del self._entries[name]
        return item

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        self.load()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs, in registration order."""
        self.load()
        return list(self._entries.items())

    def get(self, name: str) -> T:
        """The item registered under ``name``; the registry's error, listing the valid names, else."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(self.unknown.format(kind=self.kind, name=name, valid=", ".join(self._entries))) from None

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def load(self) -> None:
        """The built-in entries (once), then the installed plugins (once per process); :class:`PluginError`
        when the built-in entries could not all be loaded, now or on an earlier read."""
        if self._failed is not None:
            raise PluginError(str(self._failed)) from self._failed.__cause__
        builtins, self._builtins = self._builtins, None  # first: a loader's own imports may read back
        if builtins is not None:
            try:
                builtins()
            except Exception as err:  # noqa: BLE001 - any failure leaves the registry partial
                self._failed = err if isinstance(err, PluginError) else PluginError(
                    f"the built-in {self.kind}s could not be loaded: {type(err).__name__}: {err}")
                if self._failed is not err:
                    self._failed.__cause__ = err
                raise self._failed from self._failed.__cause__
        load_plugins()
