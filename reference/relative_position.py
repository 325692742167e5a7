"""Relative positions (spec section `relpos`): T5's log buckets, T5's bias lookup, Shaw's clipping.

For what:
  relpos.bucket — T5 (HF `T5Attention._relative_position_bucket`, from Mesh TensorFlow):
    rel = j − (i + query_offset) (memory − context); bidirectional: nb = num_buckets // 2, bucket
    nb added where rel > 0, n = |rel|; causal: nb = num_buckets, n = max(−rel, 0); max_exact =
    nb // 2; n < max_exact: bucket n; else min(nb − 1, max_exact + ⌊ln(n/max_exact) /
    ln(max_distance/max_exact)·(nb − max_exact)⌋), the floor of the EXACT real number
    (relpos.bucket.exact): decided by integer arithmetic, (n/e)^(nb−e) >= (D/e)^k, never by a
    rounded logarithm. `float32_log_buckets` evaluates the log as HF does (relpos.bucket.float32_log,
    the named alternative the profile detects).
  relpos.bias — out[h, i, j] = table[bucket[i, j], h], table (num_buckets, H) (T5's
    Embedding(num_buckets, n_heads) weight): an exact lookup, in the table's dtype.
  relpos.index — Shaw et al. 2018: clip(j − i', −K, K) + K with i' = i (top_left) or i + (S − L)
    (bottom_right, tensor2tensor's last queries on the last keys).
Every path is exact (integers and lookups): `precision` and `exact` change nothing.
Must not: import any framework; round a logarithm to decide a bucket.

Shapes: bucket and index (L, S) int64; bias (H, L, S); L queries, S keys, H heads.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from attnconf.choices import RELATIVE_INDEX_ALIGNMENTS as ALIGNMENTS
from attnconf.validation import check_array, check_choice, check_int, fail



def check_bucket_options(num_buckets, max_distance, bidirectional) -> tuple[int, int, int]:
    """(nb, max_exact, max_distance) after T5's halving (relpos.bucket.options)."""
    if not isinstance(bidirectional, (bool, np.bool_)):
        fail("bidirectional", "a bool", repr(bidirectional), TypeError)
    total = check_int("num_buckets", num_buckets, minimum=2)
    nb = total // 2 if bidirectional else total
    if nb < 2:
        fail("num_buckets", ">= 4 when bidirectional (T5 halves it)", total)
    max_exact = nb // 2
    D = check_int("max_distance", max_distance, minimum=1)
    if D <= max_exact:
        fail("max_distance", f"> max_exact = {max_exact} (the log's base would be <= 1)", D)
    return nb, max_exact, D


@functools.lru_cache(maxsize=1024)
def _large_bucket(n: int, nb: int, e: int, D: int) -> int:
    """max_exact + ⌊ln(n/e)/ln(D/e)·(nb − e)⌋ capped at nb − 1, for n >= e, exactly."""
    span = nb - e
    guess = math.floor(math.log(n / e) / math.log(D / e) * span)
    # k <= ln(n/e)/ln(D/e)·span  <=>  n^span · e^k >= D^k · e^span  (all positive integers)
    ok = lambda k: n ** span * e ** k >= D ** k * e ** span   # noqa: E731
    k = max(guess - 1, 0)
    while k + 1 <= span and ok(k + 1):
        k += 1
    while k > 0 and not ok(k):
        k -= 1
    return min(e + k, nb - 1)


def _distances(query_length, key_length, query_offset) -> np.ndarray:
    L = check_int("query_length", query_length, minimum=1)
    S = check_int("key_length", key_length, minimum=1)
    off = check_int("query_offset", query_offset, minimum=0)
    return np.arange(S, dtype=np.int64)[None, :] - (np.arange(L, dtype=np.int64)[:, None] + off)


def relative_position_bucket(query_length, key_length, *, bidirectional=True, num_buckets=32,
                             max_distance=128, query_offset=0, precision=None, exact=False) -> np.ndarray:
    """T5's (L, S) int64 bucket ids (relpos.bucket, relpos.bucket.exact)."""
    nb, e, D = check_bucket_options(num_buckets, max_distance, bidirectional)
    rel = _distances(query_length, key_length, query_offset)
    if bidirectional:
        offset = np.where(rel > 0, nb, 0)
        n = np.abs(rel)
    else:
        offset = np.zeros_like(rel)
        n = np.maximum(-rel, 0)
    values, where = np.unique(n, return_inverse=True)
    table = np.array([v if v < e else _large_bucket(int(v), nb, e, D) for v in values.tolist()],
                     dtype=np.int64)
    return offset + table[where.reshape(n.shape)]


def float32_log_buckets(query_length, key_length, *, bidirectional=True, num_buckets=32,
                        max_distance=128, query_offset=0) -> np.ndarray:
    """HF's evaluation (relpos.bucket.float32_log): ln(float32(n)/e) in float32, divided by the
    float32 of the float64 ln(D/e), times nb − e, truncated. NumPy's float32 log, so it agrees
    with torch's only where neither lands next to an integer; what the profile and zoo call a
    rounded-log bucketing (relpos.bucket.float32_log)."""
    nb, e, D = check_bucket_options(num_buckets, max_distance, bidirectional)
    rel = _distances(query_length, key_length, query_offset)
    offset = np.where(rel > 0, nb, 0) if bidirectional else np.zeros_like(rel)
    n = np.abs(rel) if bidirectional else np.maximum(-rel, 0)
    ratio = np.log(np.maximum(n, e).astype(np.float32) / np.float32(e)) / np.float32(math.log(D / e))
    large = e + (ratio * np.float32(nb - e)).astype(np.int64)
    return offset + np.where(n < e, n, np.minimum(large, nb - 1))


def relative_position_bias(table, query_length, key_length, *, bidirectional=True, num_buckets=32,
                           max_distance=128, query_offset=0, precision=None, exact=False) -> np.ndarray:
    """(H, L, S) = table[bucket, h] (relpos.bias): the table's rows, in the table's dtype."""
    t = check_array("table", table, ndim=2, legend="(num_buckets, H)")
    if t.shape[0] != num_buckets:
        fail("table", f"shape (num_buckets = {num_buckets}, H)", f"shape {tuple(t.shape)}", verb="have")
    b = relative_position_bucket(query_length, key_length, bidirectional=bidirectional,
                                 num_buckets=num_buckets, max_distance=max_distance,
                                 query_offset=query_offset)
    return np.moveaxis(t[b], -1, 0)


def relative_position_index(query_length, key_length, *, max_relative_position, alignment="top_left",
                            precision=None, exact=False) -> np.ndarray:
    """Shaw et al.'s (L, S) int64 index clip(j − i', −K, K) + K into 2K + 1 vectors (relpos.index)."""
    K = check_int("max_relative_position", max_relative_position, minimum=1)
    check_choice("alignment", alignment, ALIGNMENTS)
    L = check_int("query_length", query_length, minimum=1)
    S = check_int("key_length", key_length, minimum=1)
    shift = S - L if alignment == "bottom_right" else 0   # i' = i + (S − L): may be negative
    rel = np.arange(S, dtype=np.int64)[None, :] - (np.arange(L, dtype=np.int64)[:, None] + shift)
    return np.clip(rel, -K, K) + K
