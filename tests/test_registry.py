"""The one registry class behind models, datasets, methods and runtimes
(:class:`compression_bench.plugins.Registry`), and the four registries built on it."""
from __future__ import annotations

import importlib
import sys

import pytest

from compression_bench import plugins, zoo
from compression_bench.benchmarks.runtimes import UnknownRuntimeError, get_runtime, register_runtime
from compression_bench.compression import get_method, register_method
from compression_bench.plugins import PluginError, Registry


class UnknownThingError(LookupError):
    """A registry's own error for an unknown name."""


@pytest.fixture
def loads(monkeypatch):
    """The calls of the plugin loader (and of a registry's builtins hook), in order."""
    calls: list[str] = []
    monkeypatch.setattr(plugins, "load_plugins", lambda: calls.append("plugins") or [])
    return calls


def test_entries_keep_their_registration_order_and_a_taken_name_is_refused(loads):
    things: Registry[int] = Registry("thing", UnknownThingError)
    for name, value in [("b", 2), ("a", 1), ("c", 3)]:
        assert things.add(name, value) == value
    with pytest.raises(ValueError, match=r"^thing 'a' is registered twice$"):
        things.add("a", 10)
    assert things.names() == ["b", "a", "c"]
    assert things.items() == [("b", 2), ("a", 1), ("c", 3)]  # the first registration kept
    assert things.get("a") == 1 and "c" in things and "d" not in things
    assert things.remove("b") == 2 and things.names() == ["a", "c"]
    things.add("b", 20)  # a removed name is free again, and comes last
    assert things.names() == ["a", "c", "b"]


def test_an_unknown_name_raises_the_registrys_own_error_listing_the_valid_names(loads):
    things: Registry[int] = Registry("thing", UnknownThingError)
    things.add("b", 2)
    things.add("a", 1)
    with pytest.raises(UnknownThingError, match=r"^unknown thing 'z'; valid names are: b, a$"):
        things.get("z")
    with pytest.raises(UnknownThingError, match="unknown thing 'z'"):
        things.remove("z")
    assert things.names() == ["b", "a"]
    worded: Registry[int] = Registry("gadget", KeyError, unknown="no {kind} called {name!r} (try {valid})")
    worded.add("x", 1)
    with pytest.raises(KeyError, match=r"no gadget called 'y' \(try x\)"):
        worded.get("y")


def test_builtins_then_plugins_are_loaded_before_every_read_but_not_by_adding(monkeypatch):
    calls: list[str] = []

    def builtins():
        calls.append("builtins")
        things.add("builtin", 0)

    def load_plugins():  # a plugin registers on its first load, as an entry point's module does
        calls.append("plugins")
        if calls.count("plugins") == 1:
            things.add("plugged", 1)
        return []

    things: Registry[int] = Registry("thing", UnknownThingError, builtins=builtins)
    monkeypatch.setattr(plugins, "load_plugins", load_plugins)
    things.add("early", -1)
    assert calls == []  # registering while a module is imported loads nothing
    assert things.names() == ["early", "builtin", "plugged"]
    assert calls == ["builtins", "plugins"]
    assert things.get("plugged") == 1 and "builtin" in things and things.items()[0] == ("early", -1)
    assert calls == ["builtins"] + ["plugins"] * 4  # the builtins once; the plugin loader (once per process) first


def test_a_plugin_that_fails_to_import_is_named(monkeypatch):
    class Entry:
        name, value = "broken", "broken_package.plugin"

        def load(self):
            raise ImportError("no module named broken_package")

    monkeypatch.setattr(plugins, "_loaded", None)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [Entry()] if group == plugins.GROUP else [])
    with pytest.raises(PluginError, match=r"plugin 'broken' \(broken_package.plugin\) .* "
                                          r"ImportError: no module named broken_package"):
        plugins.load_plugins()
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [])
    assert plugins.load_plugins() == [] and plugins._loaded == []



def test_a_built_in_module_that_fails_to_import_fails_every_lookup_naming_the_module(tmp_path, monkeypatch, loads):
    """Issue #36: a registry whose built-in entries live one per module (as methods and runtimes do) and one
    of whose modules fails to import is never left silently partial: every lookup raises, naming the module."""
    package = tmp_path / "cb_broken_builtins"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from compression_bench.plugins import Registry, import_submodules\n"
        "things = Registry('thing', LookupError, builtins=lambda: import_submodules(__name__))\n")
    (package / "a_fine.py").write_text("from . import things\nthings.add('a', 1)\n")
    (package / "b_broken.py").write_text("import cb_no_such_dependency\n")
    (package / "c_fine.py").write_text("from . import things\nthings.add('c', 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        things = importlib.import_module("cb_broken_builtins").things  # written above: no import a checker resolves
        message = (r"built-in module 'cb_broken_builtins.b_broken' could not be imported: ModuleNotFoundError: "
                   r"No module named 'cb_no_such_dependency'")
        for lookup in (lambda: things.get("a"), things.names, lambda: "c" in things, things.items):
            with pytest.raises(PluginError, match=message):
                lookup()
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "cb_broken_builtins"]:
            del sys.modules[name]


def test_a_built_in_loader_that_fails_fails_every_lookup_naming_the_registry(loads):
    def builtins():
        things.add("a", 1)
        raise OSError("disk gone")

    things: Registry[int] = Registry("thing", UnknownThingError, builtins=builtins)
    for _ in range(2):
        with pytest.raises(PluginError, match=r"the built-in things could not be loaded: OSError: disk gone"):
            things.names()



def test_a_third_party_plugin_that_fails_to_import_fails_every_lookup(monkeypatch):
    class Entry:
        name, value = "broken", "broken_package.plugin"

        def load(self):
            raise ImportError("no module named broken_package")

    monkeypatch.setattr(plugins, "_loaded", None)
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [Entry()] if group == plugins.GROUP else [])
    things: Registry[int] = Registry("thing", UnknownThingError)
    for lookup in (things.names, lambda: "a" in things):  # not one read answers without the plugin's entries
        with pytest.raises(PluginError, match=r"plugin 'broken' \(broken_package.plugin\)"):
            lookup()


def test_the_four_registries_keep_their_errors():
    with pytest.raises(zoo.UnknownModelError, match=r"^unknown model 'Nope'; valid names are: SimpleCNN_6x2, "):
        zoo.get_model_info("Nope")
    with pytest.raises(ValueError, match=r"^model 'SimpleCNN_6x2' is registered twice$"):
        zoo.register_model("SimpleCNN_6x2", input_shape=(1, 8, 8), description="again")(
            zoo.get_model_info("SimpleCNN_6x2").builder)
    with pytest.raises(zoo.DataError, match=r"^unknown dataset 'imagenet'; valid names are: digits, mnist, cifar10"):
        zoo.get_dataset_info("imagenet")
    with pytest.raises(ValueError, match=r"^dataset 'digits' is registered twice$"):
        zoo.register_dataset("digits", zoo.get_dataset_info("digits").loader, description="again")
    with pytest.raises(ValueError, match=r"^method kind 'original' is registered twice$"):
        register_method(type(get_method("original").impl))
    # (runtimes register in import order: a test that imports one runtime's module first lists it first)
    with pytest.raises(UnknownRuntimeError, match=r"^unknown runtime 'tvm'; valid names: .*\beager\b"):
        get_runtime("tvm")
    with pytest.raises(ValueError, match=r"^runtime 'eager' is registered twice$"):
        register_runtime(get_runtime("eager"))
    assert zoo.list_datasets()[:3] == ["digits", "mnist", "cifar10"] and get_method("original").id == "original"


def test_an_opt_in_model_is_out_of_the_default_matrix_and_runs_when_named(tmp_path):
    """``register_model(..., default=False)``: as a user registers a model of their own that only some
    runs should take (the zoo's ViTTiny is one)."""
    from torch import nn

    from compression_bench.benchmarks.errors import SessionError
    from compression_bench.benchmarks.settings.config import Config

    zoo.register_model("OptInNet", input_shape=(1, 8, 8), description="opt-in", default=False)(
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    try:
        assert "OptInNet" not in zoo.list_models() and "OptInNet" in zoo.list_models(include_optional=True)
        base = {"zoo_profile": "smoke", "zoo_cache": str(tmp_path / "cache"), "report_dir": str(tmp_path / "r")}
        assert "OptInNet" not in Config.from_options(base).models
        assert Config.from_options({**base, "zoo_models": "EnhancedLeNet5,OptInNet"}).models == ("EnhancedLeNet5", "OptInNet")
        with pytest.raises(SessionError, match="unknown model 'OptInNett'.*opt-in: .*OptInNet"):
            Config.from_options({**base, "zoo_models": "OptInNett"})
    finally:
        zoo.unregister_model("OptInNet")
