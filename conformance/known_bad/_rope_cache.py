"""The zoo control's RoPE from given caches (spec rope.cache.*), as small overridable steps.

`CacheSteps` is mixed into `_base.ZooAdapter`; the bugs of known_bad/rope_cache.py override one
step each. Computes in the control's compute dtype (float64 for float64, float32 otherwise) and
rounds once. Written from the spec, sharing no code with attnconf.reference.
"""
from __future__ import annotations

import numpy as np

from attnconf.dtypes import dtype_name


class CacheSteps:
    """The steps of rope_cache; `self` is a ZooAdapter (compute_dtype, output_dtype)."""

    def cache_rows(self, cache, position_ids):
        """(B, 1, T, r/2): row position_ids[b, t] of the cache for token t (rope.cache.lookup)."""
        return cache[np.asarray(position_ids)][:, None]

    def cache_pairs(self, r: int, layout: str):
        """Channel indices (u, w) of each pair: (i, i + r/2) half, (2i, 2i + 1) interleaved."""
        i = np.arange(r // 2)
        return (i, i + r // 2) if layout == "half" else (2 * i, 2 * i + 1)

    def rope_cache(self, x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
        name = dtype_name(x.dtype)
        dt = self.compute_dtype(name)
        xs = np.asarray(x).astype(dt)
        r = xs.shape[-1] if rotary_dim is None else int(rotary_dim)
        if r % 2 or not 2 <= r <= xs.shape[-1] or np.asarray(cos_cache).shape[-1] != r // 2:
            raise ValueError(f"rotary_dim should be even, 2 <= r <= E, with caches r/2 wide, but got {r}")
        c = self.cache_rows(np.asarray(cos_cache).astype(dt), position_ids)
        s = self.cache_rows(np.asarray(sin_cache).astype(dt), position_ids)
        u, w = self.cache_pairs(r, layout)
        out = xs.copy()
        out[..., u] = xs[..., u] * c - xs[..., w] * s
        out[..., w] = xs[..., w] * c + xs[..., u] * s
        return out.astype(self.output_dtype(name))
