"""Divergences of the wrapped position-bias implementations from the spec's exact values, measured
against the formulas of test_adapters_position.py (slopes at 60 digits). Each test pins what the library does
today with the numbers measured (transformers 5.24.0, keras-hub 0.32.0, torch 2.13, TF 2.21); a test
that starts failing means the library changed. The same divergences ship as expectations in
conformance/expectations/position.json. RoBERTa's and OPT's position ids and OPT's lookup showed
none (test_adapters_position.py holds them, and T5's default buckets, to the exact rule).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.dtypes import EPS
from tests.bundled_adapters import bundled_or_skip
from tests.test_adapters_position import alibi, bucket, slopes


@pytest.mark.parametrize("num_buckets, max_distance, n, hf, exact", [
    (48, 81, 54, 39, 40),    # ln(54/24)/ln(81/24)·24 = 16 exactly (2.25 = 3.375^(2/3)): one low
    (36, 392, 84, 26, 27),   # = 9 exactly: one low
    (46, 164, 107, 41, 40),  # = 17.9999982 (no boundary): float32 rounds it up to 18, one HIGH
    (58, 282, 119, 47, 46),  # = 17.99999995: one high
    (48, 81, 36, 32, 32),    # = 8 exactly (1.5 = 3.375^(1/3)): torch's float32 log happens to agree
])
def test_t5_float32_log_misses_the_exact_floor_near_integers(num_buckets, max_distance, n, hf, exact):
    # _relative_position_bucket truncates torch.log(n.float() / max_exact) / math.log(D / max_exact)
    # · (nb − max_exact) in float32: where the real value is an integer k or within ~1e-6 of one the
    # float32 result falls on the other side (spec relpos.bucket.exact, alternative float32_log).
    # Causal (query n keys after the key); the golden cases relpos/*exact_boundary* hit (48, 81, 54).
    adapter = bundled_or_skip("hf-t5-bias")
    got = adapter.to_numpy(adapter.relative_position_bucket(n + 1, 1, bidirectional=False,
                                                            num_buckets=num_buckets, max_distance=max_distance,
                                                            query_offset=0))
    assert bucket(-n, False, num_buckets, max_distance) == exact
    assert int(got[n, 0]) == hf


def test_bloom_float64_slopes_are_float32_values():
    # _get_alibi_slopes raises a float32 base 2^(−8/p) to int32 powers in float32 (torch.pow), and
    # build_alibi_tensor casts the bias to the asked dtype at the end: float64 slopes are exactly the
    # float32 ones, 3.0e-7 relative off at H = 16 (1.3e9 float64 ulp; ≤ 4 float32 ulp up to H = 64).
    # Powers of two whose base is a power of two (H ≤ 8) are exact.
    adapter = bundled_or_skip("hf-bloom-alibi")
    f64 = adapter.to_numpy(adapter.alibi_slopes(16, max_bias=8.0, dtype="float64"))
    f32 = adapter.to_numpy(adapter.alibi_slopes(16, max_bias=8.0, dtype="float32"))
    np.testing.assert_array_equal(f64, f32.astype(np.float64))
    rel = np.max(np.abs(f64 / slopes(16) - 1))
    assert 2.5e-7 < rel < 3.5e-7 and rel / EPS["float64"] > 1e9
    exact = adapter.to_numpy(adapter.alibi_slopes(8, max_bias=8.0, dtype="float64"))
    np.testing.assert_array_equal(exact, slopes(8))


def test_bloom_float64_bias_is_formed_in_float32():
    # slopes (float32) · (cumsum(mask) − 1) (int64) is a float32 product, cast to float64 afterwards.
    adapter = bundled_or_skip("hf-bloom-alibi")
    got = adapter.to_numpy(adapter.alibi_bias(12, 2, 300, max_bias=8.0, mode="row_constant",
                                              alignment="bottom_right", dtype="float64"))
    f32 = adapter.to_numpy(adapter.alibi_bias(12, 2, 300, max_bias=8.0, mode="row_constant",
                                              alignment="bottom_right", dtype="float32"))
    np.testing.assert_array_equal(got, f32.astype(np.float64))
    want = alibi(12, 2, 300, "row_constant", "bottom_right")
    assert 1e-8 < np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 2 * 4 * EPS["float32"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_hub_adds_the_last_rows_bias_to_every_row(dtype):
    # AlibiBias adds m·(j − (S − 1)) to every query row (arange(1 − S, 1)): the spec's causal
    # −m·(i' − j) only for the last, bottom-right row i' = S − 1; row i is lower by the row constant
    # m·(S − 1 − i') = m·(L − 1 − i). Same softmax under a causal mask, not the same bias: at
    # H = 6, L = 4, S = 9 the first row of the head with the largest slope (1/2, from the 2p = 8
    # series) is 3·(1/2) = 1.5 off.
    adapter = bundled_or_skip("keras-hub-alibi")
    got = adapter.to_numpy(adapter.alibi_bias(6, 4, 9, max_bias=8.0, mode="causal", alignment="bottom_right",
                                              dtype=dtype)).astype(np.float64)
    want = alibi(6, 4, 9, "causal", "bottom_right")
    m = slopes(6)[:, None, None]
    offset = -m * (4 - 1 - np.arange(4))[:, None]
    np.testing.assert_allclose(got - want, np.broadcast_to(offset, want.shape), atol=8 * EPS[dtype])
    assert np.max(np.abs(got - want)) == pytest.approx(1.5, rel=8 * EPS[dtype])
    visible = np.arange(9)[None, :] <= np.arange(4)[:, None] + 5       # bottom-right causal mask

    def softmax(b):
        b = np.where(visible, b, -np.inf)
        e = np.exp(b - b.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    np.testing.assert_allclose(softmax(got), softmax(want), rtol=0, atol=32 * EPS[dtype])


def test_keras_hub_float64_slopes_carry_the_python_products_rounding():
    # _get_slopes forms start·ratio**i in Python floats: 5.0 float64 ulp relative at H = 16 and 7.0
    # at H = 32 (the exact 2^(−8k/n), rounded once, is ≤ 0.5 ulp), so float64 slopes are a few ulp off.
    adapter = bundled_or_skip("keras-hub-alibi")
    for heads, ulps in ((16, 5.0), (32, 7.0)):
        got = adapter.to_numpy(adapter.alibi_slopes(heads, max_bias=8.0, dtype="float64"))
        measured = np.max(np.abs(got / slopes(heads) - 1)) / EPS["float64"]
        assert ulps - 1 < measured <= ulps + 0.5


def test_keras_hub_bias_is_constant_down_columns_not_along_diagonals():
    # The same row on every query: bias[i + 1, j + 1] − bias[i, j] = m (the spec's biases are
    # translation-invariant along diagonals, inv.alibi.diagonal), bias[i + 1, j] = bias[i, j].
    adapter = bundled_or_skip("keras-hub-alibi")
    got = adapter.to_numpy(adapter.alibi_bias(4, 5, 5, max_bias=8.0, mode="causal", alignment="bottom_right",
                                              dtype="float64"))
    np.testing.assert_array_equal(got[:, 1:, :], got[:, :-1, :])
    np.testing.assert_allclose(got[:, 1:, 1:] - got[:, :-1, :-1],
                               np.broadcast_to(slopes(4)[:, None, None], (4, 4, 4)), rtol=4 * EPS["float64"])


@pytest.mark.parametrize("K, L", [(2, 6), (16, 8), (1, 5)])
def test_speecht5_relative_index_is_query_minus_key_clipped_to_2k_rows(K, L):
    # SpeechT5RelativePositionalEncoding: pos = i − j, clipped to [−K, K − 1], + K (pe_k has 2K rows):
    # the opposite sign of the spec's clip(j − i, −K, K) + K, and one short at the top; equal only on
    # the diagonal (30 of 36 entries differ at K = 2, L = 6).
    adapter = bundled_or_skip("hf-speecht5-relpos")
    got = adapter.to_numpy(adapter.relative_position_index(L, L, max_relative_position=K, alignment="top_left"))
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    np.testing.assert_array_equal(got, np.clip(i - j, -K, K - 1) + K)
    spec = np.clip(j - i, -K, K) + K
    np.testing.assert_array_equal(got == spec, np.eye(L, dtype=bool))
