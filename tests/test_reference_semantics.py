"""Each semantic option of the reference against an independent, loop-by-loop evaluation.

The yardstick here is `naive_attention`: one query row at a time, written straight from the
spec's formulas (no shared code with the reference). The reference's default path must agree to
within 64 float64 ulps of natural scale (both are float64 evaluations of moderate logits; the
oracle test holds the tight bounds); what these tests catch is a wrong semantic, which shows up
as an O(1) difference.
"""
from __future__ import annotations

import numpy as np
import pytest

import attnconf.reference as R

EPS64 = 2.0 ** -52
AGREE_ULP = 64.0


def naive_attention(q, k, v, allowed=None, additive=None, scale=None, policy="zero"):
    b_, h_, l_, e_ = q.shape
    hkv, s_ = k.shape[1], k.shape[2]
    group = h_ // hkv
    sc = 1 / np.sqrt(e_) if scale is None else scale
    out = np.zeros((b_, h_, l_, v.shape[3]))
    for b in range(b_):
        for h in range(h_):
            kv = h // group
            for i in range(l_):
                logits = np.array([sc * float(np.dot(q[b, h, i], k[b, kv, j])) for j in range(s_)])
                if additive is not None:
                    logits = logits + np.broadcast_to(additive, (b_, h_, l_, s_))[b, h, i]
                ok = np.ones(s_, bool) if allowed is None else np.broadcast_to(allowed, (b_, h_, l_, s_))[b, h, i]
                if not ok.any():
                    out[b, h, i] = {"zero": 0.0, "uniform": v[b, kv].mean(axis=0), "nan": np.nan}[policy]
                    continue
                w = np.where(ok, np.exp(logits - logits[ok].max()), 0.0)
                out[b, h, i] = (w / w.sum()) @ v[b, kv]
    return out


def assert_agrees(got, want, scale):
    err = np.abs(got - want) / (scale * EPS64)
    assert np.nanmax(np.where(np.abs(got - want) == 0, 0, err)) <= AGREE_ULP, np.nanmax(err)


def _qkv(seed, b=1, h=2, hkv=2, l=5, s=7, e=4, ev=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, h, l, e)), rng.standard_normal((b, hkv, s, e)),
            rng.standard_normal((b, hkv, s, ev)))


def _scale(q, k, v, **opts):
    inputs = dict(query=q, key=k, value=v)
    if "attn_mask" in opts:
        inputs["attn_mask"] = opts.pop("attn_mask")
    return R.natural_scales("sdpa", inputs, opts)["output"]


@pytest.mark.parametrize("l,s", [(5, 5), (3, 7), (7, 3)])
@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
def test_causal_alignments(l, s, alignment):
    q, k, v = _qkv(1, l=l, s=s)
    shift = 0 if alignment == "top_left" else s - l
    allowed = np.arange(s)[None, :] <= np.arange(l)[:, None] + shift
    got = R.sdpa(q, k, v, is_causal=True, causal_alignment=alignment)
    want = naive_attention(q, k, v, allowed=allowed)
    assert_agrees(got, want, _scale(q, k, v))
    if alignment == "bottom_right" and l > s:
        # sdpa.causal.bottom_right with L > S: the first L − S rows see no key -> zero rows
        assert np.all(got[:, :, : l - s] == 0.0)
        assert np.all(np.abs(got[:, :, l - s:]) > 0)


@pytest.mark.parametrize("shape", [(7,), (5, 7), (1, 2, 1, 7), (1, 1, 5, 7), (1, 2, 5, 7)])
def test_bool_and_float_masks_broadcast(shape):
    q, k, v = _qkv(2)
    rng = np.random.default_rng(5)
    allowed = rng.random(shape) > 0.3
    got = R.sdpa(q, k, v, attn_mask=allowed)
    assert_agrees(got, naive_attention(q, k, v, allowed=allowed), _scale(q, k, v, attn_mask=allowed))
    additive = rng.standard_normal(shape)
    got = R.sdpa(q, k, v, attn_mask=additive)
    assert_agrees(got, naive_attention(q, k, v, additive=additive), _scale(q, k, v, attn_mask=additive))


def test_float_minus_inf_equals_bool_false_and_large_finite_is_not_fully_masked():
    q, k, v = _qkv(3)
    allowed = np.ones((5, 7), bool)
    allowed[2] = False
    allowed[0, 3] = False
    additive = np.where(allowed, 0.0, -np.inf)
    np.testing.assert_array_equal(R.sdpa(q, k, v, attn_mask=allowed), R.sdpa(q, k, v, attn_mask=additive))
    assert np.all(R.sdpa(q, k, v, attn_mask=allowed)[:, :, 2] == 0)
    # a large finite negative row is not fully masked (sdpa.fully_masked counts only −inf rows)
    big = np.where(allowed, 0.0, -1e30)
    got = R.sdpa(q, k, v, attn_mask=big)
    assert np.allclose(got[:, :, 2], v.mean(axis=2), rtol=0, atol=1e-14)


@pytest.mark.parametrize("alignment", ["top_left", "bottom_right"])
def test_mask_and_causal_intersect(alignment):
    q, k, v = _qkv(4, l=4, s=6)
    rng = np.random.default_rng(9)
    mask = rng.random((4, 6)) > 0.3
    shift = 0 if alignment == "top_left" else 2
    tri = np.arange(6)[None, :] <= np.arange(4)[:, None] + shift
    got = R.sdpa(q, k, v, attn_mask=mask, is_causal=True, causal_alignment=alignment)
    assert_agrees(got, naive_attention(q, k, v, allowed=mask & tri), _scale(q, k, v, attn_mask=mask & tri))
    fmask = rng.standard_normal((4, 6))
    got = R.sdpa(q, k, v, attn_mask=fmask, is_causal=True, causal_alignment=alignment)
    assert_agrees(got, naive_attention(q, k, v, allowed=tri, additive=fmask), _scale(q, k, v, attn_mask=fmask))


@pytest.mark.parametrize("h,hkv", [(4, 2), (6, 3), (4, 1)])
def test_gqa_uses_repeat_interleave_order(h, hkv):
    q, k, v = _qkv(5, h=h, hkv=hkv)
    k = k + 10 * np.arange(hkv)[None, :, None, None]  # kv heads far apart: order errors are O(1)
    v = v + 10 * np.arange(hkv)[None, :, None, None]
    got = R.sdpa(q, k, v, enable_gqa=True)
    g = h // hkv
    explicit = R.sdpa(q, np.repeat(k, g, axis=1), np.repeat(v, g, axis=1))
    assert_agrees(got, explicit, _scale(q, np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)))
    tiled = R.sdpa(q, np.tile(k, (1, g, 1, 1)), np.tile(v, (1, g, 1, 1)))
    if hkv > 1:  # (MQA: tile and repeat coincide)
        assert np.max(np.abs(tiled - got)) > 1.0  # the tile order is visibly different
    dq, dk, dv = R.sdpa_vjp(q, k, v, np.ones((1, h, 5, 3)), enable_gqa=True)
    rq, rk, rv = R.sdpa_vjp(q, np.repeat(k, g, axis=1), np.repeat(v, g, axis=1), np.ones((1, h, 5, 3)))
    np.testing.assert_allclose(dk, rk.reshape(1, hkv, g, 7, 4).sum(2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dv, rv.reshape(1, hkv, g, 7, 3).sum(2), rtol=1e-12, atol=1e-12)


def test_value_dim_and_explicit_scale():
    q, k, v = _qkv(6, e=5, ev=9)
    got = R.sdpa(q, k, v, scale=0.3)
    assert got.shape == (1, 2, 5, 9)
    assert_agrees(got, naive_attention(q, k, v, scale=0.3), _scale(q, k, v, scale=0.3))
    default = R.sdpa(q, k, v)
    assert_agrees(default, naive_attention(q, k, v), _scale(q, k, v))
    assert np.max(np.abs(default - got)) > 1e-3  # the explicit scale is used, not 1/√E


@pytest.mark.parametrize("policy", ["zero", "uniform", "nan"])
def test_fully_masked_policies(policy):
    q, k, v = _qkv(7)
    mask = np.ones((5, 7), bool)
    mask[1] = False
    got = R.sdpa(q, k, v, attn_mask=mask, fully_masked=policy)
    exact = R.sdpa(q, k, v, attn_mask=mask, fully_masked=policy, exact=True)
    f32 = R.sdpa(q, k, v, attn_mask=mask, fully_masked=policy, precision="float32")
    want = {"zero": np.zeros((1, 2, 3)), "uniform": v.mean(axis=2), "nan": np.full((1, 2, 3), np.nan)}[policy]
    for out, tol in ((got, 1e-15), (exact, 1e-15), (f32, 1e-6)):
        np.testing.assert_allclose(out[:, :, 1].astype(float), want, rtol=0, atol=tol)
        assert np.all(np.isfinite(out[:, :, [0, 2, 3, 4]]))
    dq, dk, dv = R.sdpa_vjp(q, k, v, np.ones((1, 2, 5, 3)), attn_mask=mask, fully_masked=policy)
    if policy == "nan":
        assert np.isnan(dq[:, :, 1]).all()
    else:
        assert np.all(dq[:, :, 1] == 0)  # constant logits: no gradient to the query row


@pytest.mark.parametrize("precision", ["float32", "float16", "bfloat16"])
def test_large_logits_do_not_overflow(precision):
    q, k, v = _qkv(8, e=4)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True) * 100.0
    k = k / np.linalg.norm(k, axis=-1, keepdims=True) * 200.0  # |logits| up to 1e4
    got = R.sdpa(q, k, v, precision=precision)
    assert np.all(np.isfinite(got.astype(float)))
    exact = R.sdpa(q, k, v, exact=True)
    assert np.all(np.isfinite(exact))
    if precision == "float32":  # near one-hot softmax: float32 agrees to float32 rounding
        np.testing.assert_allclose(got, exact, atol=1e-5 * np.abs(v).max(), rtol=0)


def test_vjp_matches_central_differences():
    """Central differences, step h = 1e-5: truncation ~h² and rounding ~1e-16/h both << 1e-8."""
    q, k, v = _qkv(9, h=2, hkv=1, l=3, s=4, e=3, ev=2)
    rng = np.random.default_rng(10)
    g = rng.standard_normal((1, 2, 3, 2))
    mask = np.ones((3, 4), bool)
    mask[0, 1] = False
    opts = dict(enable_gqa=True, attn_mask=mask, is_causal=True, causal_alignment="bottom_right")
    grads = R.sdpa_vjp(q, k, v, g, **opts)
    hstep = 1e-5
    for which, arr in enumerate((q, k, v)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = [q, k, v]
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += hstep
            minus[idx] -= hstep
            args[which] = plus
            fp = np.sum(R.sdpa(*args, **opts) * g)
            args[which] = minus
            fm = np.sum(R.sdpa(*args, **opts) * g)
            num[idx] = (fp - fm) / (2 * hstep)
        np.testing.assert_allclose(grads[which], num, rtol=0, atol=1e-8)


def test_mha_equals_explicit_projections_and_heads():
    rng = np.random.default_rng(11)
    b, l, s, d, dkv, h, hkv, e, ev = 2, 3, 4, 6, 5, 4, 2, 3, 2
    x, xkv = rng.standard_normal((b, l, d)), rng.standard_normal((b, s, dkv))
    w = dict(wq=rng.standard_normal((d, h * e)), wk=rng.standard_normal((dkv, hkv * e)),
             wv=rng.standard_normal((dkv, hkv * ev)), wo=rng.standard_normal((h * ev, d)),
             bq=rng.standard_normal(h * e), bk=rng.standard_normal(hkv * e),
             bv=rng.standard_normal(hkv * ev), bo=rng.standard_normal(d))
    got = R.multi_head_attention(x, xkv, w, num_heads=h, num_kv_heads=hkv)
    qp, kp, vp = x @ w["wq"] + w["bq"], xkv @ w["wk"] + w["bk"], xkv @ w["wv"] + w["bv"]
    # head h owns columns h·E … (h+1)·E−1
    qh = np.stack([qp[..., i * e:(i + 1) * e] for i in range(h)], axis=1)
    kh = np.stack([kp[..., i * e:(i + 1) * e] for i in range(hkv)], axis=1)
    vh = np.stack([vp[..., i * ev:(i + 1) * ev] for i in range(hkv)], axis=1)
    o = naive_attention(qh, kh, vh)
    merged = np.concatenate([o[:, i] for i in range(h)], axis=-1)
    want = merged @ w["wo"] + w["bo"]
    inputs = dict(query_input=x, key_value_input=xkv, **w)
    scale = R.natural_scales("multi_head_attention", inputs, dict(num_heads=h, num_kv_heads=hkv))["output"]
    assert_agrees(got, want, scale)
    # self-attention: key_value_input None means the query input itself
    ws = {**w, "wk": rng.standard_normal((d, hkv * e)), "wv": rng.standard_normal((d, hkv * ev))}
    np.testing.assert_array_equal(R.multi_head_attention(x, None, ws, num_heads=h, num_kv_heads=hkv),
                                  R.multi_head_attention(x, x, ws, num_heads=h, num_kv_heads=hkv))


def _explicit_table(t, d, base, offset, layout, frequencies):
    p = np.arange(offset, offset + t, dtype=np.float64)[:, None]
    if frequencies == "vaswani":
        w = base ** (-2 * np.arange((d + 1) // 2) / d)
        sins, coss = np.sin(p * w), np.cos(p * w)[:, : d // 2]
    else:
        n = d // 2
        w = base ** (-np.arange(n) / max(n - 1, 1))
        sins, coss = np.sin(p * w), np.cos(p * w)
    if layout == "interleaved":
        cols = []
        for i in range(sins.shape[1]):
            cols.append(sins[:, i])
            if i < coss.shape[1]:
                cols.append(coss[:, i])
        body = np.stack(cols, axis=1) if cols else np.zeros((t, 0))
    elif layout == "concat":
        body = np.concatenate([sins, coss], axis=1)
    else:
        body = np.concatenate([coss, sins], axis=1)
    return np.concatenate([body, np.zeros((t, d - body.shape[1]))], axis=1)


@pytest.mark.parametrize("d", [1, 2, 3, 8, 9])
@pytest.mark.parametrize("layout", ["interleaved", "concat", "cos_first"])
@pytest.mark.parametrize("frequencies", ["vaswani", "t2t"])
def test_encoding_variants_match_the_formulas(d, layout, frequencies):
    """Positions < 40: the textbook float64 formula is accurate to ~1e-14 there."""
    got = R.sinusoidal_encoding(37, d, base=123.0, offset=2, layout=layout, frequencies=frequencies)
    want = _explicit_table(37, d, 123.0, 2, layout, frequencies)
    assert got.shape == (37, d)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_encoding_odd_and_tiny_dims():
    p = np.arange(5.0)
    np.testing.assert_allclose(R.sinusoidal_encoding(5, 1)[:, 0], np.sin(p), atol=1e-15)
    assert np.all(R.sinusoidal_encoding(5, 1, frequencies="t2t") == 0)
    np.testing.assert_allclose(R.sinusoidal_encoding(5, 3)[:, 2], np.sin(p * 10000.0 ** (-2 / 3)), atol=1e-15)
    assert np.all(R.sinusoidal_encoding(5, 3, frequencies="t2t")[:, 2] == 0)


def test_offset_shifts_rows_and_add_adds():
    full = R.sinusoidal_encoding(40, 6, exact=True)
    np.testing.assert_array_equal(R.sinusoidal_encoding(10, 6, offset=30, exact=True), full[30:])
    x = np.random.default_rng(12).standard_normal((2, 10, 6))
    np.testing.assert_allclose(R.add_sinusoidal_encoding(x, offset=30), x + full[30:][None], rtol=0, atol=1e-15)
    assert R.sinusoidal_encoding(0, 4).shape == (0, 4)
