"""The zoo: registry, datasets (real torchvision loaders on files written here), training, cache."""
from __future__ import annotations

import hashlib
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from compression_bench import zoo
from compression_bench.zoo import ArtifactCache, CacheError, CacheWarning, DataError
from compression_bench.zoo.cache import read_entry, write_entry

ROOT = Path(__file__).resolve().parents[1]

# Parameter counts of the founding report (millions).
REPORT_PARAMS_M = {"SimpleCNN_6x2": 5.94, "EnhancedLeNet5": 1.11,
                   "EfficientNetB0Custom": 4.06, "ResNet50Custom": 23.6}


def test_our_compression_package_is_imported():
    # Python 3.14 ships a standard-library package named `compression`; ours must win.
    # Wherever it is installed (editable from the source folder, or a wheel in site-packages).
    import importlib.util
    from compression_bench import compression
    assert compression.__name__ == "compression_bench.compression" and hasattr(compression, "list_methods")
    stdlib = importlib.util.find_spec("compression")  # None before 3.14
    assert stdlib is None or Path(stdlib.origin).parent != Path(compression.__file__).parent


def test_registry_lists_the_four_founding_models():
    assert zoo.list_models() == list(REPORT_PARAMS_M)


@pytest.mark.parametrize("name", list(REPORT_PARAMS_M))
def test_parameter_counts_match_the_report_within_3_percent(name):
    n = zoo.count_parameters(zoo.build(name)) / 1e6
    assert abs(n - REPORT_PARAMS_M[name]) / REPORT_PARAMS_M[name] <= 0.03, n


@pytest.mark.parametrize("name", list(REPORT_PARAMS_M))
def test_models_trace_with_fx_and_torch_pruning(name):
    import torch_pruning as tp
    info = zoo.get_model_info(name)
    model = zoo.build(name).eval()
    x = torch.randn(2, *info.input_shape)
    gm = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(gm(x), model(x))
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    # every conv's output channels form a pruning group the graph knows about
    assert all(dg.get_pruning_group(c, tp.prune_conv_out_channels, [0]) for c in convs)
    assert model(x).shape == (2, info.num_classes)


def test_unknown_names_fail_with_the_valid_ones():
    with pytest.raises(zoo.UnknownModelError, match="valid names are: SimpleCNN_6x2"):
        zoo.build("LeNet")
    with pytest.raises(zoo.UnknownProfileError, match="valid profiles are: smoke, quick, default, full"):
        zoo.get_profile("fast")
    with pytest.raises(DataError, match="valid names are: digits"):
        zoo.load_dataset("imagenet", (3, 32, 32))


def test_digits_split_is_fixed_stratified_three_way_and_shaped_per_model():
    a = zoo.load_dataset("digits", (1, 28, 28))
    b = zoo.load_dataset("digits", (3, 32, 32))
    assert (len(a.train), len(a.val), len(a.test)) == (1347, 225, 225)
    assert a.report is a.test and a.report_split == "test"
    assert torch.equal(a.val.labels, b.val.labels) and torch.equal(a.test.labels, b.test.labels)
    # stratified: each class keeps its share of the whole set in validation and in test, to one image
    whole = torch.cat([a.train.labels, a.val.labels, a.test.labels]).bincount().float()
    assert (a.test.labels.bincount().float() - whole * 225 / 1797).abs().max() <= 1.0
    assert (a.val.labels.bincount().float() - whole * 225 / 1797).abs().max() <= 1.0
    # the three splits are disjoint: no test image was trained on or tuned on
    rows = lambda s: {tuple(x.flatten().tolist()) for x in s.images}  # noqa: E731
    assert not (rows(a.test) & rows(a.train)) and not (rows(a.test) & rows(a.val))
    # nor is any test image one of the 450 the founding recipes were chosen by (scikit-learn's 25%
    # stratified hold-out with seed 0): those are split between validation and training
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from compression_bench.zoo.data import fit_shape
    digits = load_digits()
    _, tuned = train_test_split(np.arange(len(digits.target)), test_size=0.25, stratify=digits.target,
                                random_state=0)
    raw = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    tuned_rows = {tuple(x.flatten().tolist()) for x in fit_shape(raw[tuned], (1, 28, 28))}
    assert len(tuned_rows & rows(a.val)) == 225 and len(tuned_rows & rows(a.train)) == 225
    assert not tuned_rows & rows(a.test)
    assert a.train.images.shape[1:] == (1, 28, 28) and b.train.images.shape[1:] == (3, 32, 32)
    x = b.train.first_batch(8)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey replicated
    assert abs(float(a.train.first_batch(2000).mean())) < 0.05  # normalised on the train split
    again = zoo.load_dataset("digits", (1, 28, 28))
    assert torch.equal(again.train.images, a.train.images)


def test_smoke_profile_uses_small_balanced_subsets():
    data = zoo.get_data("EnhancedLeNet5", "smoke")
    assert (len(data.train), len(data.val), len(data.test)) == (200, 100, 100)
    assert data.train.labels.bincount().tolist() == [20] * 10


# ---------------------------------------------------------------- torchvision on-disk formats

def _write_idx(path: Path, array: np.ndarray) -> None:
    kind = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, kind, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root: Path, n_train: int = 30, n_test: int = 20) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_mnist_loads_through_torchvision_from_a_data_root(tmp_path):
    write_tiny_mnist(tmp_path)
    data = zoo.load_dataset("mnist", (1, 28, 28), data_root=str(tmp_path))
    # a validation split carved from the training set (a tenth here; 5,000 of the real 60,000), stratified
    assert (len(data.train), len(data.val), len(data.test)) == (20, 10, 20)
    assert data.report is data.test and data.val.labels.bincount().tolist() == [1] * 10
    assert data.train.images.dtype == torch.uint8
    assert data.test.labels.tolist() == [i % 10 for i in range(20)]
    assert data.train.first_batch(4).shape == (4, 1, 28, 28)


def test_cifar10_loads_through_torchvision_from_a_data_root(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)

    def batch(name, n):
        d = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "labels": list(np.arange(n) % 10),
             "batch_label": name}
        (base / name).write_bytes(pickle.dumps(d))
        return [name, hashlib.md5((base / name).read_bytes()).hexdigest()]

    train_list = [batch(f"data_batch_{i}", 4) for i in range(1, 6)]
    test_list = [batch("test_batch", 6)]
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    meta = dict(CIFAR10.meta, md5=hashlib.md5((base / "batches.meta").read_bytes()).hexdigest())
    # torchvision verifies its files against the real archive's checksums: give it ours
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", test_list)
    monkeypatch.setattr(CIFAR10, "meta", meta)
    data = zoo.load_dataset("cifar10", (3, 32, 32), data_root=str(tmp_path))
    assert (len(data.train), len(data.val), len(data.test)) == (10, 10, 6)
    assert data.train.images.shape[1:] == (3, 32, 32)
    assert data.train.first_batch(3).shape == (3, 3, 32, 32)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_dataset_says_where_the_files_go(tmp_path, name):
    with pytest.raises(DataError, match="not found under .*: put .*" + ("MNIST" if name == "mnist" else "cifar-10-batches-py")):
        zoo.load_dataset(name, (1, 28, 28) if name == "mnist" else (3, 32, 32), data_root=str(tmp_path))


# ---------------------------------------------------------------- training and cache

def test_training_is_repeatable_and_cached(tmp_path):
    cache = ArtifactCache(tmp_path)
    first = zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    # it learned: 85% on the smoke subset here, against 10% for chance
    assert not first.from_cache and first.accuracy >= 60.0
    again = zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    assert again.from_cache and again.accuracy == first.accuracy
    for p, q in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(p, q)
    # a second cold training with the same recipe gives the same figures
    other = zoo.get_trained("EnhancedLeNet5", "smoke", cache=ArtifactCache(tmp_path / "b"), progress=None)
    assert not other.from_cache and other.accuracy == first.accuracy
    assert zoo.evaluate(again.model, again.data.val) == first.accuracy


def test_cache_key_changes_with_the_recipe():
    smoke, default = zoo.get_profile("smoke"), zoo.get_profile("default")
    k1 = zoo.hash_parts(zoo.cache_parts("EnhancedLeNet5", smoke))
    k2 = zoo.hash_parts(zoo.cache_parts("EnhancedLeNet5", default))
    assert k1 != k2 and k1 == zoo.hash_parts(zoo.cache_parts("EnhancedLeNet5", smoke))


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "malicious_pickle"])
def test_damaged_cache_entry_is_reported_and_rebuilt(tmp_path, damage):
    cache = ArtifactCache(tmp_path)
    first = zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    (path,) = cache.builds
    data = Path(path).read_bytes()
    marker = tmp_path / "pwned"
    if damage == "truncate":
        Path(path).write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        Path(path).write_bytes(b"")
    elif damage == "garbage":
        Path(path).write_bytes(os.urandom(4096))
    else:
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))
        torch.save({"format": 1, "evil": Evil()}, path)
    with pytest.warns(CacheWarning, match="discarding unreadable cache entry"):
        again = zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    assert not again.from_cache and again.accuracy == first.accuracy
    assert not marker.exists()  # the planted pickle never ran
    assert zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None).from_cache


def test_entry_of_another_format_is_not_loaded_as_current(tmp_path):
    cache = ArtifactCache(tmp_path)
    zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None)
    (path,) = cache.builds
    blob = read_entry(path)
    blob["format"] = 0
    write_entry(path, blob)
    with pytest.warns(CacheWarning, match="another version"):
        assert not zoo.get_trained("EnhancedLeNet5", "smoke", cache=cache, progress=None).from_cache


def test_unwritable_cache_fails_with_the_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="is not writable.*ZOO_CACHE or --zoo-cache"):
        ArtifactCache(blocker / "cache").check_writable()


@pytest.mark.e2e
def test_two_processes_train_the_same_model_once(tmp_path):
    script = textwrap.dedent("""
        import sys
        from compression_bench import zoo
        tm = zoo.get_trained("EnhancedLeNet5", "smoke", cache=sys.argv[1], progress=None)
        print("RESULT", "cache" if tm.from_cache else "trained", tm.accuracy)
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-P", "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=900)[0].split("RESULT")[-1].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(r[0] for r in results) == ["cache", "trained"]  # one trained, one waited and loaded
    assert results[0][1] == results[1][1]
    assert len(list((tmp_path / "trained").glob("*.pt"))) == 1
    assert not list((tmp_path / "trained").glob("*.tmp"))


# ---------------------------------------------------------------- CLI

def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-P", "-m", "compression_bench.zoo", *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, **(env or {})), timeout=900)


@pytest.mark.e2e
def test_cli_list_shows_models_datasets_and_params():
    out = _cli("list").stdout
    for name in REPORT_PARAMS_M:
        assert name in out
    assert "23.53" in out and "fashion_mnist_small" in out  # the default profile's data


@pytest.mark.e2e
def test_cli_train_warms_the_cache_and_reports_accuracy(tmp_path):
    r = _cli("train", "--profile", "smoke", "--models", "EnhancedLeNet5", "--cache", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "EnhancedLeNet5" in r.stdout and "trained" in r.stdout
    assert "epoch" in r.stderr  # the progress bar
    r2 = _cli("train", "--profile", "smoke", "--models", "EnhancedLeNet5", "--cache", str(tmp_path))
    assert "cache" in r2.stdout


@pytest.mark.e2e
def test_cli_rejects_bad_names_before_training(tmp_path):
    r = _cli("train", "--models", "EnhancedLeNet5,Nope", "--cache", str(tmp_path))
    assert r.returncode == 2 and "unknown model 'Nope'" in r.stderr
    assert not (tmp_path / "trained").exists()
    r = _cli("train", "--profile", "fast", "--cache", str(tmp_path))
    assert r.returncode == 2 and "unknown profile 'fast'" in r.stderr


def test_training_uses_a_fixed_thread_count_whatever_the_session_uses(tmp_path, monkeypatch):
    # an xdist worker runs with 1 thread, a serial session with 2: the checkpoint must not differ
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = zoo.get_trained("EnhancedLeNet5", "smoke", cache=ArtifactCache(tmp_path / "a"), progress=None)
        assert torch.get_num_threads() == 1  # restored after training
        torch.set_num_threads(2)
        two = zoo.get_trained("EnhancedLeNet5", "smoke", cache=ArtifactCache(tmp_path / "b"), progress=None)
    finally:
        torch.set_num_threads(before)
    assert one.meta["threads"] == two.meta["threads"] == 2
    for p, q in zip(one.model.state_dict().values(), two.model.state_dict().values()):
        assert torch.equal(p, q)
    monkeypatch.setenv("ZOO_TRAIN_THREADS", "1")
    assert zoo.cache_parts("EnhancedLeNet5", zoo.get_profile("smoke"))["train_threads"] == 1
    monkeypatch.setenv("ZOO_TRAIN_THREADS", "many")
    with pytest.raises(ValueError, match="ZOO_TRAIN_THREADS must be a positive integer"):
        zoo.cache_parts("EnhancedLeNet5", zoo.get_profile("smoke"))


def test_the_digits_digest_is_the_same_on_every_cpu_class():
    """The data's digest is part of every cache key: a model prepared on one machine is found on
    another only if both compute the same digest. ATen's float32 kernels round differently per
    instruction set (resizing, reductions), so the digest comes from the images resized in float64;
    here torch's capability is capped to its plain C++ kernels in a child and the digests compared."""
    import subprocess
    import sys
    code = ("from compression_bench.zoo.data import load_digits_data\n"
            "print(load_digits_data((1, 28, 28)).digest(), load_digits_data((3, 32, 32)).digest())")
    here = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=300)
    capped = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ATEN_CPU_CAPABILITY": "default"})
    assert here.returncode == 0 and capped.returncode == 0, here.stderr + capped.stderr
    assert here.stdout.split() == capped.stdout.split()
