"""Bad input and faults found by a user probe: each bad input stops the run before anything trains
(exit status 4, one ``ERROR:`` sentence that names the valid range or the fix, no traceback); each
fault gives one sentence and the exit status docs/guide/exit-statuses.md documents, and loses no finished work.

docs/reliability/faults.md lists these cases with the test that covers each.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from compression_bench import zoo
from compression_bench.benchmarks.variants import cached
from compression_bench.benchmarks.reporting import files
from compression_bench.zoo import ArtifactCache, CacheError, CacheWarning
from compression_bench.zoo.cache import read_entry, write_entry

ROOT = Path(__file__).resolve().parents[1]
MODEL = "EnhancedLeNet5"
SMALL = ["--zoo-models", MODEL, "--compression-methods", "original,static_int8"]


def _suite(tmp_path: Path, *args, env=None, timeout=2700) -> subprocess.CompletedProcess:
    env = dict(env or {})
    full_env = dict(os.environ, ZOO_CACHE=str(tmp_path / "cache"))
    full_env.update(env)
    profile = [] if "ZOO_PROFILE" in env else ["--zoo-profile", "smoke"]  # the variable counts only without it
    cmd = [sys.executable, "-P", "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", *profile,
           "--latency-target-s", "0.05", "--latency-warmup", "1", "--float-baselines", "none", "--peak-memory", "off", *args]
    if not any(a.startswith("--report-dir") for a in args):
        cmd += ["--report-dir", str(tmp_path / "report")]
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


def _stopped_early(r: subprocess.CompletedProcess, message: str, tmp_path: Path) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 4, out[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and message in errors[0], out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert not list((tmp_path / "cache").glob("trained/*.pt"))  # nothing trained


def _random_mnist(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(os.urandom(4096))


# (id, arguments, environment, message). {tmp} is the test's temporary directory.
BAD_INPUT = [
    ("report-dir-is-a-file", ["--report-dir={tmp}/a-file"], {}, "--report-dir '{tmp}/a-file' cannot hold the report"),
    ("report-dir-in-proc", ["--report-dir=/proc/x"], {}, "--report-dir '/proc/x' cannot hold the report"),
    ("report-dir-under-a-file", ["--report-dir={tmp}/a-file/reports"], {},
     "--report-dir '{tmp}/a-file/reports' cannot hold the report (Not a directory)"),
    ("batch-huge", ["--latency-batch-size=1000000000"], {},
     "--latency-batch-size takes integers from 1 to 1024 such as 1,64; got '1000000000'"),
    ("batch-twice", ["--latency-batch-size=64,64"], {}, "--latency-batch-size names a value more than once"),
    ("threads-negative", ["--bench-threads=-1"], {}, "--bench-threads takes integers from 1 to"),
    ("threads-zero", ["--bench-threads=0"], {}, "--bench-threads takes integers from 1 to"),
    ("threads-text", ["--bench-threads=two"], {}, "--bench-threads takes integers from 1 to"),
    ("threads-above-cores", ["--bench-threads=999"], {}, "(the usable cores here) such as 1 or 1,2; got '999'"),
    ("warmup-negative", ["--latency-warmup=-1"], {}, "--latency-warmup takes a number of rounds from 0 to 100; got -1"),
    ("warmup-huge", ["--latency-warmup=1000000"], {}, "--latency-warmup takes a number of rounds from 0 to 100"),
    ("target-nan", ["--latency-target-s=nan"], {}, "--latency-target-s takes seconds above 0 and at most 60"),
    ("target-zero", ["--latency-target-s=0"], {}, "--latency-target-s takes seconds above 0 and at most 60"),
    ("target-negative", ["--latency-target-s=-5"], {}, "--latency-target-s takes seconds above 0"),
    ("target-inf", ["--latency-target-s=inf"], {}, "--latency-target-s takes seconds above 0"),
    ("precision-negative", ["--speedup-precision=-0.1"], {}, "--speedup-precision takes a fraction from 0 to 10"),
    ("slices-zero", ["--speed-slices=0"], {}, "--speed-slices takes a count from 1 to 5; got 0"),
    ("within-negative", ["--recommend-within=-1"], {}, "--recommend-within takes a number of points from 0 to 100"),
    ("thresholds-profiles-not-a-table", ["--thresholds={tmp}/profiles5.toml"], {},
     "profiles: expected a table of profiles"),
    ("thresholds-not-utf8", ["--thresholds={tmp}/latin1.toml"], {}, "is not UTF-8 text"),
    ("thresholds-method-not-a-table", ["--thresholds={tmp}/method5.toml"], {},
     "methods.static_int8: expected a table of thresholds"),
    ("mnist-random-bytes", ["--zoo-profile=full", "--zoo-data-root={tmp}/data", "--zoo-models=EnhancedLeNet5"], {},
     "the MNIST files under '{tmp}/data' could not be read"),
    ("device-cuda-without-gpu", ["--zoo-train-device=cuda"], {}, "this machine has no usable CUDA GPU; use cpu"),
    ("device-unknown", ["--zoo-train-device=tpu"], {}, "unknown training device 'tpu'; use cpu, cuda, cuda:N or auto"),
    ("device-from-env", [], {"ZOO_TRAIN_DEVICE": "cuda:3"}, "training device 'cuda:3'"),
    ("methods-twice", ["--compression-methods=original,dynamic_int8,original"], {},
     "--compression-methods names 'original' more than once; name each method once"),
    ("models-twice", ["--zoo-models=EnhancedLeNet5,EnhancedLeNet5"], {},
     "--zoo-models names 'EnhancedLeNet5' more than once"),
    ("train-threads-env", [], {"ZOO_TRAIN_THREADS": "many"}, "ZOO_TRAIN_THREADS must be a positive integer"),
    ("profile-from-env", [], {"ZOO_PROFILE": "huge"}, "unknown profile 'huge'"),
]


def _bad_input_case(tmp_path, args, env, message):
    import torch
    if "cuda" in message and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    (tmp_path / "a-file").write_text("a regular file")
    (tmp_path / "profiles5.toml").write_text("profiles = 5\n")
    (tmp_path / "latin1.toml").write_bytes("# gates for caf\xe9\n[methods.original]\nmin_accuracy = 90\n".encode("latin-1"))
    (tmp_path / "method5.toml").write_text("[methods]\nstatic_int8 = 5\n")
    _random_mnist(tmp_path / "data")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    extra = [] if any(a.startswith(("--zoo-models", "--compression-methods")) for a in args) else SMALL
    if any(a.startswith("--zoo-models") for a in args):
        extra = ["--compression-methods", "original"]
    return [*extra, *args], message.replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("args, env, message", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_stops_the_run_before_anything_trains(tmp_path, suite_inprocess, args, env, message):
    args, message = _bad_input_case(tmp_path, args, env, message)
    _stopped_early(suite_inprocess(*args, env=env), message, tmp_path)


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["models-twice", "device-from-env"])
def test_bad_input_stops_the_command_line_run_with_exit_status_4(tmp_path, case):
    """The same checks from the command line, in a child: the ERROR sentence and exit status 4."""
    _, args, env, message = next(c for c in BAD_INPUT if c[0] == case)
    args, message = _bad_input_case(tmp_path, args, env, message)
    _stopped_early(_suite(tmp_path, *args, env=env), message, tmp_path)


# =============================================================================== faults

@pytest.fixture(scope="module")
def built(tmp_path_factory, smoke_cache):
    """A smoke-profile cache holding EnhancedLeNet5 (from the shared cache) and its static INT8
    variant, and their figures."""
    import shutil
    root = tmp_path_factory.mktemp("built") / "cache"
    shutil.copytree(smoke_cache, root, ignore=shutil.ignore_patterns("complete", "*.lock"))
    cache = ArtifactCache(root)
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert tm.from_cache
    v = cached.get_variant(tm, "static_int8", cache)
    return root, tm.accuracy, v.metrics


def _copy(built, tmp_path) -> ArtifactCache:
    import shutil
    shutil.copytree(built[0], tmp_path / "cache")
    return ArtifactCache(tmp_path / "cache")


def _one(cache: ArtifactCache, kind: str) -> Path:
    (path,) = (cache.root / kind).glob("*.pt")
    return path


def test_a_bit_flip_in_a_trained_model_is_caught_and_rebuilt_to_the_right_figures(built, tmp_path):
    cache = _copy(built, tmp_path)
    path = _one(cache, "trained")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the tensor data of the weights
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="checksum mismatch"):
        tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert not tm.from_cache and tm.accuracy == built[1]
    v = cached.get_variant(tm, "static_int8", cache)  # same weights again: the variant stays valid
    assert v.from_cache and v.metrics["accuracy"] == built[2]["accuracy"]


def test_an_edited_metric_is_caught_and_measured_again(built, tmp_path):
    cache = _copy(built, tmp_path)
    path = _one(cache, "metrics")
    blob = read_entry(path)
    blob["metrics"]["accuracy"] = 99.99
    import torch, io  # noqa: E401 - rewrite the entry as a tool would that does not know the checksum
    buf = io.BytesIO()
    torch.save(blob, buf)
    raw = path.read_bytes()
    header_end = raw.index(b"\n", raw.index(b"\n") + 1) + 1
    path.write_bytes(raw[:header_end] + buf.getvalue())
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    with pytest.warns(CacheWarning, match="checksum mismatch"):
        v = cached.get_variant(tm, "static_int8", cache)
    assert v.from_cache and v.measured  # the variant was kept, only its metrics were measured again
    assert v.metrics["accuracy"] == built[2]["accuracy"] != 99.99


def test_a_parent_rebuilt_to_other_weights_rebuilds_what_was_derived_from_it(built, tmp_path):
    cache = _copy(built, tmp_path)
    path = _one(cache, "trained")
    blob = read_entry(path)
    first = next(iter(blob["state_dict"]))
    blob["state_dict"][first] = blob["state_dict"][first] * 0.5  # as if training had given other weights
    write_entry(path, blob)  # with a valid checksum: a legitimate, different parent
    tm = zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert tm.from_cache
    v = cached.get_variant(tm, "static_int8", cache)
    assert not v.from_cache and v.measured


def test_an_io_error_while_reading_an_entry_stops_and_keeps_the_entry(built, tmp_path, monkeypatch):
    cache = _copy(built, tmp_path)
    path = _one(cache, "trained")
    real = Path.read_bytes

    def failing(self):
        if self == path:
            raise OSError(errno.EIO, "Input/output error")
        return real(self)
    monkeypatch.setattr(Path, "read_bytes", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # no discard
        with pytest.raises(CacheError, match="could not read cache entry .* \\(Input/output error\\); it was left in "
                                             "place"):
            zoo.get_trained(MODEL, "smoke", cache=cache, progress=None)
    assert path.exists()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs: room for a trained EnhancedLeNet5 (4.3 MiB) it has not."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk for real ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.e2e
def test_a_full_disk_under_the_cache_stops_with_one_sentence_and_leaves_nothing_half_written(tmp_path, tiny_disk):
    r = _suite(tmp_path, *SMALL, "--benchmark-disable", env={"ZOO_CACHE": str(tiny_disk / "cache")})
    assert r.returncode == 7, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert "the disk under the cache is full" in out and "free some space or point ZOO_CACHE" in out
    assert "Traceback" not in out and out.count("epoch 1/") == 1  # trained once, not once per test
    assert not list((tiny_disk / "cache").rglob("*.pt")) and not list((tiny_disk / "cache").rglob("*.tmp"))


@pytest.mark.e2e
def test_a_full_disk_under_the_report_still_prints_the_tables_and_keeps_the_old_files(tmp_path, tiny_disk):
    reports = tiny_disk / "reports"
    reports.mkdir()
    (reports / "results.csv").write_text("an earlier run's results\n")
    with open(tiny_disk / "filler", "wb", buffering=0) as f:  # fill the disk to the last byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    r = _suite(tmp_path, *SMALL, "--benchmark-only", f"--report-dir={reports}")
    assert r.returncode == 7, r.stdout[-3000:] + r.stderr[-2000:]
    assert "| **Original**" in r.stdout  # the tables reached the terminal
    for name in ("report.md", "results.json", "results.csv"):
        assert f"could not write {reports}/{name} (No space left on device)" in r.stdout
    assert (reports / "results.csv").read_text() == "an earlier run's results\n"  # not truncated
    assert not list(reports.glob(".*.tmp"))


def test_write_results_names_every_file_it_could_not_write(tmp_path, monkeypatch):
    rec = {"model": "M", "method": "original", "label": "Original", "compression": "N/A", "accuracy": 90.0,
           "batch_size": 64, "threads": 1, "params": 1, "nonzero_params": 1, "size_mib": 1.0,
           "zero_aware_size_mib": 1.0, "macs": 1}
    real = files.write_atomic

    def failing(path, text):
        if path.name == "results.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)
    monkeypatch.setattr(files, "write_atomic", failing)
    paths, unwritten = files.write_results([rec], {}, tmp_path)
    assert set(paths) == {"report", "csv"} and len(unwritten) == 1 and "results.json" in unwritten[0]
    assert not (tmp_path / "results.json").exists()


@pytest.mark.e2e
def test_a_session_waiting_for_another_ones_build_says_so_on_the_terminal(tmp_path):
    cache = ArtifactCache(tmp_path / "cache")
    parts = zoo.cache_parts(MODEL, zoo.get_profile("smoke"))
    path = cache.path("trained", MODEL, zoo.hash_parts(parts))
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-P", "-c", f"from filelock import FileLock; import time; "
                               f"l = FileLock({str(path) + '.lock'!r}); l.acquire(); print('held', flush=True); "
                               f"time.sleep(25)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = _suite(tmp_path, "--zoo-models", MODEL, "--compression-methods", "original", "--benchmark-disable")
    finally:
        holder.wait(timeout=60)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "another process is training this model; waiting for it" in r.stdout  # not captured away


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"ok": True}))
    with pytest.raises(TypeError):
        files.write_atomic(path, 12345)  # not text: fails while writing
    assert json.loads(path.read_text()) == {"ok": True} and not list(tmp_path.glob(".*.tmp"))
