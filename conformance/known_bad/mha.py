"""Multi-head attention layer bugs: head split, head merge, weight layout, bias."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class MhaHeadSplitStrided(ZooAdapter):
    """Heads split as reshape (B, T, E, H): head h gets the strided columns h, h+H, … instead of
    the block h·E … (h+1)·E−1. Bug class: multi-head head split."""

    name = "known-bad/mha-head-split-strided"
    bug_class = "multi-head head split"

    def split_heads(self, x, heads):
        bsz, t, width = x.shape
        return x.reshape(bsz, t, width // heads, heads).transpose(0, 3, 1, 2)


class MhaMergeWithoutTranspose(ZooAdapter):
    """Heads merged by reshaping (B, H, L, Ev) straight to (B, L, H·Ev), skipping the transpose.
    Bug class: multi-head head merge."""

    name = "known-bad/mha-merge-without-transpose"
    bug_class = "multi-head head merge"

    def merge_heads(self, x):
        bsz, h, t, ev = x.shape
        return x.reshape(bsz, t, h * ev)


class MhaWeightsTransposed(ZooAdapter):
    """Projection weights applied as x @ Wᵀ (torch.nn.Linear / in_proj_weight convention) where
    the canonical weights are applied as x @ W: a shape error unless W is square, wrong values
    when it is. Bug class: multi-head weight layout."""

    name = "known-bad/mha-weights-transposed"
    bug_class = "multi-head weight layout"

    def project(self, x, w, b):
        y = np.matmul(x, np.swapaxes(w, -1, -2))
        return y if b is None else y + b


class MhaKeyBiasOnValue(ZooAdapter):
    """The key bias bk is added to the value projection and bv dropped (a mix-up of the packed
    in_proj_bias slices). Bug class: multi-head bias."""

    name = "known-bad/mha-bias-swapped"
    bug_class = "multi-head bias"

    def multi_head_attention(self, query_input, key_value_input, weights, **kw):
        w = dict(weights)
        if "bk" in w and "bv" in w and np.shape(w["bk"]) == np.shape(w["bv"]):
            w["bv"] = w["bk"]
        return super().multi_head_attention(query_input, key_value_input, w, **kw)
