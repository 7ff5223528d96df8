"""Extending the suite from another repository, each in one file of that repository and no edit of
the suite: a compression method and a runtime defined in a user's conftest.py run through the whole
matrix beside the built-in ones (trained, built, measured, gated, reported)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e  # a child process end to end (tests/conftest.py: tiers)

CONFTEST = textwrap.dedent('''
    import copy
    import io

    import torch

    from compression_bench.benchmarks.runtimes import register_runtime, torch_threads
    from compression_bench.compression import Method, register_method

    pytest_plugins = ["compression_bench.benchmarks.plugin"]


    @register_method
    class ZeroSmallest(Method):
        """A method of the user's: zero the smallest tenth of every weight matrix (no fine-tuning)."""
        kind = "zero_smallest"
        family = "pruning"
        label = "Pruning (zero smallest 10%)"
        compression = "10%"

        def build(self, spec, model, ctx):
            model = copy.deepcopy(model)
            with torch.no_grad():
                for p in model.parameters():
                    if p.dim() > 1:
                        cut = p.abs().flatten().kthvalue(max(1, p.numel() // 10)).values
                        p[p.abs() <= cut] = 0.0
            return model


    class TorchScript:
        """A runtime of the user's: the float model traced to TorchScript, float methods only."""
        name = "torchscript"
        description = "TorchScript (torch.jit.trace), float methods"
        requires = ()
        install = ""
        batch_specific = True
        native = False

        def versions(self):
            return {"torch": torch.__version__.split("+")[0]}

        def unsupported(self, method):
            return "float methods only" if method.quantized else None

        def build(self, source):
            buffer = io.BytesIO()
            torch.jit.save(torch.jit.trace(source.float_model.eval(), source.example), buffer)
            return buffer.getvalue()

        def load(self, artifact, threads):
            module = torch.jit.load(io.BytesIO(artifact)).eval()

            def run(x):
                with torch.inference_mode():
                    return module(x)
            return run

        def threads(self, count):
            return torch_threads(count)


    register_runtime(TorchScript())
''')


def test_a_method_and_a_runtime_defined_in_a_users_conftest_run_through_the_matrix(tmp_path):
    repo = tmp_path / "user-repo"
    repo.mkdir()
    (repo / "conftest.py").write_text(CONFTEST)
    (repo / "test_bench.py").write_text("from compression_bench.benchmarks.suite import test_variant  # noqa: F401\n")
    report = tmp_path / "report"
    r = subprocess.run([sys.executable, "-P", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--zoo-profile", "smoke",
                        "--zoo-models", "EnhancedLeNet5", "--compression-methods", "original,zero_smallest,static_int8",
                        "--runtimes", "eager,torchscript", "--float-baselines", "none", "--peak-memory", "off",
                        "--benchmark-disable", "--report-dir", str(report)],
                       cwd=repo, env=dict(os.environ, ZOO_CACHE=str(tmp_path / "cache")), capture_output=True, text=True,
                       timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {(x["runtime"], x["method"]): x for x in json.loads((report / "results.json").read_text())["results"]}
    for key in [("eager", "original"), ("eager", "zero_smallest"), ("torchscript", "original"),
                ("torchscript", "zero_smallest"), ("eager", "static_int8")]:
        assert rows[key]["status"] is None and rows[key]["accuracy"] > 50, (key, rows[key])
    assert rows["torchscript", "static_int8"]["status"] == "n/a: float methods only"
    # the user's method zeroed a tenth of the weights, and its runtime ran what it built from it
    assert 0.85 < rows["eager", "zero_smallest"]["nonzero_params"] / rows["eager", "original"]["nonzero_params"] < 0.95
    assert rows["torchscript", "zero_smallest"]["accuracy"] == rows["eager", "zero_smallest"]["accuracy"]
    assert "| **Original**" in r.stdout and "torchscript" in r.stdout


PLUGIN = textwrap.dedent('''
    """A pip-installed package's plugin module: a model and a method, registered on import."""
    import copy

    import torch
    from torch import nn

    from compression_bench.compression import Method, register_method
    from compression_bench.zoo import register_model


    @register_model("PluginNet", input_shape=(1, 8, 8), description="a model from an installed plugin")
    def plugin_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


    @register_method
    class Halve(Method):
        kind = "plugin_halve"
        family = "pruning"
        label = "Pruning (plugin)"
        compression = "x0.5"

        def build(self, spec, model, ctx):
            model = copy.deepcopy(model)
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(0.5)
            return model
''')


def _install_plugin(site):
    """What ``pip install`` leaves: the module, and a dist-info whose entry points name it."""
    (site / "cb_plugin_demo.py").write_text(PLUGIN)
    info = site / "cb_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cb-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[compression_bench.plugins]\ndemo = cb_plugin_demo\n")


def _names_in_a_fresh_process(site) -> list[str]:
    code = ("from compression_bench import zoo, compression; "
            "print(zoo.list_models()[-1], compression.list_methods()[-1], compression.get_method('plugin_halve').label)")
    r = subprocess.run([sys.executable, "-P", "-c", code], env=dict(os.environ, PYTHONPATH=str(site)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split()


@pytest.mark.e2e
def test_a_pip_installed_package_registers_a_model_and_a_method_through_entry_points(tmp_path):
    site = tmp_path / "site-packages"
    site.mkdir()
    _install_plugin(site)
    model, method, *label = _names_in_a_fresh_process(site)
    assert (model, method, " ".join(label)) == ("PluginNet", "plugin_halve", "Pruning (plugin)")
    # a plugin that fails to import is named, not silently missing
    (site / "cb_plugin_demo.py").write_text("raise ImportError('no such thing')\n")
    r = subprocess.run([sys.executable, "-P", "-c", "from compression_bench import zoo; zoo.list_models()"],
                       env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "plugin 'demo' (cb_plugin_demo)" in r.stderr and "no such thing" in r.stderr
