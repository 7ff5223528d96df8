"""Open registries of the zoo: a model or a dataset added by the user trains, loads and is keyed
like the built-in ones (generic recipes, pretrained checkpoints, datasets from torch Datasets)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from compression_bench import zoo
from compression_bench.zoo import ArtifactCache, DataError, Recipe, WeightsError


def tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def other_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))


def three_class_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.fixture
def register():
    """``register.model(name, builder, **kw)`` and ``register.dataset(name, loader, **kw)``,
    both removed again after the test."""
    models, datasets = [], []

    class Register:
        @staticmethod
        def model(name, builder, **kw):
            kw.setdefault("description", "a test model")
            zoo.register_model(name, **kw)(builder)
            models.append(name)

        @staticmethod
        def dataset(name, loader, **kw):
            zoo.register_dataset(name, loader, description=kw.get("description", "a test dataset"))
            datasets.append(name)

    yield Register
    for name in models:
        zoo.unregister_model(name)
    for name in datasets:
        zoo.unregister_dataset(name)
    assert zoo.list_datasets()[:3] == ["digits", "mnist", "cifar10"]


# ---------------------------------------------------------------- models

def test_a_fifth_model_without_a_recipe_trains_on_smoke_with_the_generic_recipe(register, tmp_path):
    register.model("TinyCNN", tiny_cnn, input_shape=(1, 16, 16))
    assert zoo.list_models()[-1] == "TinyCNN" and len(zoo.list_models()) == 5
    for name in zoo.PROFILES:  # no KeyError under any profile
        prof = zoo.get_profile(name)
        assert prof.recipe_for("TinyCNN") == prof.generic
        assert zoo.cache_parts("TinyCNN", prof)["model"] == "TinyCNN"
    tm = zoo.get_trained("TinyCNN", "smoke", cache=ArtifactCache(tmp_path), progress=None)
    assert not tm.from_cache and tm.recipe == zoo.get_profile("smoke").generic
    assert len(tm.meta["history"]) == tm.recipe.epochs and tm.data.train.images.shape[1:] == (1, 16, 16)
    assert tm.accuracy > 30.0  # learned something: chance is 10%
    # the founding models keep their own table entries
    assert zoo.get_profile("smoke").recipe_for("EnhancedLeNet5") == Recipe(epochs=2, lr=0.05)


def test_a_models_own_recipe_wins_per_profile(register):
    one = Recipe(epochs=1, lr=0.01)
    register.model("OneRecipe", tiny_cnn, input_shape=(1, 16, 16), recipe=one)
    register.model("PerProfile", tiny_cnn, input_shape=(1, 16, 16), recipe={"default": one})
    assert all(zoo.get_profile(p).recipe_for("OneRecipe") == one for p in zoo.PROFILES)
    assert zoo.get_profile("default").recipe_for("PerProfile") == one
    assert zoo.get_profile("smoke").recipe_for("PerProfile") == zoo.get_profile("smoke").generic
    with pytest.raises(ValueError, match="unknown profile.*fast.*valid profiles are: smoke"):
        zoo.register_model("Bad", input_shape=(1, 16, 16), description="x", recipe={"fast": one})(tiny_cnn)
    with pytest.raises(ValueError, match="registered twice"):
        zoo.register_model("OneRecipe", input_shape=(1, 16, 16), description="x")(tiny_cnn)
    with pytest.raises(zoo.UnknownModelError, match="valid names are"):
        zoo.unregister_model("Nope")


def _save(path, model: nn.Module, wrapped: bool = False) -> dict:
    state = model.state_dict()
    torch.save({"state_dict": state, "epoch": 3} if wrapped else state, path)
    return state


def test_a_model_with_a_checkpoint_loads_it_without_training(register, tmp_path, monkeypatch):
    ckpt = tmp_path / "tiny.pt"
    torch.manual_seed(1)
    saved = _save(ckpt, tiny_cnn())
    register.model("Pretrained", tiny_cnn, input_shape=(1, 16, 16), weights=ckpt)
    monkeypatch.setattr(zoo.trained, "train", lambda *a, **k: pytest.fail("a model with weights was trained"))
    cache = ArtifactCache(tmp_path / "cache")
    tm = zoo.get_trained("Pretrained", "smoke", cache=cache, progress=None)
    assert not tm.from_cache and tm.meta["history"] == [] and tm.meta["weights"] == str(ckpt)
    for k, v in saved.items():
        assert torch.equal(tm.model.state_dict()[k], v)
    assert tm.accuracy == zoo.evaluate(tm.model, tm.data.val)
    key = tm.key
    assert zoo.get_trained("Pretrained", "smoke", cache=cache, progress=None).from_cache

    torch.manual_seed(2)  # new weights in the same file: a new entry holding them
    saved2 = _save(ckpt, tiny_cnn(), wrapped=True)
    tm2 = zoo.get_trained("Pretrained", "smoke", cache=cache, progress=None)
    assert not tm2.from_cache and tm2.key != key
    assert tm2.meta["weights_sha256"] == zoo.cache_parts("Pretrained", zoo.get_profile("smoke"))["weights_sha256"]
    for k, v in saved2.items():
        assert torch.equal(tm2.model.state_dict()[k], v)


def test_a_bad_checkpoint_fails_with_one_sentence_naming_the_file(register, tmp_path):
    missing = tmp_path / "missing.pt"
    register.model("NoFile", tiny_cnn, input_shape=(1, 16, 16), weights=missing)
    with pytest.raises(WeightsError, match=rf"checkpoint '{missing}' of model 'NoFile' does not exist; put "
                                           r"the file there .*or fix the weights= path") as info:
        zoo.get_trained("NoFile", "smoke", cache=ArtifactCache(tmp_path / "c"), progress=None)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)
    assert "\n" not in str(info.value) and info.value.__cause__ is None

    other = tmp_path / "other.pt"
    _save(other, other_cnn())
    register.model("WrongKeys", tiny_cnn, input_shape=(1, 16, 16), weights=other)
    with pytest.raises(WeightsError, match=rf"checkpoint '{other}' does not fit model 'WrongKeys' \(.*missing keys"):
        zoo.get_trained("WrongKeys", "smoke", cache=ArtifactCache(tmp_path / "c"), progress=None)

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    register.model("Junk", tiny_cnn, input_shape=(1, 16, 16), weights=junk)
    with pytest.raises(WeightsError, match=rf"checkpoint '{junk}' .* is not a torch.save file"):
        zoo.get_trained("Junk", "smoke", cache=ArtifactCache(tmp_path / "c"), progress=None)


# ---------------------------------------------------------------- datasets

def _three_classes(n: int, seed: int) -> TensorDataset:
    """8x8 grey images: class c has a bright band in rows 3c..3c+1, on noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    for c in range(3):
        images[labels == c, :, 3 * c:3 * c + 2, :] += 0.7
    return TensorDataset(images, labels)


def load_tiny3(input_shape, *, data_root, download):
    return zoo.DataBundle.from_datasets("tiny3", _three_classes(60, 0), _three_classes(30, 1),
                                        mean=0.3, std=0.3, input_shape=input_shape)


def test_a_dataset_from_a_torch_dataset_gives_its_classes_and_trains(register, tmp_path):
    register.dataset("tiny3", load_tiny3)
    assert "tiny3" in zoo.list_datasets() and zoo.DATASETS == ("digits", "mnist", "cifar10", "fashion_mnist_small", "fashion_mnist")
    data = zoo.load_dataset("tiny3", (1, 8, 8))
    assert data.num_classes == 3 and (len(data.train), len(data.val)) == (60, 30)
    assert data.train.first_batch(4).shape == (4, 1, 8, 8)
    assert zoo.load_dataset("tiny3", (3, 16, 16)).train.images.shape[1:] == (3, 16, 16)
    register.model("Three", three_class_net, input_shape=(1, 8, 8), num_classes=3, full_dataset="tiny3",
                   recipe=Recipe(epochs=5, batch_size=16, lr=0.05))
    tm = zoo.get_trained("Three", "full", cache=ArtifactCache(tmp_path), progress=None)
    assert tm.data.name == "tiny3" and tm.accuracy >= 90.0  # separable: chance is 33%

    register.model("TenOutputs", tiny_cnn, input_shape=(1, 16, 16), full_dataset="tiny3")
    with pytest.raises(DataError, match="'tiny3' has 3 classes but model 'TenOutputs' has 10 outputs; "
                                        "register the model with num_classes=3"):
        zoo.get_data("TenOutputs", "full")


def test_split_from_dataset_rejects_items_that_are_not_image_tensors():
    with pytest.raises(DataError, match="item 0 of list is not .*PILToTensor"):
        zoo.Split.from_dataset([([0.0] * 4, 1)], mean=0.0, std=1.0)
    with pytest.raises(DataError, match="labels must be integers"):
        zoo.Split.from_dataset(TensorDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0.5, 1.0])), mean=0.0, std=1.0)
    with pytest.raises(DataError, match="mean and std need 1 or 3 values"):
        zoo.Split.from_dataset(TensorDataset(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1])),
                               mean=(0.1, 0.2), std=1.0)


def test_unknown_dataset_lists_the_valid_ones(register):
    register.dataset("tiny3", load_tiny3)
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; valid names are: digits, mnist, cifar10, fashion_mnist_small, fashion_mnist, tiny3"):
        zoo.load_dataset("imagenet", (3, 32, 32))
    with pytest.raises(ValueError, match="registered twice"):
        zoo.register_dataset("digits", load_tiny3, description="again")
