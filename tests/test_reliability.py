"""Reliability (the cache rules of docs/reliability/cache.md): bad input stops the run early with one sentence; faults
are recovered with nothing lost and nothing wrong; nothing in the cache or in a saved run can run code;
the same profile gives the same figures twice.

Every run here uses a temporary cache. Cases covered by other files and not repeated here:

* tests/test_benchmarks.py::test_bad_options_fail_before_anything_trains: unknown model, method or
  profile name and batch size 0 given to the suite;
* tests/test_benchmarks.py::test_bad_thresholds_files_fail_with_one_clear_sentence: every kind of bad
  thresholds file, at the level of ``Thresholds.load`` (here: through ``pytest --thresholds``);
* tests/test_zoo.py::test_damaged_cache_entry_is_reported_and_rebuilt: a trained entry truncated,
  emptied, garbage or a malicious pickle (here: the same for a compressed variant);
* tests/test_zoo.py::test_entry_of_another_format_is_not_loaded_as_current: a trained entry written by
  another version (here: a variant);
* tests/test_zoo.py::test_unwritable_cache_fails_with_the_fix: ``ArtifactCache.check_writable``
  (here: through both command lines);
* tests/test_zoo.py::test_two_processes_train_the_same_model_once: two processes, one training;
* tests/test_zoo.py::test_cli_rejects_bad_names_before_training: ``compression-zoo train`` with an
  unknown model or profile;
* tests/test_zoo.py::test_missing_dataset_says_where_the_files_go: ``load_dataset`` on an empty root
  (here: through both command lines, before anything trains);
* tests/test_reports.py::test_unreadable_runs_exit_2_with_one_sentence and
  ::test_compare_as_a_module_never_shows_a_traceback: ``compression-bench compare`` given text that
  is not JSON, not UTF-8, not a run, a pytest-benchmark run of an older format, an empty run, a missing
  file (here: pickles, a truncated run, results.json files of an older or incomplete format).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock

from compression_bench import compression
from compression_bench import zoo
from compression_bench.benchmarks.variants import cached
from compression_bench.zoo import ArtifactCache, CacheWarning
from compression_bench.zoo.cache import MAGIC, read_entry, write_entry

ROOT = Path(__file__).resolve().parents[1]
MODEL = "EnhancedLeNet5"  # trains in about a second on the smoke profile
# what a bad-input run would run if it were not stopped: small, so a regression costs seconds
SMALL = ["--zoo-models", MODEL, "--compression-methods", "original,dynamic_int8"]


def _env(**extra) -> dict:
    return dict(os.environ, **extra)


def _suite_cmd(tmp_path: Path, args, report: str = "report") -> list[str]:
    return [sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider",
            "--zoo-profile", "smoke", "--report-dir", str(tmp_path / report),
            "--latency-target-s", "0.05", "--latency-warmup", "1", "--float-baselines", "none", "--peak-memory", "off", *args]


def _suite(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    """The benchmark suite in a subprocess, as tests/test_benchmarks.py::_suite runs it."""
    env = _env(ZOO_CACHE=str(tmp_path / "cache"))
    return subprocess.run(_suite_cmd(tmp_path, args), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=2700)


def _zoo_cli(*args) -> types.SimpleNamespace:
    """``compression-zoo`` run in this process (its ``main``), as a CompletedProcess-like result; the
    console script's own wiring is run in a child by tests/test_zoo.py (e2e)."""
    from compression_bench.zoo.__main__ import main
    return _in_process(main, args)


def _bench_cli(*args) -> types.SimpleNamespace:
    from compression_bench.benchmarks.__main__ import main
    return _in_process(main, args)


def _in_process(main, args) -> types.SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's errors
            code = exit_.code
    return types.SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


def _nothing_trained(cache: Path) -> bool:
    return not list(cache.glob("trained/*.pt")) and not list(cache.glob("variants/*.pt"))


def _assert_stopped_early(r: subprocess.CompletedProcess, message: str, cache: Path) -> None:
    """Non-zero exit, one ``ERROR:`` line that holds ``message``, before collection, nothing trained."""
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and message in errors[0], out[-3000:]
    assert "Traceback" not in out
    assert "collected" not in r.stdout  # stopped while configuring: no test ran
    assert _nothing_trained(cache)


def _assert_cli_error(r: subprocess.CompletedProcess, message: str) -> None:
    """Exit status 2 and exactly one ``error:`` line (after any progress output) holding ``message``."""
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], r.stderr[-2000:]
    assert "Traceback" not in r.stdout + r.stderr


def _write_tiny_mnist(root: Path, n: int = 20) -> None:
    """The four MNIST files, as torchvision reads them, with ``n`` random images each."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        images, labels = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())


def _evil(marker: Path):
    """An object whose unpickling runs a shell command that creates ``marker``."""
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    return Evil()


# =============================================================================== bad input

@pytest.mark.parametrize("args, message", [
    (["--zoo-models", ","], "--zoo-models selects no model; valid models are: SimpleCNN_6x2"),
    (["--compression-methods", " , "], "--compression-methods selects no method; valid methods are: original"),
    (["--latency-batch-size", "abc"], "--latency-batch-size takes integers from 1 to 1024 such as 1,64; got 'abc'"),
    (["--latency-batch-size", "64,-1"], "--latency-batch-size takes integers from 1 to 1024 such as 1,64; got '64,-1'"),
    (["--zoo-cache", "{tmp}/a-file/cache"], "is not writable (Not a directory); point ZOO_CACHE or --zoo-cache"),
    # our own check, in pytest_configure, comes before pytest-benchmark's and explains the two passes
    (["--benchmark-only", "-n", "2"],
     "--benchmark-only cannot time under xdist (-n): prepare and gate in parallel with "
     "'pytest benchmarks/ -n auto --benchmark-disable', then time serially"),
], ids=["empty-models", "empty-methods", "batch-abc", "batch-negative", "unwritable-cache",
        "benchmark-only-xdist"])
def test_bad_options_stop_the_suite_early_with_one_sentence(tmp_path, suite_inprocess, args, message):
    (tmp_path / "a-file").write_text("a regular file: nothing can be created below it")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = suite_inprocess(*SMALL, *args)
    _assert_stopped_early(r, message, tmp_path / "cache")


@pytest.mark.parametrize("text, message", [
    ("[methods.static_int8\nmax_size_ratio = 0.3", "is not valid TOML (Expected ']' at the end of a table"),
    ("[methods.int4]\nmax_accuracy_drop = 1", "methods.int4: unknown method; valid methods are dynamic_int8"),
    ("[models.VGG16.methods.original]\nmin_accuracy = 90", "models.VGG16: unknown model; valid models are"),
    ("[profiles.smoke.methods.original]\nmin_accuracy = 'high'",
     "profiles.smoke.methods.original.min_accuracy: expected a number, got str 'high'"),
    ("[methods.static_int8]\nmax_size_ratio = -0.5", "methods.static_int8.max_size_ratio: -0.5 is out of range"),
], ids=["not-toml", "unknown-method", "unknown-model", "wrong-type", "out-of-range"])
def test_bad_thresholds_file_stops_the_suite_early(tmp_path, suite_inprocess, text, message):
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    r = suite_inprocess(*SMALL, "--thresholds", str(path))
    _assert_stopped_early(r, f"thresholds file {str(path)!r}", tmp_path / "cache")
    assert message in r.stderr


MNIST_WHERE = "MNIST not found under {root!r}: put the four MNIST files"
CIFAR_WHERE = ("CIFAR10 not found under {root!r}: put the extracted python version of CIFAR-10 in "
               "{root}/cifar-10-batches-py")


@pytest.mark.parametrize("models, root, message", [
    ("SimpleCNN_6x2", "empty", MNIST_WHERE + " (train-images-idx3-ubyte, "),
    ("SimpleCNN_6x2", "missing", MNIST_WHERE),
    ("EfficientNetB0Custom", "empty", CIFAR_WHERE),
    # MNIST is there, CIFAR-10 is not: the run must stop before EnhancedLeNet5 trains, not after
    ("EnhancedLeNet5,EfficientNetB0Custom", "mnist-only", CIFAR_WHERE),
], ids=["mnist-empty-root", "mnist-no-root", "cifar10-empty-root", "cifar10-missing-mnist-present"])
def test_missing_data_stops_the_suite_before_anything_trains(tmp_path, suite_inprocess, models, root, message):
    data = tmp_path / "data"
    if root != "missing":
        data.mkdir()
    if root == "mnist-only":
        _write_tiny_mnist(data)
    r = suite_inprocess("--zoo-profile", "full", "--zoo-data-root", str(data), "--zoo-models", models,
               "--compression-methods", "original", "--benchmark-disable")
    _assert_stopped_early(r, message.format(root=str(data)), tmp_path / "cache")
    assert r.returncode == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize("models, root, message", [
    ("SimpleCNN_6x2", "empty", MNIST_WHERE + " (train-images-idx3-ubyte, "),
    ("EfficientNetB0Custom", "empty", CIFAR_WHERE),
    ("EnhancedLeNet5,EfficientNetB0Custom", "mnist-only", CIFAR_WHERE),
], ids=["mnist-empty-root", "cifar10-empty-root", "cifar10-missing-mnist-present"])
def test_missing_data_stops_zoo_train_before_anything_trains(tmp_path, models, root, message):
    data = tmp_path / "data"
    data.mkdir()
    if root == "mnist-only":
        _write_tiny_mnist(data)
    cache = tmp_path / "cache"
    r = _zoo_cli("train", "--profile", "full", "--data-root", str(data), "--models", models, "--cache", str(cache))
    _assert_cli_error(r, message.format(root=str(data)))
    assert "epoch" not in r.stderr and _nothing_trained(cache)


def test_zoo_train_rejects_an_empty_selection_and_an_unwritable_cache(tmp_path):
    cache = tmp_path / "cache"
    r = _zoo_cli("train", "--profile", "smoke", "--models", ",", "--cache", str(cache))
    _assert_cli_error(r, "no model selected; valid names are: SimpleCNN_6x2")
    assert _nothing_trained(cache)
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file")
    r = _zoo_cli("train", "--profile", "smoke", "--models", MODEL, "--cache", str(blocker / "cache"))
    _assert_cli_error(r, f"cache directory {str(blocker / 'cache')!r} is not writable (Not a directory); "
                         f"point ZOO_CACHE or --zoo-cache at a writable directory.")
    assert "epoch" not in r.stderr


# =============================================================================== faults: the cache

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """EnhancedLeNet5 on the smoke profile and its dynamic INT8 variant, built cleanly in a cache
    of their own: what every recovered artifact must equal."""
    root = tmp_path_factory.mktemp("reference-cache")
    cache = ArtifactCache(root)
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    variant = cached.get_variant(tm, "dynamic_int8", cache)
    assert not tm.from_cache and not variant.from_cache
    return root, tm, variant


def _same_metrics(a: dict, b: dict) -> bool:
    drop = lambda m: {k: v for k, v in m.items() if k != "build_seconds"}  # noqa: E731
    return drop(a) == drop(b)


def _warm_copy(reference, tmp_path: Path):
    """A copy of the reference cache, its trained model loaded from it, and the variant entry's path."""
    root, _, _ = reference
    shutil.copytree(root, tmp_path / "cache")
    cache = ArtifactCache(tmp_path / "cache")
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert tm.from_cache
    (entry,) = (tmp_path / "cache" / "variants").glob("*.pt")
    return cache, tm, entry


def _assert_rebuilt_as_before(cache: ArtifactCache, tm, reference, got) -> None:
    ref = reference[2]
    assert not got.from_cache and len(cache.builds) == 1
    assert _same_metrics(got.metrics, ref.metrics), (got.metrics, ref.metrics)
    x = tm.data.val.first_batch(16)
    with torch.inference_mode():
        assert torch.equal(got.model(x), ref.model(x))
    again = cached.get_variant(tm, "dynamic_int8", cache)
    assert again.from_cache and _same_metrics(again.metrics, ref.metrics)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "malicious_pickle", "malicious_inside_entry",
                                    "cache_format"])
def test_damaged_variant_entry_is_reported_and_rebuilt(tmp_path, reference, damage):
    cache, tm, entry = _warm_copy(reference, tmp_path)
    data = entry.read_bytes()
    marker = tmp_path / "pwned"
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    elif damage == "malicious_pickle":
        torch.save({"format": 1, "evil": _evil(marker)}, entry)
    elif damage == "malicious_inside_entry":  # right format, key and checksum, the payload where the weights go
        blob = read_entry(entry)
        blob["variant"]["state_dict"] = _evil(marker)
        write_entry(entry, blob)
    else:  # an entry written by another version of the cache
        blob = read_entry(entry)
        blob["format"] = 0
        write_entry(entry, blob)
    if damage.startswith("malicious"):  # the planted payload is live: an unsafe load would run it
        raw = entry.read_bytes()
        payload = raw[raw.index(b"\n", raw.index(b"\n") + 1) + 1:] if raw.startswith(MAGIC) else raw
        torch.load(io.BytesIO(payload), weights_only=False)
        assert marker.exists()
        marker.unlink()
    with pytest.warns(CacheWarning, match="discarding unreadable cache entry .*variants.*rebuilding it"):
        got = cached.get_variant(tm, "dynamic_int8", cache)
    assert not marker.exists()  # refused, never run
    _assert_rebuilt_as_before(cache, tm, reference, got)


@pytest.mark.parametrize("field, value", [("method", "static_int8"), ("format", "variant-v0")])
def test_variant_of_another_compression_version_is_rebuilt(tmp_path, reference, field, value):
    cache, tm, entry = _warm_copy(reference, tmp_path)
    blob = read_entry(entry)
    blob["variant"][field] = value  # the cache's own format, key and checksum still match
    write_entry(entry, blob)
    with warnings.catch_warnings(record=True) as caught:  # not pytest.warns: it would mask the error
        warnings.simplefilter("always")
        got = cached.get_variant(tm, "dynamic_int8", cache)
    assert any(issubclass(w.category, CacheWarning) for w in caught), [str(w.message) for w in caught]
    _assert_rebuilt_as_before(cache, tm, reference, got)


def _one_entry(tmp_path) -> tuple[ArtifactCache, Path]:
    """A cache holding one small entry (a tensor), and that entry's file."""
    cache = ArtifactCache(tmp_path / "cache")
    cache.get_or_build("variants", "M", {"a": 1}, lambda: {"w": torch.ones(3)})
    (path,) = (tmp_path / "cache" / "variants").glob("*.pt")
    return cache, path


def _rebuilt(tmp_path, cache: ArtifactCache, **kw) -> bool:
    return cache.get_or_build("variants", "M", {"a": 1}, lambda: {"w": torch.ones(3)}, **kw)[1]


def _out_of_memory(*_, **__):
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def _no_memory(*_, **__):
    raise MemoryError()


@pytest.mark.parametrize("where, fault", [("load", _out_of_memory), ("load", _no_memory),
                                          ("torch.load", _out_of_memory), ("torch.load", _no_memory)])
def test_a_transient_error_while_loading_keeps_the_entry_and_names_it(tmp_path, monkeypatch, where, fault):
    """Running out of memory while an entry loads says nothing about the entry, which may have taken
    hours to build: the error goes on, naming the entry, and the entry stays where it is."""
    cache, path = _one_entry(tmp_path)
    kw = {"load": fault} if where == "load" else {}
    if where == "torch.load":
        monkeypatch.setattr(torch, "load", fault)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # no discard
        with pytest.raises((RuntimeError, MemoryError), match=f"cache entry {path}.* left in place"):
            _rebuilt(tmp_path, cache, **kw)
    assert path.exists() and len(cache.builds) == 1  # the first build only


@pytest.mark.parametrize("damage", ["truncate", "garbage", "shape"])
def test_a_proven_corrupt_entry_is_still_discarded_and_rebuilt(tmp_path, damage):
    cache, path = _one_entry(tmp_path)
    kw = {}
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "garbage":
        path.write_bytes(MAGIC + os.urandom(400))
    else:  # intact, but the weights do not fit the model: what load_state_dict raises

        def load(blob):
            if len(cache.builds) == 1:  # the entry built by _one_entry
                raise RuntimeError("Error(s) in loading state_dict for Sequential:\n\tsize mismatch for 0.weight")
            return blob
        kw["load"] = load
    with pytest.warns(CacheWarning, match="discarding unreadable cache entry"):
        assert _rebuilt(tmp_path, cache, **kw)
    assert path.exists() and not _rebuilt(tmp_path, cache)


def test_the_lookup_without_the_lock_never_deletes(tmp_path):
    """The first lookup runs without the entry's lock, while another process may be rewriting the
    entry: what it finds wrong is only discarded under the lock, after a second look."""
    cache, path = _one_entry(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    cache.lock_timeout = 0.5
    with FileLock(str(path) + ".lock"):  # another process is building the entry
        with pytest.raises(Exception, match="lock"):
            _rebuilt(tmp_path, cache, on_wait=lambda: None)
    assert path.exists()


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from compression_bench import zoo

    where, cache = sys.argv[1], sys.argv[2]

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    def progress(r):
        print(f"epoch {r.epoch}/{r.epochs}", flush=True)
        if where == "training" and r.epoch == 1:
            die()

    if where == "saving":  # the entry is written to its temporary file; killed before the rename
        os.replace = die
    zoo.get_trained(sys.argv[3], "smoke", cache=cache, progress=progress)
    print("FINISHED", flush=True)
""")


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["training", "saving"])
def test_a_run_killed_mid_build_leaves_no_entry_and_no_blocking_lock(tmp_path, reference, where):
    cache_dir = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-P", "-c", _KILL_SCRIPT, where, str(cache_dir), MODEL], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == -signal.SIGKILL, r.stdout + r.stderr
    assert "epoch 1/2" in r.stdout and "FINISHED" not in r.stdout
    assert ("epoch 2/2" in r.stdout) == (where == "saving")
    left = sorted(p.name for p in (cache_dir / "trained").iterdir())
    assert not [n for n in left if n.endswith(".pt")], left  # no finished entry, complete or not
    assert all(n.endswith((".pt.lock", ".tmp")) for n in left), left
    (lock,) = (cache_dir / "trained").glob("*.pt.lock")  # the killed process never released it...
    assert bool(list((cache_dir / "trained").glob(".*.tmp"))) == (where == "saving")
    stale = FileLock(str(lock))
    stale.acquire(timeout=0)  # ...but its fcntl lock died with it: free at once
    stale.release()

    cache = ArtifactCache(cache_dir, lock_timeout=60)  # a lock that did block would fail, not hang
    again = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    ref = reference[1]
    assert not again.from_cache and again.accuracy == ref.accuracy
    for p, q in zip(again.model.state_dict().values(), ref.model.state_dict().values()):
        assert torch.equal(p, q)
    loaded = zoo.get_trained(MODEL, "smoke", cache=ArtifactCache(cache_dir), progress=None)
    assert loaded.from_cache and loaded.accuracy == ref.accuracy


COMPARED = ("accuracy", "original_accuracy", "params", "nonzero_params", "sparsity", "size_mib",
            "zero_aware_size_mib", "macs", "density_weighted_macs")


def _results(report_dir: Path) -> dict:
    rows = json.loads((report_dir / "results.json").read_text())["results"]
    return {(r["model"], r["method"], r["batch_size"]): {k: r.get(k) for k in COMPARED} for r in rows}


@pytest.mark.e2e
def test_two_sessions_on_one_cache_build_each_artifact_once_and_agree(tmp_path):
    cache = tmp_path / "cache"
    methods = ["original", "dynamic_int8", "static_int8"]
    args = ["--benchmark-disable", "--zoo-models", MODEL, "--compression-methods", ",".join(methods)]
    procs = [subprocess.Popen(_suite_cmd(tmp_path, args, report=f"report{i}"), cwd=ROOT,
                              env=_env(ZOO_CACHE=str(cache)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=2700)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert f"{len(methods)} passed" in out
    built = [line.split("\t")[2] for line in (cache / "builds.log").read_text().splitlines()]
    # each exactly once: the trained model, then per method the variant and its metrics
    assert len(built) == 1 + 2 * len(methods) and len(set(built)) == len(built), built
    on_disk = {str(p.relative_to(cache)) for p in cache.glob("*/*.pt")}
    assert set(built) == on_disk
    a, b = _results(tmp_path / "report0"), _results(tmp_path / "report1")
    assert len(a) == len(methods) and a == b


# =============================================================================== faults: saved runs

def _saved_run(path: Path) -> Path:
    """A results.json as the suite writes it, two variants of one model."""
    rec = {"model": MODEL, "method": "original", "label": "Original", "batch_size": 64, "accuracy": 97.0,
           "params": 1_119_882, "nonzero_params": 1_119_882, "size_mib": 4.28, "latency_median_ms": 1.0,
           "profile": "smoke"}
    recs = [rec, dict(rec, method="dynamic_int8", label="Quantization (Dynamic)", accuracy=96.5, size_mib=1.24)]
    path.write_text(json.dumps({"format": 1, "header": {"Profile": "smoke"}, "results": recs}, indent=2))
    return path


@pytest.mark.parametrize("kind, message", [
    ("pickle-protocol-0", "is not a JSON file (Expecting value at line 1, column 1)."),
    ("pickle-protocol-5", "is not a JSON file (it is not even UTF-8 text)."),
    ("truncated", "is not a JSON file (Unterminated string"),
    ("results-without-format", "is not a saved benchmark run of this suite"),
    ("results-older-entries", "is a results file with an incomplete entry (each needs model, method, accuracy, "
                              "size_mib, params)."),
    ("benchmarks-not-objects", "has a malformed benchmark entry (expected an object, got list)."),
])
def test_compare_refuses_a_corrupt_or_foreign_run_with_one_sentence(tmp_path, kind, message):
    good = _saved_run(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    marker = tmp_path / "pwned"
    if kind.startswith("pickle"):
        payload = pickle.dumps(_evil(marker), protocol=int(kind[-1]))
        pickle.loads(payload)  # the payload is live: unpickling it would run it
        assert marker.exists()
        marker.unlink()
        bad.write_bytes(payload)
    elif kind == "truncated":
        text = good.read_text()
        bad.write_text(text[: text.index('"dynamic_int8"') + 5])
    elif kind == "results-without-format":
        data = json.loads(good.read_text())
        del data["format"]
        bad.write_text(json.dumps(data))
    elif kind == "results-older-entries":
        data = json.loads(good.read_text())
        for r in data["results"]:
            del r["params"]  # saved before params were recorded
        bad.write_text(json.dumps(data))
    else:
        bad.write_text(json.dumps({"benchmarks": [["test_variant[M-original-bs64]", 0.01]]}))
    for a, b in ((good, bad), (bad, good)):
        r = _bench_cli("compare", str(a), str(b))  # in this process; its console-script wiring: test_reports.py (e2e)
        assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith(f"compression-bench compare: error: {bad} ") and message in r.stderr
    assert not marker.exists()  # saved runs are read as JSON only: the pickle never ran


# =============================================================================== determinism

@pytest.mark.e2e
def test_same_profile_twice_from_empty_caches_gives_identical_figures(tmp_path):
    """Two models, every method: two sessions at once (one thread each), each on an empty cache of
    its own, give the same accuracy, parameter counts, sparsity, sizes and MACs for every variant."""
    models = [MODEL, "SimpleCNN_6x2"]
    methods = compression.list_methods()
    args = ["--benchmark-disable", "--zoo-models", ",".join(models), "--bench-threads", "1"]
    procs = [subprocess.Popen(_suite_cmd(tmp_path, args, report=f"report{i}"), cwd=ROOT,
                              env=_env(ZOO_CACHE=str(tmp_path / f"cache{i}")), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=3600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    for i in range(2):  # each session built everything itself
        built = (tmp_path / f"cache{i}" / "builds.log").read_text().splitlines()
        assert len(built) == len(models) * (1 + 2 * len(methods))  # trained, then variant + metrics per method
    a, b = _results(tmp_path / "report0"), _results(tmp_path / "report1")
    assert len(a) == len(models) * len(methods) and a.keys() == b.keys()
    diffs = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not diffs, diffs
