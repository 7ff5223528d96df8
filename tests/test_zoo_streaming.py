"""Streamed datasets: a split backed by a torch Dataset holds about one batch of it at a time,
gives the batches a materialised split gives, trains, and serves a model's own dataset under
every profile (an ImageFolder included)."""
from __future__ import annotations

import weakref

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset, Subset

from compression_bench import zoo
from compression_bench.zoo import ArtifactCache, DataError, Recipe, StreamingSplit


class Counting(Dataset):
    """Banded images of ``classes`` classes that counts the items it handed out and are still alive.

    Every item is a fresh tensor; ``live`` goes down when it is freed, ``peak`` is the most alive
    at once, ``reads`` how many were handed out. With ``targets`` the labels are public, as in
    torchvision's datasets; without, a streamed split must read them item by item.
    """

    def __init__(self, n: int, shape=(1, 8, 8), classes: int = 4, seed: int = 0, targets: bool = True):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % classes
        self.images = (torch.rand(n, *shape, generator=g) * 80).to(torch.uint8)
        rows = shape[1] // classes
        for c in range(classes):
            self.images[self.labels == c, :, c * rows:(c + 1) * rows, :] += 150
        if targets:
            self.targets = self.labels.tolist()
        self.live = self.peak = self.reads = 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i].clone()
        self.live += 1
        self.reads += 1
        self.peak = max(self.peak, self.live)
        weakref.finalize(image, self._freed)
        return image, int(self.labels[i])

    def _freed(self) -> None:
        self.live -= 1

    def reset(self) -> None:
        self.peak = self.live
        self.reads = 0


def _bundle(train, val, **kw) -> zoo.DataBundle:
    return zoo.DataBundle.from_datasets("counting", train, val, mean=0.4, std=0.3, scale=1 / 255, **kw)


def test_a_dataset_over_the_budget_is_streamed_and_never_held_whole(monkeypatch):
    train, val = Counting(400, (3, 16, 16)), Counting(300, (3, 16, 16), seed=1)
    monkeypatch.setattr(zoo.splits, "MAX_IN_MEMORY_MIB", 0.25)  # the two take 0.51 MiB
    data = _bundle(train, val)
    assert isinstance(data.train, StreamingSplit) and isinstance(data.val, StreamingSplit)
    assert data.num_classes == 4 and (len(data.train), len(data.val)) == (400, 300)
    train.reset()
    seen = 0
    for x, y in data.train.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 16, 16)
        assert train.live <= 32  # the batch's own items are gone, only its pixels stay
        seen += len(y)
    assert seen == train.reads == 400 and train.peak <= 32

    train.reset()
    val.reset()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 16 * 16, 4))
    result = zoo.fit(model, data, Recipe(epochs=1, batch_size=32, shift=0.1), epochs=1, lr=0.05, progress=None)
    assert train.reads == 800 and train.peak <= 32  # one epoch and one batch-norm pass, batch by batch
    assert val.reads == 300 and val.peak <= 256     # evaluation reads batches of 256
    assert result.accuracy == zoo.evaluate(model, data.val)

    monkeypatch.setattr(zoo.splits, "MAX_IN_MEMORY_MIB", 1)  # under the budget: read into memory
    held = Counting(400, (3, 16, 16))
    assert isinstance(_bundle(held, val).train, zoo.Split) and held.peak == 400  # what the counter sees


def test_streamed_and_materialised_splits_give_the_same_batches():
    ds = Counting(90, (1, 8, 8), classes=3)
    streamed = _bundle(ds, ds, input_shape=(3, 12, 12), stream=True)
    held = _bundle(ds, ds, input_shape=(3, 12, 12), stream=False)
    assert isinstance(streamed.train, StreamingSplit) and isinstance(held.train, zoo.Split)
    assert streamed.train.image_shape == tuple(held.train.images.shape[1:]) == (3, 12, 12)
    assert torch.equal(streamed.train.labels, held.train.labels)
    assert torch.equal(streamed.train.first_batch(64), held.train.first_batch(64))

    def epoch(split, seed):
        return list(split.batches(16, shuffle=True, generator=torch.Generator().manual_seed(seed)))

    for a, b in zip(epoch(streamed.train, 5), epoch(held.train, 5), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(epoch(streamed.train, 5)[0][1], epoch(streamed.train, 6)[0][1])
    small, small_held = streamed.train.subset(30), held.train.subset(30)
    assert isinstance(small, StreamingSplit) and len(small) == 30
    assert small.labels.bincount().tolist() == [10, 10, 10]
    assert torch.equal(small.labels, small_held.labels)
    for a, b in zip(small.batches(7), small_held.batches(7), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert streamed.train.subset(None) is streamed.train


def test_labels_without_targets_are_read_one_item_at_a_time():
    ds = Counting(50, classes=5, targets=False)
    split = StreamingSplit(ds, mean=0.4, std=0.3, scale=1 / 255)
    assert split.labels.tolist() == [i % 5 for i in range(50)] and ds.peak == 1
    sub = StreamingSplit(Subset(Counting(50, classes=5), list(range(10, 30))), mean=0.4, std=0.3)
    assert sub.labels.tolist() == [i % 5 for i in range(10, 30)]  # through the Subset's targets


def test_streamed_items_that_break_the_rules_fail_with_a_data_error():
    ds = Counting(20)
    ds.targets = [0] * 20  # targets that disagree with the items
    with pytest.raises(DataError, match="item 1 of Counting has label 1 but its targets say 0"):
        list(StreamingSplit(ds, mean=0.0, std=1.0).batches(8))
    with pytest.raises(DataError, match="item 0 of list is not .*PILToTensor"):
        StreamingSplit([([0.0] * 4, 1)], mean=0.0, std=1.0)
    with pytest.raises(DataError, match="mean and std need 1 or 1 values"):
        StreamingSplit(Counting(4), mean=(0.1, 0.2), std=1.0)
    with pytest.raises(DataError, match="is empty"):
        StreamingSplit(Counting(0), mean=0.0, std=1.0)


# ---------------------------------------------------------------- a model's own dataset

def five_class_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d((5, 1)), nn.Flatten(), nn.Linear(8 * 5, 5))


def load_bands5(input_shape, *, data_root, download):
    return zoo.DataBundle.from_datasets("bands5", Counting(250, (3, 40, 40), classes=5),
                                        Counting(100, (3, 40, 40), classes=5, seed=1),
                                        mean=0.4, std=0.3, scale=1 / 255, input_shape=input_shape, stream=True)


@pytest.fixture
def bands5():
    zoo.register_dataset("bands5", load_bands5, description="five classes of bands, 3x40x40")
    zoo.register_model("Bands5Net", input_shape=(3, 40, 40), num_classes=5, dataset="bands5",
                       description="a small five-class CNN")(five_class_net)
    yield "Bands5Net"
    zoo.unregister_model("Bands5Net")
    zoo.unregister_dataset("bands5")


def test_a_model_with_its_own_dataset_uses_it_under_every_profile_and_trains_on_smoke(bands5, tmp_path):
    assert [zoo.get_profile(p).dataset_for(bands5) for p in zoo.PROFILES] == ["bands5"] * len(zoo.PROFILES)
    assert zoo.get_model_info(bands5).full_dataset == "bands5"
    tm = zoo.get_trained(bands5, "smoke", cache=ArtifactCache(tmp_path), progress=None)
    assert tm.data.name == "bands5" and tm.data.num_classes == tm.info.num_classes == 5
    assert isinstance(tm.data.train, StreamingSplit) and (len(tm.data.train), len(tm.data.val)) == (200, 100)
    assert tm.data.train.labels.bincount().tolist() == [40] * 5  # smoke's stratified subset of it
    assert tm.model(tm.data.val.first_batch(4)).shape == (4, 5)
    assert tm.accuracy > 40.0  # learned something: chance is 20%
    assert zoo.cache_parts(bands5, zoo.get_profile("smoke"))["dataset"] == "bands5"
    assert zoo.get_trained(bands5, "smoke", cache=ArtifactCache(tmp_path), progress=None).from_cache


def test_builtin_models_keep_their_datasets_and_dataset_excludes_another_full_dataset():
    for name in zoo.list_models():
        info = zoo.get_model_info(name)
        assert info.dataset is None
        assert [zoo.get_profile(p).dataset_for(name) for p in zoo.PROFILES] == ["digits", "digits", "fashion_mnist_small",
                                                                                     info.full_dataset]
    with pytest.raises(ValueError, match="dataset='a' is used by every profile, full_dataset='b' by the full"):
        zoo.register_model("Both", input_shape=(3, 8, 8), dataset="a", full_dataset="b", description="x")
    assert "Both" not in zoo.list_models()


# ---------------------------------------------------------------- an ImageFolder

def test_an_image_folder_of_pngs_streams_with_its_classes(tmp_path):
    from PIL import Image
    from torchvision import datasets, transforms

    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for k, (cls, rgb) in enumerate(colours.items()):
        (tmp_path / cls).mkdir()
        for i in range(4):  # of different sizes, one grey: input_shape makes them alike
            image = Image.new("RGB", (10 + 2 * i, 12 + k), rgb)
            (image.convert("L") if i == 3 else image).save(tmp_path / cls / f"{i}.png")
    folder = datasets.ImageFolder(str(tmp_path), transform=transforms.PILToTensor())
    data = zoo.DataBundle.from_datasets("pngs", folder, folder, mean=0.5, std=0.5, scale=1 / 255,
                                        input_shape=(3, 8, 8), stream=True)
    assert isinstance(data.train, StreamingSplit) and data.num_classes == 3 and len(data.train) == 12
    assert data.train.labels.tolist() == folder.targets == [0] * 4 + [1] * 4 + [2] * 4
    x, y = next(data.train.batches(12))
    assert x.shape == (12, 3, 8, 8) and y.tolist() == folder.targets
    for image, label in zip(x[[0, 1, 2, 4, 5, 6, 8, 9, 10]], y[[0, 1, 2, 4, 5, 6, 8, 9, 10]]):
        strongest = {0: 2, 1: 1, 2: 0}[int(label)]  # blue, green, red: the channel that is lit
        assert int(image.mean((1, 2)).argmax()) == strongest
    held = zoo.DataBundle.from_datasets("pngs", folder, folder, mean=0.5, std=0.5, scale=1 / 255,
                                        input_shape=(3, 8, 8), stream=False)
    assert torch.equal(held.train.first_batch(12), data.train.first_batch(12))


def test_an_edited_image_file_is_new_data_for_the_cache_key(tmp_path):
    """A streamed ImageFolder is keyed on its files: editing one image (same name, same size
    class) changes the digest, and so every cache key built on the data; reading it again does not."""
    import os

    from PIL import Image
    from torchvision import datasets, transforms

    for k, cls in enumerate(("a", "b")):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (8, 8), 40 * i + 100 * k).save(tmp_path / cls / f"{i}.png")

    def digest(**kw):
        folder = datasets.ImageFolder(str(tmp_path), transform=transforms.PILToTensor(), **kw)
        data = zoo.DataBundle.from_datasets("pngs", folder, folder, mean=0.5, std=0.5, scale=1 / 255,
                                            stream=True)
        return data.digest()

    first = digest()
    assert digest() == first
    middle = tmp_path / "a" / "1.png"  # neither the first nor the last item: only the file list sees it
    stat = os.stat(middle)
    Image.new("L", (8, 8), 7).save(middle)
    os.utime(middle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert digest() != first
    held = zoo.DataBundle.from_datasets("pngs", *[datasets.ImageFolder(str(tmp_path), transform=transforms.PILToTensor())] * 2,
                                        mean=0.5, std=0.5, scale=1 / 255, stream=False)
    assert held.digest() != first and held.digest() == held.digest()


@pytest.mark.parametrize("stream", [False, True])
def test_a_test_split_is_where_accuracies_are_reported_and_counts_in_the_key(stream):
    train, val, test = Counting(80), Counting(40, seed=1), Counting(60, seed=2)
    data = _bundle(train, val, test=test, stream=stream)
    assert data.report is data.test and data.report_split == "test" and len(data.test) == 60
    assert data.description == "counting, 80 train / 40 validation / 60 test"
    without = _bundle(train, val, stream=stream)
    assert without.report is without.val and without.report_split == "validation"
    assert data.digest() != without.digest()   # a test split is part of what a cache key holds
    cut = data.subset(20, 8, 12)
    assert (len(cut.train), len(cut.val), len(cut.test)) == (20, 8, 12)
    assert cut.test.labels.bincount().tolist() == [3, 3, 3, 3]   # stratified
