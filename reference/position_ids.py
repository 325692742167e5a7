"""Learned absolute positions (spec section `posids`): which table row each token reads, and the read.

For what (posids.ids.*): attention_mask (B, P + T) of 0/1 integers covers the P = past_length
cached tokens and the T current ones (HF's attention_mask with a KV cache); the output (B, T) is
the row of the learned table each current token reads:
    arange   0 … T−1                                   (BERT without a cache)
    past     P + (0 … T−1)                             (GPT-2; BERT with a cache)
    roberta  m = mask[:, P:]: (cumsum(m) + P)·m + padding_idx
             (HF `create_position_ids_from_input_ids`: pads read row padding_idx, the first real
             token padding_idx + 1)
    opt      M = the whole mask: (cumsum(M)·M − 1)[:, P:] + 2
             (HF `OPTLearnedPositionalEmbedding`: the offset 2 included: pads read row 1)
posids.lookup: out[b, t] = table[ids[b, t]], table (N, D); an id < 0 or >= N raises
(posids.lookup.range), never wraps (NumPy's negative indexing) nor clamps.
Every path is exact: `precision` and `exact` change nothing.
Must not: import any framework.

Shapes: attention_mask (B, P + T) int; ids (B, T) int64; table (N, D); output (B, T, D).
"""
from __future__ import annotations

import numpy as np

from attnconf.choices import POSITION_ID_SCHEMES as SCHEMES
from attnconf.validation import check_array, check_choice, check_int, fail

OPT_OFFSET = 2   # OPTLearnedPositionalEmbedding.offset: rows 0 and 1 are never a real token's


def check_mask(attention_mask, past_length) -> tuple[np.ndarray, int]:
    mask = check_array("attention_mask", attention_mask, ndim=2, legend="(B, past_length + T)",
                       floating=False)
    if mask.dtype.kind not in "iub":
        fail("attention_mask dtype", "an integer dtype (0/1 values)", str(mask.dtype), TypeError)
    if mask.size and not np.isin(mask, (0, 1)).all():
        fail("attention_mask values", "0 or 1", sorted(set(np.unique(mask).tolist()) - {0, 1})[:5])
    P = check_int("past_length", past_length, minimum=0)
    if mask.shape[1] <= P:
        fail("attention_mask", f"more than past_length = {P} columns (B, past_length + T)",
             f"shape {tuple(mask.shape)}", verb="have")
    return mask.astype(np.int64), P


def position_ids(attention_mask, *, scheme, past_length=0, padding_idx=1, precision=None,
                 exact=False) -> np.ndarray:
    """The (B, T) int64 table rows (posids.ids.<scheme>)."""
    mask, P = check_mask(attention_mask, past_length)
    check_choice("scheme", scheme, SCHEMES)
    pad = check_int("padding_idx", padding_idx, minimum=0)
    B, T = mask.shape[0], mask.shape[1] - P
    if scheme == "arange":
        return np.broadcast_to(np.arange(T, dtype=np.int64), (B, T)).copy()
    if scheme == "past":
        return np.broadcast_to(P + np.arange(T, dtype=np.int64), (B, T)).copy()
    if scheme == "roberta":
        m = mask[:, P:]
        return (np.cumsum(m, axis=1) + P) * m + pad
    return (np.cumsum(mask, axis=1) * mask - 1)[:, P:] + OPT_OFFSET


def check_ids(ids, num_rows: int) -> np.ndarray:
    """posids.lookup.range: integer ids within [0, num_rows), else the spec's error."""
    arr = check_array("position_ids", ids, floating=False)
    if arr.dtype.kind not in "iu":
        fail("position_ids dtype", "an integer dtype", str(arr.dtype), TypeError)
    if arr.size and (arr.min() < 0 or arr.max() >= num_rows):
        bad = arr.min() if arr.min() < 0 else arr.max()
        fail("position_ids", f"within [0, {num_rows}) (the table's rows)", int(bad), IndexError)
    return arr.astype(np.int64)


def position_embedding(table, position_ids, *, precision=None, exact=False) -> np.ndarray:
    """(B, T, D) = table[position_ids] (posids.lookup), in the table's dtype."""
    t = check_array("table", table, ndim=2, legend="(N, D)")
    return t[check_ids(position_ids, t.shape[0])]
