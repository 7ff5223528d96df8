"""Fashion-MNIST: the packaged subset the default profile trains on, and the whole set read from a data
root, Debian's folder or a download, every file checked against the SHA-256 of its content. The loaders
of the whole set run on small idx files the tests write; nothing here needs the real files."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from compression_bench import zoo
from compression_bench.zoo import fashion
from compression_bench.zoo.splits import DataError

ROOT = Path(__file__).resolve().parent.parent


def _fake_official(folder: Path, monkeypatch, *, train: int = 60, test: int = 20, gz: bool = True) -> dict:
    """Four small idx files in ``folder``, named as the official ones, with the module's checksums
    pointed at them; 10 classes, image i of class c is filled with 10 * c + i % 7."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = (labels[:, None, None] * 10 + (np.arange(n) % 7)[:, None, None]).astype(np.uint8)
        images = np.broadcast_to(images, (n, 28, 28)).copy()
        for kind, array in ((fashion.IMAGES, images), (fashion.LABELS, labels)):
            name = f"{prefix}-{kind}"
            raw = fashion.write_idx(folder / (name + ".gz"), array)
            if not gz:
                (folder / (name + ".gz")).unlink()
                (folder / name).write_bytes(raw)
            sums[name] = hashlib.sha256(raw).hexdigest()
    monkeypatch.setattr(fashion, "OFFICIAL_SHA256", sums)
    monkeypatch.setattr(fashion, "FULL_VAL_IMAGES", 10)
    return sums


def test_idx_files_round_trip_gzipped_byte_for_byte_the_same_on_every_write(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = fashion.write_idx(tmp_path / "a.gz", array)
    first = (tmp_path / "a.gz").read_bytes()
    fashion.write_idx(tmp_path / "a.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == first  # no time in the gzip header
    assert np.array_equal(fashion.read_idx(tmp_path / "a.gz", hashlib.sha256(raw).hexdigest()), array)
    (tmp_path / "a").write_bytes(raw)
    assert np.array_equal(fashion.read_idx(tmp_path / "a"), array)


def test_a_damaged_or_altered_file_is_a_data_error_naming_it(tmp_path):
    raw = fashion.write_idx(tmp_path / "a.gz", np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"a\.gz is not the Fashion-MNIST file .*SHA-256 differs"):
        fashion.read_idx(tmp_path / "a.gz", "0" * 64)
    (tmp_path / "t").write_bytes(raw[:-5])
    with pytest.raises(DataError, match="is truncated"):
        fashion.read_idx(tmp_path / "t")
    (tmp_path / "g.gz").write_bytes(gzip.compress(raw)[:-8])
    with pytest.raises(DataError, match=r"cannot read .*g\.gz"):
        fashion.read_idx(tmp_path / "g.gz")


def test_the_whole_set_is_read_from_the_data_root_in_torchvisions_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", str(tmp_path / "nothing"))
    _fake_official(tmp_path / "root" / "FashionMNIST" / "raw", monkeypatch, gz=False)
    bundle = zoo.load_dataset("fashion_mnist", (1, 28, 28), data_root=str(tmp_path / "root"))
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 10, 20)
    assert sorted(bundle.val.labels.tolist()) == list(range(10))  # stratified: one of each class
    assert bundle.report_split == "test" and bundle.num_classes == 10
    assert bundle.test.images.dtype == torch.uint8 and bundle.test.scale == pytest.approx(1 / 255)
    wide = zoo.load_dataset("fashion_mnist", (3, 32, 32), data_root=str(tmp_path / "root"))
    assert tuple(wide.train.images.shape[1:]) == (3, 32, 32) and wide.digest() != bundle.digest()


def test_debians_folder_is_used_when_the_data_root_has_no_files(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    monkeypatch.setattr(fashion, "SYSTEM_DIR", str(system))
    _fake_official(system, monkeypatch)
    bundle = zoo.load_dataset("fashion_mnist", (1, 28, 28), data_root=str(tmp_path / "empty-root"))
    assert len(bundle.test) == 20


def test_missing_files_say_where_they_go_and_an_offline_download_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", str(tmp_path / "nothing"))
    root = tmp_path / "root"
    with pytest.raises(DataError, match=rf"Fashion-MNIST not found: .* in {root}/FashionMNIST/raw, install "
                                        r"Debian's dataset-fashion-mnist or pass download=True \(--zoo-download\)"):
        zoo.load_dataset("fashion_mnist", (1, 28, 28), data_root=str(root))

    import torchvision.datasets

    class Offline:
        def __init__(self, *a, **k):
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(DataError, match=r"could not download Fashion-MNIST into .*no network\? Put the four files"):
        zoo.load_dataset("fashion_mnist", (1, 28, 28), data_root=str(root), download=True)


def test_the_packaged_subset_is_the_official_test_set_and_a_stratified_twelve_thousand():
    bundle = zoo.load_dataset("fashion_mnist_small", (1, 28, 28))
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (10_000, 2_000, 10_000)
    assert torch.bincount(bundle.val.labels).tolist() == [200] * 10
    assert torch.bincount(bundle.train.labels).tolist() == [1_000] * 10
    assert torch.bincount(bundle.test.labels).tolist() == [1_000] * 10
    assert bundle.report_split == "test" and bundle.num_classes == len(fashion.CLASSES) == 10
    notice = (fashion.SMALL_DIR / "LICENSE").read_text()
    assert "MIT" in notice and "Zalando SE" in notice


def test_an_altered_packaged_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "small"
    shutil.copytree(fashion.SMALL_DIR, copy)
    name = "t10k-" + fashion.LABELS
    raw = bytearray(gzip.decompress((copy / (name + ".gz")).read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one label changed
    (copy / (name + ".gz")).write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(fashion, "SMALL_DIR", copy)
    with pytest.raises(DataError, match="SHA-256 differs"):
        fashion.load_fashion_mnist_small((1, 28, 28))
    (copy / (name + ".gz")).unlink()
    with pytest.raises(DataError, match="is missing: reinstall compression-bench"):
        fashion.load_fashion_mnist_small((1, 28, 28))


def test_the_tool_writes_the_subset_from_the_official_files_the_same_twice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fashion, "SYSTEM_DIR", str(tmp_path / "nothing"))
    _fake_official(tmp_path / "root" / "FashionMNIST" / "raw", monkeypatch, train=200)
    monkeypatch.setattr(fashion, "SMALL_TRAIN_IMAGES", 50)
    spec = importlib.util.spec_from_file_location("make_small", ROOT / "tools" / "make_fashion_mnist_small.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    outputs = []
    for run in ("a", "b"):
        tool.main([str(tmp_path / "root"), "--out", str(tmp_path / run)])
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 5  # four files and the notice
    labels = fashion.read_idx(tmp_path / "a" / ("train-" + fashion.LABELS + ".gz"))
    assert len(labels) == 50 and np.bincount(labels).tolist() == [5] * 10
    printed = capsys.readouterr().out
    raw = gzip.decompress(outputs[0]["train-" + fashion.IMAGES + ".gz"])
    assert hashlib.sha256(raw).hexdigest() in printed


def test_the_default_profile_trains_the_zoo_on_fashion_mnist_and_fine_tunes_on_a_fixed_part():
    from compression_bench.zoo.trained import TrainedModel
    prof = zoo.get_profile("default")
    assert all(prof.dataset_for(m) == "fashion_mnist_small" for m in zoo.list_models()[:4])
    assert {zoo.get_profile(p).dataset_for("SimpleCNN_6x2") for p in ("smoke", "quick")} == {"digits"}
    assert prof.finetune_limit_for("EnhancedLeNet5") == prof.finetune_limit == 2000
    zoo.register_model("MineOnMine", input_shape=(1, 28, 28), description="x", dataset="cifar10")(torch.nn.Flatten)
    try:
        assert prof.finetune_limit_for("MineOnMine") is None  # sized for the zoo's data, not for a user's
    finally:
        zoo.unregister_model("MineOnMine")
    bundle = zoo.get_data("EnhancedLeNet5", prof)
    tm = TrainedModel(zoo.get_model_info("EnhancedLeNet5"), prof, prof.recipe_for("EnhancedLeNet5"), bundle,
                      torch.nn.Identity(), 0.0, "key", {}, False)
    part = tm.finetune_data
    assert len(part.train) == 2000 and torch.bincount(part.train.labels).tolist() == [200] * 10
    assert part.val is bundle.val and part.test is bundle.test
