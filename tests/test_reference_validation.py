"""The reference rejects bad arguments with one-line "X should be …, but got …" errors."""
from __future__ import annotations

import numpy as np
import pytest

import attnconf.reference as R

Q = np.zeros((1, 4, 3, 8))
K = np.zeros((1, 4, 5, 8))
V = np.zeros((1, 4, 5, 6))


@pytest.mark.parametrize("call,exc,text", [
    (lambda: R.sdpa(Q[0], K, V), ValueError, "query should"),
    (lambda: R.sdpa(Q, K[..., :7], V), ValueError, "key head dim E should be 8"),
    (lambda: R.sdpa(Q, K, V[:, :, :4]), ValueError, "value shape (B, Hkv, S) should be (1, 4, 5)"),
    (lambda: R.sdpa(Q, K[:, :3], V[:, :3]), ValueError, "query heads H should be a multiple of key/value heads Hkv = 3, but got H = 4"),
    (lambda: R.sdpa(Q, K[:, :2], V[:, :2]), ValueError, "enable_gqa should be True when H != Hkv (H = 4, Hkv = 2), but got False"),
    (lambda: R.sdpa(Q, K, V, attn_mask=np.ones((2, 5), bool)), ValueError, "attn_mask should be broadcastable to (B, H, L, S) = (1, 4, 3, 5), but got shape (2, 5)"),
    (lambda: R.sdpa(Q, K, V, attn_mask=np.ones((3, 5), np.int64)), TypeError, "attn_mask dtype should be bool or floating, but got int64"),
    (lambda: R.sdpa(Q, K, V, causal_alignment="lower_right"), ValueError, "causal_alignment should be one of 'top_left', 'bottom_right', but got 'lower_right'"),
    (lambda: R.sdpa(Q, K, V, fully_masked="mean"), ValueError, "fully_masked should be one of 'zero', 'uniform', 'nan', but got 'mean'"),
    (lambda: R.sdpa(Q, K, V, precision="float8"), ValueError, "precision should be one of"),
    (lambda: R.sdpa(Q, K, V, exact=True, precision="float32"), ValueError, "precision should be None or 'float64' when exact=True, but got 'float32'"),
    (lambda: R.sdpa(Q.astype(np.int32), K, V), TypeError, "query dtype should be a floating dtype"),
    (lambda: R.sdpa(Q, K.astype(np.float32), V), TypeError, "key dtype should be float64 (the query's dtype), but got float32"),
    (lambda: R.sdpa(Q, K, V, scale="0.1"), TypeError, "scale should be a real number or None"),
    (lambda: R.sdpa(Q, K, V, scale=float("inf")), ValueError, "scale should be finite"),
    (lambda: R.sdpa_vjp(Q, K, V, np.zeros((1, 4, 3, 8))), ValueError, "grad_output shape (B, H, L, Ev) should be (1, 4, 3, 6), but got (1, 4, 3, 8)"),
    (lambda: R.sinusoidal_encoding(4, 0), ValueError, "dim should be >= 1, but got 0"),
    (lambda: R.sinusoidal_encoding(4, 8, offset=-1), ValueError, "offset should be >= 0, but got -1"),
    (lambda: R.sinusoidal_encoding(4.0, 8), TypeError, "num_positions should be an int, but got float 4.0"),
    (lambda: R.sinusoidal_encoding(4, 8, layout="sin_first"), ValueError, "layout should be one of 'interleaved', 'concat', 'cos_first', but got 'sin_first'"),
    (lambda: R.sinusoidal_encoding(4, 8, frequencies="fairseq"), ValueError, "frequencies should be one of 'vaswani', 't2t', but got 'fairseq'"),
    (lambda: R.sinusoidal_encoding(4, 8, base=1.0), ValueError, "base should be a finite number > 0 and != 1, but got 1.0"),
    (lambda: R.compute("softmax", {}, {}), ValueError, "operation should be one of 'sdpa'"),
    (lambda: R.compute("sdpa", {"query": Q, "key": K}, {}), ValueError, "inputs of sdpa should be a dict containing 'value'"),
    (lambda: R.compute("sdpa", {"query": Q, "key": K, "value": V}, {"causal": True}), ValueError, "options of sdpa should be among is_causal"),
])
def test_errors_explain(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert text in msg
    assert "\n" not in msg


def _weights(d=6, h=2, hkv=2, e=3, ev=3):
    return dict(wq=np.zeros((d, h * e)), wk=np.zeros((d, hkv * e)), wv=np.zeros((d, hkv * ev)),
                wo=np.zeros((h * ev, d)))


@pytest.mark.parametrize("change,num_heads,num_kv_heads,text", [
    (dict(wq=np.zeros((5, 6))), 2, None, "wq shape should be (D, H·E) with D = 6"),
    (dict(wk=np.zeros((6, 4))), 2, None, "wk shape (Dkv, Hkv·E) should be (6, 6), but got (6, 4)"),
    (dict(wo=np.zeros((6, 5))), 2, None, "wo shape (H·Ev, D) should be (6, 6), but got (6, 5)"),
    (dict(bq=np.zeros(5)), 2, None, "bq shape should be (6,), but got (5,)"),
    (dict(wz=np.zeros(5)), 2, None, "weights keys should be among wq, wk, wv, wo, bq, bk, bv, bo, but got wz"),
    ({}, 3, 2, "num_heads should be a multiple of num_kv_heads = 2, but got 3"),
])
def test_mha_errors_explain(change, num_heads, num_kv_heads, text):
    w = {**_weights(), **change}
    with pytest.raises(ValueError) as info:
        R.multi_head_attention(np.zeros((1, 4, 6)), None, w, num_heads=num_heads, num_kv_heads=num_kv_heads)
    assert text in str(info.value)


def test_missing_weight_is_named():
    w = _weights()
    del w["wv"]
    with pytest.raises(ValueError, match="weights should be a dict containing 'wv'"):
        R.multi_head_attention(np.zeros((1, 4, 6)), None, w, num_heads=2)
