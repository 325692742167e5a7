"""Attention over a paged KV cache (spec/paged.md, clauses paged.*): the reference.

For what: the (output, lse) that decode and prefill kernels reading their keys and values from a
block table (FlashAttention's `flash_attn_with_kvcache(block_table, cache_seqlens)`, vLLM's paged
attention, FlashInfer's paged wrappers, FlexAttention's PagedAttention) are judged against. It is
*defined* by gathering: sequence b's keys are the first `cache_lengths[b]` slots of the pages its
block-table row names, in order; the result is reference.lse.sdpa_lse over that contiguous
sequence, with the L queries the last L positions of each sequence (bottom-right). Nothing beyond
`cache_lengths[b]` is read: unused pages, the slots after the last key and the block-table
entries past the last used page are garbage by definition (paged.garbage).
Must not import any framework.

Math (per sequence b with K_b = cache_lengths[b], page size P, query row i, key t):

    page(b, t) = block_table[b, t // P],  slot(t) = t mod P                 (paged.gather)
    k_b[t] = key_pages[page(b, t), slot(t)],  v_b[t] likewise,  t = 0 … K_b − 1
    p_i = K_b − L + i                                                       (paged.positions)
    (output, lse)[b] = sdpa_lse(q_b, k_b, v_b) with the options, p_i as above (sdpa.opt.*)

Shapes: query (B, H, L, E); key_pages (N, P, Hkv, E), value_pages (N, P, Hkv, Ev) (N pages of
P slots, "NHD" as FlashAttention's k_cache); block_table (B, M) integers (M pages per sequence at
most, capacity M·P); cache_lengths (B,) integers 0 … M·P; output (B, H, L, Ev), lse (B, H, L).
"""
from __future__ import annotations

import numpy as np

from attnconf.validation import check_array, fail

# The sdpa options a paged call takes (sdpa.opt.*, measured from p_i above); query_offset,
# key_lengths and query_lengths are the cache's own (cache_lengths, the bottom-right rule).
OPTIONS = ("is_causal", "scale", "enable_gqa", "window", "softcap", "chunk", "fully_masked")
FLOAT_INPUTS = ("sinks", "alibi_slopes")


def check(query, key_pages, value_pages, block_table, cache_lengths):
    """The paged arguments, validated (paged.layout): (q, kp, vp, table, lengths) with the
    integers as int64. Only the block-table entries that hold keys (t < cache_lengths[b]) must
    name a page; the others are garbage and never read."""
    q = check_array("query", query, ndim=4, legend="(B, H, L, E)")
    kp = check_array("key_pages", key_pages, ndim=4, legend="(num_pages, page_size, Hkv, E)")
    vp = check_array("value_pages", value_pages, ndim=4, legend="(num_pages, page_size, Hkv, Ev)")
    for name, arr in (("key_pages", kp), ("value_pages", vp)):
        if arr.dtype != q.dtype:
            fail(f"{name} dtype", f"{q.dtype} (the query's dtype)", str(arr.dtype), TypeError)
    if vp.shape[:3] != kp.shape[:3]:
        fail("value_pages shape (num_pages, page_size, Hkv)", str(kp.shape[:3]), f"{vp.shape[:3]}")
    if kp.shape[3] != q.shape[3]:
        fail("key_pages head dim E", f"{q.shape[3]} (the query's last dim)", f"{kp.shape[3]} (shape {kp.shape})")
    if min(kp.shape[:2]) < 1:
        fail("num_pages and page_size", ">= 1", f"key_pages shape {kp.shape}")
    b = q.shape[0]
    table = _ints("block_table", block_table, 2, "(B, max_pages)")
    lengths = _ints("cache_lengths", cache_lengths, 1, "(B,)")
    if table.shape[0] != b or lengths.shape != (b,):
        fail("block_table and cache_lengths batch size", f"B = {b} (the query's)",
             f"shapes {table.shape} and {lengths.shape}")
    n, p = kp.shape[:2]
    capacity = table.shape[1] * p
    if (lengths < 0).any() or (lengths > capacity).any():
        fail("cache_lengths", f"between 0 and the capacity max_pages·page_size = {capacity}", lengths.tolist())
    used = np.arange(table.shape[1])[None, :] * p < lengths[:, None]        # pages holding keys
    if ((table < 0) | (table >= n))[used].any():
        fail("block_table entries of used pages", f"page indices in [0, {n})",
             sorted(set(table[used].tolist()) - set(range(n))))
    return q, kp, vp, table, lengths


def _ints(name, value, ndim, legend):
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        fail(name, f"an integer array of shape {legend}", type(value).__name__, TypeError)
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        fail(f"{name} dtype", "an integer dtype", str(arr.dtype), TypeError)
    if arr.ndim != ndim:
        fail(name, f"of shape {legend}", f"shape {arr.shape}", verb="be")
    return arr.astype(np.int64)


def gather(pages, table, lengths, width):
    """(B, Hkv, width, ·): sequence b's keys t < lengths[b] from their pages (paged.gather),
    zeros after them (never read from the pages: garbage stays out). width >= max(lengths).
    Whole pages are copied (one block of P·Hkv·· values each), then the slots past each length
    are zeroed in the copy; block-table entries of unused pages are never followed."""
    p = pages.shape[1]
    cols = -(-width // p)                                                   # pages covering width
    used = np.arange(cols)[None, :] * p < lengths[:, None]                  # (B, cols)
    tab = table[:, :cols]
    if tab.shape[1] < cols:                                                 # no pages at all (M = 0)
        tab = np.zeros((table.shape[0], cols), np.int64)
    rows = pages[np.where(used, tab, 0)]                                    # (B, cols, P, Hkv, ·)
    rows = rows.reshape(rows.shape[0], cols * p, *pages.shape[2:])[:, :width]
    rows[np.arange(width)[None, :] >= lengths[:, None]] = 0                 # garbage never kept
    return rows.transpose(0, 2, 1, 3)                                       # (B, Hkv, width, ·) view


def contiguous(query, key_pages, value_pages, block_table, cache_lengths):
    """The gathered problem: (key, value, lengths) of shape (B, Hkv, S, ·) with S = max(1, max
    cache_lengths), the sdpa arguments the paged call is defined by."""
    q, kp, vp, table, lengths = check(query, key_pages, value_pages, block_table, cache_lengths)
    width = max(1, int(lengths.max(initial=0)))
    return gather(kp, table, lengths, width), gather(vp, table, lengths, width), lengths


def sdpa_paged(query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
               scale=None, enable_gqa=False, window=None, softcap=None, chunk=None, sinks=None,
               alibi_slopes=None, fully_masked="zero", precision=None, exact=False):
    """Attention over a paged KV cache (spec/paged.md): (output, lse).

    = reference.lse.sdpa_lse(query, K, V, key_lengths=cache_lengths, causal_alignment=
    "bottom_right", ...) with K, V the gathered sequences (paged.gather): p_i = K_b − L + i.
    A sequence without keys (K_b = 0) has fully-masked rows: output 0, lse −∞ (paged.empty).
    query (B, H, L, E), key_pages (N, P, Hkv, E), value_pages (N, P, Hkv, Ev), block_table
    (B, M), cache_lengths (B,) -> output (B, H, L, Ev), lse (B, H, L); dtypes as sdpa_lse's.
    """
    from attnconf.reference.lse import sdpa_lse

    k, v, lengths = contiguous(query, key_pages, value_pages, block_table, cache_lengths)
    return sdpa_lse(query, k, v, key_lengths=lengths, causal_alignment="bottom_right",
                    is_causal=is_causal, scale=scale, enable_gqa=enable_gqa, window=window,
                    softcap=softcap, chunk=chunk, sinks=sinks, alibi_slopes=alibi_slopes,
                    fully_masked=fully_masked, precision=precision, exact=exact)
