"""Bugs of RoPE from given caches (spec rope.cache.*): the cache read at the token's row instead of
its position, half and interleaved pairing swapped on cached tables.

Each class overrides one step of `_rope_cache.CacheSteps` (mixed into the control).
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class RopeCacheRowIndexed(ZooAdapter):
    """Reads cache row t for token t, ignoring position_ids: right for a prefill from 0 and wrong
    for every decode step, padded batch or packed sequence (spec rope.cache.lookup `row_index`;
    the lost-offset class of HF transformers PR #29285 and vLLM's positions argument). Bug class:
    rope cache indexed by row instead of position."""

    name = "known-bad/rope-cache-row-indexed"
    bug_class = "rope cache indexed by row instead of position"

    def cache_rows(self, cache, position_ids):
        b, t = np.asarray(position_ids).shape
        rows = np.broadcast_to(np.arange(t) % cache.shape[0], (b, t))
        return cache[rows][:, None]


class RopeCachePairingSwapped(ZooAdapter):
    """Pairs (2i, 2i + 1) when half pairing is asked for and the reverse, on the given tables
    (ONNX interleaved=0/1 or vLLM is_neox read the wrong way round; spec rope.cache.half and
    rope.cache.interleaved). Bug class: rope cache half and interleaved pairing swapped."""

    name = "known-bad/rope-cache-pairing-swapped"
    bug_class = "rope cache half and interleaved pairing swapped"

    def cache_pairs(self, r, layout):
        return super().cache_pairs(r, "interleaved" if layout == "half" else "half")
