"""The model zoo: architectures by name, datasets, training recipes and a trained-model cache.

A plain library (no pytest)::

    from compression_bench import zoo
    zoo.list_models()
    tm = zoo.get_trained("EnhancedLeNet5", "default")   # trains once, then loads from the cache
    tm.accuracy, tm.model

Models and datasets are open registries: ``register_model`` (a decorated builder, optionally
with its own recipe or pretrained weights) and ``register_dataset`` (a loader returning a
:class:`DataBundle`, e.g. built from ``torch.utils.data.Dataset`` objects with
``DataBundle.from_datasets``, which streams datasets too large for memory, see
:class:`StreamingSplit`). A model registered with ``dataset=`` trains on that dataset under every
profile.
"""
from . import models as _models  # noqa: F401  (registers the architectures)
from .cache import ArtifactCache, CacheError, CacheWarning, default_cache_dir, hash_parts
from .data import (DATASETS, DataBundle, DataError, DatasetInfo, Split, fit_shape, get_dataset_info,
                   list_datasets, load_dataset, register_dataset, unregister_dataset)
from .streaming import StreamingSplit
from .profiles import PROFILES, Profile, UnknownProfileError, get_profile
from .registry import (ModelInfo, UnknownModelError, build, count_parameters, get_model_info,
                       list_models, register_model, unregister_model)
from .trained import TrainedModel, cache_parts, get_data, get_trained
from .training import EpochReport, Recipe, evaluate, finetune, fit, print_progress, train
from .weights import WeightsError

__all__ = [
    "ArtifactCache", "CacheError", "CacheWarning", "DATASETS", "DataBundle", "DataError",
    "DatasetInfo", "EpochReport", "ModelInfo", "PROFILES", "Profile", "Recipe", "Split",
    "StreamingSplit", "TrainedModel", "UnknownModelError", "UnknownProfileError", "WeightsError", "build",
    "cache_parts", "count_parameters", "default_cache_dir", "evaluate", "finetune", "fit",
    "fit_shape", "get_data", "get_dataset_info", "get_model_info", "get_profile", "get_trained",
    "hash_parts", "list_datasets", "list_models", "load_dataset", "print_progress",
    "register_dataset", "register_model", "train", "unregister_dataset", "unregister_model",
]
