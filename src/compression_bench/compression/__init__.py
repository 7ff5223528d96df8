"""Model compression methods for the benchmark suite: a plain library.

    from compression_bench.compression import list_methods, get_method, compress, CompressionContext

    ctx = CompressionContext(example_inputs=x, calibration=lambda: batches,
                             finetune=my_finetune, num_classes=10, profile="default")
    variant = compress(model, "static_int8", ctx)        # model is not modified
    blob = export_variant(variant, "static_int8")        # plain data: torch.save it
    again = load_variant(blob, build_float_model(), "static_int8", ctx)

Methods are registered by stable id (:func:`list_methods`: the default matrix in
report order; ``list_methods(include_optional=True)``: every registered id).
:func:`get_method` also takes any level (``structured@0.6``) and compositions
(``structured_50+static_int8``: prune, fine-tune, then quantize the pruned model),
and returns the spec with its report label, compression text, fine-tune budget
per profile and ``settings(profile)`` for cache keys. A new method is one module
in ``src/compression_bench/compression/methods/`` defining a :class:`Method` subclass decorated with
:func:`register_method`. Measurements (parameters, sparsity, sizes, MACs) are in
:mod:`compression_bench.compression.measure`.
"""

from .api import compress, export_variant, load_variant
from .context import CompressionContext, FineTuneFn
from .measure import (
    count_macs,
    count_nonzero,
    count_params,
    density_weighted_macs,
    serialized_size_mib,
    sparsity,
    zero_aware_size_mib,
)
from .specs import (
    PROFILES,
    FineTune,
    Method,
    MethodSpec,
    UnknownMethodError,
    UnknownProfileError,
    budgets,
    get_method,
    list_kinds,
    list_methods,
    other_forms,
    register_composition,
    register_method,
)

__all__ = [
    "CompressionContext",
    "FineTune",
    "FineTuneFn",
    "Method",
    "MethodSpec",
    "PROFILES",
    "UnknownMethodError",
    "UnknownProfileError",
    "compress",
    "count_macs",
    "count_nonzero",
    "count_params",
    "density_weighted_macs",
    "export_variant",
    "get_method",
    "budgets",
    "list_kinds",
    "list_methods",
    "other_forms",
    "register_composition",
    "register_method",
    "load_variant",
    "serialized_size_mib",
    "sparsity",
    "zero_aware_size_mib",
]
