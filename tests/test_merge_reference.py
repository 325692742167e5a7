"""The merged-states reference (attnconf.reference.merge, spec sdpa.merge.*): the merge of the
states of a partition of the keys is attention over all keys, empty states count for nothing
(garbage and NaN outputs included), all-empty rows are (0, −∞), large LSEs do not overflow, the
lower precisions keep a float32 LSE, bad input reads "X should be …". Must not test adapters.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference.lse import sdpa_lse
from attnconf.reference.merge import merge_attention_states, natural_scales

RNG = np.random.default_rng(3)
Q = RNG.standard_normal((1, 2, 4, 8))
K = RNG.standard_normal((1, 2, 9, 8))
V = RNG.standard_normal((1, 2, 9, 5))


def _states(bounds):
    outs, lses = [], []
    for a, z in zip(bounds[:-1], bounds[1:]):
        if z == a:
            outs.append(np.full((1, 2, 4, 5), np.nan))     # an empty block's output: garbage
            lses.append(np.full((1, 2, 4), -np.inf))
            continue
        o, l = sdpa_lse(Q, K[:, :, a:z], V[:, :, a:z], exact=True)
        outs.append(o)
        lses.append(l)
    return np.stack(outs), np.stack(lses)


@pytest.mark.parametrize("bounds", [(0, 9), (0, 4, 9), (0, 0, 3, 3, 9, 9), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)])
def test_partition_merges_to_all_keys(bounds):
    out, lse = merge_attention_states(*_states(bounds), exact=True)
    want_out, want_lse = sdpa_lse(Q, K, V, exact=True)
    assert np.allclose(out, want_out, rtol=0, atol=4e-16 * 8) and np.allclose(lse, want_lse, rtol=0, atol=1e-15)


def test_every_state_empty_is_zero_and_neg_inf_never_nan():
    outs = np.full((2, 1, 1, 3, 2), 7.0)
    lses = np.full((2, 1, 1, 3), -np.inf)
    lses[1, ..., 0] = 1.5
    for precision in (None, "float32", "float16", "bfloat16"):
        out, lse = merge_attention_states(outs, lses, precision=precision)
        assert not np.isnan(out.astype(np.float64)).any() and not np.isnan(lse).any()
        assert np.array_equal(out[..., 1:, :].astype(np.float64), np.zeros((1, 1, 2, 2)))
        assert np.all(np.isneginf(lse[..., 1:])) and lse[..., 0] == np.float32(1.5)
        assert lse.dtype == (np.float64 if precision is None else np.float32)   # sdpa.merge.dtype


def test_identical_states_add_log_n_and_large_lses_do_not_overflow():
    outs = np.repeat(RNG.standard_normal((1, 1, 1, 3, 4)), 3, axis=0)
    lses = np.repeat(np.array([[[[800.0, -800.0, 3.0]]]]), 3, axis=0)
    for exact in (False, True):
        out, lse = merge_attention_states(outs, lses, exact=exact)
        assert np.allclose(out, outs[0], rtol=1e-15) and np.allclose(lse, lses[0] + np.log(3), rtol=1e-15)


def test_natural_scales_are_weighted_magnitudes():
    outs = np.array([[[[[1.0, -2.0]]]], [[[[3.0, 4.0]]]]])
    lses = np.array([[[[0.0]]], [[[np.log(3.0)]]]])
    so, sl = natural_scales(outs, lses)
    assert np.allclose(so, [[[[0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 4]]]])
    assert np.allclose(sl, 1 + 0.75 * np.log(3.0))


def test_bad_input_says_what_it_should_be():
    outs, lses = np.zeros((2, 1, 1, 3, 2)), np.zeros((2, 1, 1, 3))
    with pytest.raises(ValueError, match="outputs should have 5 dimensions"):
        merge_attention_states(outs[0], lses)
    with pytest.raises(ValueError, match="lses shape"):
        merge_attention_states(outs, lses[:1])
    with pytest.raises(ValueError, match="lses should be finite or −inf"):
        merge_attention_states(outs, lses + np.nan)
