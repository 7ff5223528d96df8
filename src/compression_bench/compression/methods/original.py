"""``original``: the trained float model itself, the row every other is compared with."""
from __future__ import annotations

import copy

from ..specs import Method, register_method


@register_method
class Original(Method):
    kind = "original"
    family = "original"
    label = "Original"
    compression = "N/A"
    order = 0.0

    def build(self, spec, model, ctx):
        return copy.deepcopy(model)
