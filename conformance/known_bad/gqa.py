"""Grouped-query attention bugs: head order, group gradients."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class GqaTile(ZooAdapter):
    """K/V heads expanded by tiling ([h0, h1, h0, h1]) instead of repeat_interleave
    ([h0, h0, h1, h1]): the ONNX Attention reference before PR #7274, keras PR #23081.
    Bug class: GQA head order."""

    name = "known-bad/gqa-tile"
    bug_class = "GQA head order"

    def expand_kv(self, x, h):
        return np.tile(x, (1, h // x.shape[1], 1, 1))


class GqaGradsAveraged(ZooAdapter):
    """dk/dv of a kv head averaged over its query-head group instead of summed (a `mean` where
    the chain rule needs a sum). Bug class: gradient bugs (GQA grads not summed)."""

    name = "known-bad/gqa-grads-averaged"
    bug_class = "GQA gradients not summed"

    def reduce_kv_grad(self, d, hkv):
        return super().reduce_kv_grad(d, hkv) / (d.shape[1] // hkv)
