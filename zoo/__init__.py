"""The model zoo: architectures by name, datasets, training recipes and a trained-model cache.

A plain library (no pytest)::

    from compression_bench import zoo
    zoo.list_models()
    tm = zoo.get_trained("EnhancedLeNet5", "default")   # trains once, then loads from the cache
    tm.accuracy, tm.model
"""
from . import models as _models  # noqa: F401  (registers the architectures)
from .cache import ArtifactCache, CacheError, CacheWarning, default_cache_dir, hash_parts
from .data import DATASETS, DataBundle, DataError, Split, load_dataset
from .profiles import PROFILES, Profile, UnknownProfileError, get_profile
from .registry import (ModelInfo, UnknownModelError, build, count_parameters, get_model_info,
                       list_models, register_model)
from .trained import TrainedModel, cache_parts, get_data, get_trained
from .training import EpochReport, Recipe, evaluate, finetune, fit, print_progress, train

__all__ = [
    "ArtifactCache", "CacheError", "CacheWarning", "DATASETS", "DataBundle", "DataError",
    "EpochReport", "ModelInfo", "PROFILES", "Profile", "Recipe", "Split", "TrainedModel",
    "UnknownModelError", "UnknownProfileError", "build", "cache_parts", "count_parameters",
    "default_cache_dir", "evaluate", "finetune", "fit", "get_data", "get_model_info",
    "get_profile", "get_trained", "hash_parts", "list_models", "load_dataset", "print_progress",
    "register_model", "train",
]
