"""The control's position-bias and position-id steps (spec/alibi.md, relative_position.md,
position_ids.md), written independently of attnconf.reference: plain NumPy and Python integers.

`PositionSteps` is a mixin of `_base.ZooAdapter`; each known-bad class of known_bad/positions.py
overrides one step. Float outputs follow the control's precision rule (float64 in float64, float32
otherwise, the output rounded once to the dtype); integer outputs are int64.
"""
from __future__ import annotations

import math

import numpy as np

from attnconf.dtypes import numpy_dtype


class PositionSteps:
    # -- ALiBi ------------------------------------------------------------------------------
    def alibi_exponents(self, n: int) -> list[tuple[int, int]]:
        """(k, q): head slope 2^(−max_bias·k/q); the paper's rule for n not a power of two."""
        p = 2 ** int(math.floor(math.log2(n)))
        return [(k, p) for k in range(1, p + 1)] + [(k, 2 * p) for k in range(1, 2 * p, 2)][: n - p]

    def alibi_distance(self, L: int, S: int, mode: str, alignment: str) -> np.ndarray:
        """The integer d of bias = m·d."""
        shift = S - L if alignment == "bottom_right" else 0
        rel = np.arange(S)[None, :] - (np.arange(L)[:, None] + shift)
        return {"causal": rel, "symmetric": -np.abs(rel),
                "row_constant": np.broadcast_to(np.arange(S)[None, :], (L, S))}[mode]

    def _alibi_slopes(self, n, max_bias, dtype):
        cd = self.compute_dtype(dtype)
        x = np.array([-float(max_bias) * k / q for k, q in self.alibi_exponents(int(n))], dtype=cd)
        return np.exp2(x)

    def alibi_slopes(self, num_heads, *, max_bias=8.0, dtype="float32"):
        return self._alibi_slopes(num_heads, max_bias, dtype).astype(numpy_dtype(dtype))

    def alibi_bias(self, num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
                   alignment="bottom_right", dtype="float32"):
        m = self._alibi_slopes(num_heads, max_bias, dtype)
        d = self.alibi_distance(int(query_length), int(key_length), mode, alignment).astype(m.dtype)
        return (m[:, None, None] * d[None]).astype(numpy_dtype(dtype))

    # -- T5 buckets, the T5 bias, Shaw's index -----------------------------------------------
    def bucket_count(self, num_buckets: int, bidirectional: bool) -> int:
        return num_buckets // 2 if bidirectional else num_buckets

    def bucket_max_exact(self, nb: int) -> int:
        return nb // 2

    def log_bucket(self, n: int, e: int, D: int, nb: int) -> int:
        """⌊ln(n/e)/ln(D/e)·(nb − e)⌋ exactly: the largest k with (n/e)^(nb−e) >= (D/e)^k."""
        span, k = nb - e, 0
        while k < span and n ** span * e ** (k + 1) >= D ** (k + 1) * e ** span:
            k += 1
        return k

    def relative_position_bucket(self, query_length, key_length, *, bidirectional=True, num_buckets=32,
                                 max_distance=128, query_offset=0):
        nb = self.bucket_count(int(num_buckets), bidirectional)
        e = self.bucket_max_exact(nb)
        out = np.zeros((int(query_length), int(key_length)), dtype=np.int64)
        cache: dict = {}
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                rel = j - (i + int(query_offset))
                base = nb if bidirectional and rel > 0 else 0
                n = abs(rel) if bidirectional else max(-rel, 0)
                if n not in cache:
                    cache[n] = n if n < e else min(e + self.log_bucket(n, e, int(max_distance), nb), nb - 1)
                out[i, j] = base + cache[n]
        return out

    def relative_position_bias(self, table, query_length, key_length, *, bidirectional=True,
                               num_buckets=32, max_distance=128, query_offset=0):
        b = self.relative_position_bucket(query_length, key_length, bidirectional=bidirectional,
                                          num_buckets=num_buckets, max_distance=max_distance,
                                          query_offset=query_offset)
        t = np.asarray(table)
        return np.transpose(self.lookup(t, b), (2, 0, 1))

    def relative_position_index(self, query_length, key_length, *, max_relative_position, alignment="top_left"):
        L, S, K = int(query_length), int(key_length), int(max_relative_position)
        shift = S - L if alignment == "bottom_right" else 0
        rel = np.arange(S)[None, :] - (np.arange(L)[:, None] + shift)
        return (np.clip(rel, -K, K) + K).astype(np.int64)

    # -- learned positions --------------------------------------------------------------------
    def roberta_offset(self, padding_idx: int) -> int:
        return padding_idx

    def past_offset(self, past_length: int) -> int:
        return past_length

    def position_ids(self, attention_mask, *, scheme, past_length=0, padding_idx=1):
        mask = np.asarray(attention_mask).astype(np.int64)
        P, T = int(past_length), mask.shape[1] - int(past_length)
        row = np.arange(T, dtype=np.int64)[None, :].repeat(mask.shape[0], axis=0)
        if scheme == "arange":
            return row
        if scheme == "past":
            return row + self.past_offset(P)
        if scheme == "roberta":
            m = mask[:, P:]
            return (np.cumsum(m, axis=1) + self.past_offset(P)) * m + self.roberta_offset(padding_idx)
        return (np.cumsum(mask, axis=1) * mask - 1)[:, P:] + self.opt_offset()

    def opt_offset(self) -> int:
        return 2

    def lookup(self, table, ids):
        t, i = np.asarray(table), np.asarray(ids)
        if i.size and (i.min() < 0 or i.max() >= t.shape[0]):
            raise IndexError(f"position_ids should be within [0, {t.shape[0]}), but got {i.min()} … {i.max()}")
        return t[i]

    def position_embedding(self, table, position_ids):
        return self.lookup(table, position_ids)
