"""Bare NumPy position functions (docs/plugins.md): a causal ALiBi bias and GPT-2/RoBERTa ids.

Run them (from this folder):
    attnconf run --alibi-bias example_positions:alibi_bias --framework numpy --select 'alibi/*'
    attnconf run --position-ids example_positions:position_ids --framework numpy --select 'posids/*'
`alibi_bias` takes no mode= or alignment= keyword: it is the causal bias, bottom-right aligned
(the Adapter method's defaults), so the symmetric, row-constant and top-left cases are reported as
skipped-unsupported, never as passed. `position_ids` knows two schemes and declines the others
(NotImplementedError: skipped as declined).
"""
import numpy as np


def _slopes(n, max_bias):
    p = 1 << (n.bit_length() - 1)                       # the paper's rule (spec alibi.slopes)
    ks = [(k, p) for k in range(1, p + 1)] + [(k, 2 * p) for k in range(1, 2 * p, 2)][: n - p]
    return np.array([2.0 ** (-max_bias * k / q) for k, q in ks])


def alibi_bias(num_heads, query_length, key_length, *, max_bias=8.0, dtype=None):
    i = np.arange(query_length)[:, None] + (key_length - query_length)   # bottom-right: i' = i + S − L
    j = np.arange(key_length)[None, :]
    compute = np.float64 if dtype == np.float64 else np.float32
    bias = _slopes(num_heads, max_bias).astype(compute)[:, None, None] * (j - i).astype(compute)
    return bias.astype(dtype or np.float32)


def position_ids(attention_mask, *, scheme, past_length=0, padding_idx=1):
    mask = np.asarray(attention_mask, dtype=np.int64)
    if scheme == "past":
        return np.broadcast_to(past_length + np.arange(mask.shape[1] - past_length), (mask.shape[0],
                               mask.shape[1] - past_length)).copy()
    if scheme == "roberta":
        m = mask[:, past_length:]
        return (np.cumsum(m, axis=1) + past_length) * m + padding_idx
    raise NotImplementedError(f"example_positions knows the past and roberta schemes, not {scheme!r}")
