"""The reference against the mpmath oracle, in ulps of natural scale (spec/accuracy.md).

Bounds under test (the reference's accuracy contract): default float64 path <= 8 ulp for
attention with moderate logits and <= 4 ulp for encodings at any position up to 10^6;
exact=True <= 1 ulp everywhere (also for logits near 1e4, where the default path is not held
to a bound). The oracle shares no code with the reference.
"""
from __future__ import annotations

import numpy as np
import pytest

import attnconf.reference as R
from attnconf.reference import oracle

DEFAULT_ATTN_ULP = 8.0
DEFAULT_ENC_ULP = 4.0
EXACT_ULP = 1.0

SDPA_VARIANTS = {
    "plain": dict(shapes=(1, 2, 2, 5, 7, 8, 8), opts={}),
    "gqa_causal_br": dict(shapes=(1, 4, 2, 6, 9, 8, 5), opts=dict(is_causal=True, causal_alignment="bottom_right", enable_gqa=True)),
    "causal_tl_l_gt_s": dict(shapes=(2, 1, 1, 7, 4, 4, 3), opts=dict(is_causal=True)),
    "br_l_gt_s_uniform": dict(shapes=(1, 2, 2, 6, 3, 4, 4), opts=dict(is_causal=True, causal_alignment="bottom_right", fully_masked="uniform")),
    "bool_mask": dict(shapes=(1, 2, 1, 5, 6, 4, 4), opts=dict(enable_gqa=True), mask="bool"),
    "long_s700_causal_br": dict(shapes=(1, 1, 1, 3, 700, 8, 4), opts=dict(is_causal=True, causal_alignment="bottom_right")),
    "float_mask_scale": dict(shapes=(1, 2, 2, 4, 6, 6, 2), opts=dict(scale=0.37), mask="float"),
}


def _sdpa_inputs(name, seed):
    v = SDPA_VARIANTS[name]
    b, h, hkv, l, s, e, ev = v["shapes"]
    rng = np.random.default_rng(seed)
    inputs = dict(query=rng.standard_normal((b, h, l, e)) * 1.5, key=rng.standard_normal((b, hkv, s, e)),
                  value=rng.standard_normal((b, hkv, s, ev)), grad_output=rng.standard_normal((b, h, l, ev)))
    if v.get("mask") == "bool":
        m = rng.random((1, h, l, s)) > 0.4
        m[0, 0, 1] = False  # one fully-masked row
        inputs["attn_mask"] = m
    elif v.get("mask") == "float":
        m = rng.standard_normal((l, s))
        m[1, 2] = -np.inf
        inputs["attn_mask"] = m
    return inputs, dict(v["opts"])


def _oracle_args(inputs, opts):
    args = dict(opts)
    if "attn_mask" in inputs:
        args["attn_mask"] = inputs["attn_mask"]
    return args


@pytest.mark.parametrize("name", sorted(SDPA_VARIANTS))
def test_sdpa_matches_oracle(name):
    for seed in (0, 1):
        inputs, opts = _sdpa_inputs(name, seed)
        fwd = {k: inputs[k] for k in ("query", "key", "value", "attn_mask") if k in inputs}
        expected = oracle.sdpa(inputs["query"], inputs["key"], inputs["value"], as_dd=True,
                               **_oracle_args(inputs, opts))
        scale = R.natural_scales("sdpa", fwd, opts)["output"]
        default = R.compute("sdpa", fwd, opts)["output"]
        exact = R.compute("sdpa", fwd, opts, exact=True)["output"]
        assert oracle.ulp_error(default, expected, scale) <= DEFAULT_ATTN_ULP
        assert oracle.ulp_error(exact, expected, scale) <= EXACT_ULP


@pytest.mark.parametrize("name", ["plain", "gqa_causal_br", "bool_mask", "br_l_gt_s_uniform"])
def test_sdpa_vjp_matches_oracle(name):
    inputs, opts = _sdpa_inputs(name, 3)
    expected = oracle.sdpa_vjp(inputs["query"], inputs["key"], inputs["value"], inputs["grad_output"],
                               as_dd=True, **_oracle_args(inputs, opts))
    scales = R.natural_scales("sdpa_vjp", inputs, opts)
    default = R.compute("sdpa_vjp", inputs, opts)
    exact = R.compute("sdpa_vjp", inputs, opts, exact=True)
    for i, n in enumerate(("dq", "dk", "dv")):
        assert oracle.ulp_error(default[n], expected[i], scales[n]) <= DEFAULT_ATTN_ULP, n
        assert oracle.ulp_error(exact[n], expected[i], scales[n]) <= EXACT_ULP, n


@pytest.mark.parametrize("offset_logit", [1e3, 1e4])
def test_exact_sdpa_golden_grade_for_large_logits(offset_logit):
    """Logits near ±1e4 with O(1) differences: the default path drifts, exact must not."""
    rng = np.random.default_rng(7)
    q = rng.standard_normal((1, 2, 4, 8))
    k = rng.standard_normal((1, 2, 6, 8))
    v = rng.standard_normal((1, 2, 6, 3))
    q[..., 0] = offset_logit * np.sqrt(8) / 16
    k[..., 0] = 16 + 0.01 * rng.standard_normal(6)
    expected = oracle.sdpa(q, k, v, as_dd=True)
    scale = R.natural_scales("sdpa", dict(query=q, key=k, value=v), {})["output"]
    assert oracle.ulp_error(R.sdpa(q, k, v, exact=True), expected, scale) <= EXACT_ULP
    g = rng.standard_normal((1, 2, 4, 3))
    eg = oracle.sdpa_vjp(q, k, v, g, as_dd=True)
    sg = R.natural_scales("sdpa_vjp", dict(query=q, key=k, value=v, grad_output=g), {})
    for i, n in enumerate(("dq", "dk", "dv")):
        assert oracle.ulp_error(R.sdpa_vjp(q, k, v, g, exact=True)[i], eg[i], sg[n]) <= EXACT_ULP, n


@pytest.mark.parametrize("kv_heads,cross,bias", [(2, False, True), (4, True, False), (1, True, True)])
def test_mha_matches_oracle(kv_heads, cross, bias):
    rng = np.random.default_rng(kv_heads)
    h, e, ev, d, dkv = 4, 3, 2, 6, 5 if cross else 6
    x = rng.standard_normal((1, 4, d))
    xkv = rng.standard_normal((1, 5, dkv)) if cross else None
    w = dict(wq=rng.standard_normal((d, h * e)), wk=rng.standard_normal((dkv, kv_heads * e)),
             wv=rng.standard_normal((dkv, kv_heads * ev)), wo=rng.standard_normal((h * ev, d)))
    if bias:
        w.update(bq=rng.standard_normal(h * e), bk=rng.standard_normal(kv_heads * e),
                 bv=rng.standard_normal(kv_heads * ev), bo=rng.standard_normal(d))
    opts = dict(num_heads=h, num_kv_heads=kv_heads, is_causal=not cross)
    inputs = dict(query_input=x, **w)
    if cross:
        inputs["key_value_input"] = xkv
    expected = oracle.multi_head_attention(x, xkv, w, as_dd=True, **opts)
    scale = R.natural_scales("multi_head_attention", inputs, opts)["output"]
    assert oracle.ulp_error(R.compute("multi_head_attention", inputs, opts)["output"], expected, scale) <= DEFAULT_ATTN_ULP
    assert oracle.ulp_error(R.compute("multi_head_attention", inputs, opts, exact=True)["output"], expected, scale) <= EXACT_ULP


LONG_POSITIONS = [0, 1, 2047, 10 ** 3, 10 ** 4, 10 ** 5, 999_983, 10 ** 6, 10 ** 6 + 4097, 3 * 10 ** 7]


@pytest.mark.parametrize("frequencies,layout,dim,base", [
    ("vaswani", "interleaved", 64, 10000.0), ("vaswani", "concat", 7, 10000.0),
    ("t2t", "cos_first", 9, 10000.0), ("t2t", "interleaved", 16, 500.0), ("vaswani", "cos_first", 3, 2.5),
])
def test_encoding_matches_oracle_at_long_positions(frequencies, layout, dim, base):
    opts = dict(dim=dim, base=base, layout=layout, frequencies=frequencies)
    for p in LONG_POSITIONS:
        expected = oracle.sinusoidal_encoding(1, positions=[p], as_dd=True, **opts)
        default = R.sinusoidal_encoding(1, offset=p, **opts)
        exact = R.sinusoidal_encoding(1, offset=p, exact=True, **opts)
        assert oracle.ulp_error(default, expected, 1.0) <= DEFAULT_ENC_ULP, p
        assert oracle.ulp_error(exact, expected, 1.0) <= EXACT_ULP, p


def test_naive_float64_encoding_is_far_off_so_the_oracle_can_tell():
    """The check above has teeth: the textbook float64 formula fails it by orders of magnitude."""
    p, d = 10 ** 5, 32
    expected = oracle.sinusoidal_encoding(1, d, positions=[p], as_dd=True)
    ang = p * 10000.0 ** (-np.arange(0, d, 2) / d)
    naive = np.empty((1, d))
    naive[0, 0::2], naive[0, 1::2] = np.sin(ang), np.cos(ang)
    assert oracle.ulp_error(naive, expected, 1.0) > 100 * DEFAULT_ENC_ULP


def test_encoding_table_block_matches_oracle():
    """A whole table (many consecutive positions near 1e6), every variant column placement."""
    expected = oracle.sinusoidal_encoding(6, 5, offset=10 ** 6 - 3, frequencies="t2t", layout="concat", as_dd=True)
    got = R.sinusoidal_encoding(6, 5, offset=10 ** 6 - 3, frequencies="t2t", layout="concat", exact=True)
    assert oracle.ulp_error(got, expected, 1.0) <= EXACT_ULP


def test_exact_falls_back_to_the_oracle_without_80_bit_long_double(monkeypatch):
    from attnconf.reference import precise

    rng = np.random.default_rng(13)
    q, k, v = rng.standard_normal((1, 4, 3, 4)), rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 5, 2))
    g = rng.standard_normal((1, 4, 3, 2))
    opts = dict(enable_gqa=True, attn_mask=rng.random((3, 5)) > 0.3, is_causal=True)
    with_ld = R.sdpa(q, k, v, exact=True, **opts), R.sdpa_vjp(q, k, v, g, exact=True, **opts)
    monkeypatch.setattr(precise, "HAVE_LONGDOUBLE", False)
    without = R.sdpa(q, k, v, exact=True, **opts), R.sdpa_vjp(q, k, v, g, exact=True, **opts)
    scale = R.natural_scales("sdpa", dict(query=q, key=k, value=v, attn_mask=opts["attn_mask"]),
                             dict(enable_gqa=True, is_causal=True))["output"]
    # both are within 1 ulp of the exact value, so within 2 of each other
    assert oracle.ulp_error(without[0], with_ld[0], scale) <= 2 * EXACT_ULP
    for a, b in zip(without[1], with_ld[1]):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def _small_catalogue_cases():
    """The golden catalogue's cases small enough for the oracle (most of them)."""
    from attnconf.operations.sdpa import OPTION_NAMES
    from attnconf.reference import cases

    keep = []
    for c in cases.catalogue():
        i, o = c.inputs, c.options
        if set(OPTION_NAMES) & (set(i) | set(o)):
            continue    # the kernel options: tests/test_sdpa_options_reference.py checks them with oracle.sdpa_options
        if c.operation in ("sdpa", "sdpa_vjp"):
            cost = i["query"].size * i["key"].shape[2] * (1 if c.operation == "sdpa" else 3)
        elif c.operation == "multi_head_attention":
            cost = 2 * i["query_input"].size * i["wq"].shape[1]
        elif c.operation == "rotary_embedding":
            cost = 4 * i["x"].size
        elif c.operation == "sinusoidal_encoding":
            cost = 10 * o["num_positions"] * o["dim"]
        else:   # the position operations: tests/test_position_reference.py checks them exactly
            continue
        if cost <= 40000:
            keep.append(c)
    return keep


@pytest.mark.parametrize("case", _small_catalogue_cases(), ids=lambda c: c.id)
def test_exact_path_on_the_golden_catalogue(case):
    """What the golden files will hold, checked against the oracle case by case (<= 1 ulp)."""
    i, o = case.inputs, case.options
    if case.operation in ("sdpa", "sdpa_vjp"):
        kw = dict(o, attn_mask=i.get("attn_mask"))
        if case.operation == "sdpa":
            expected = {"output": oracle.sdpa(i["query"], i["key"], i["value"], as_dd=True, **kw)}
        else:
            expected = dict(zip(("dq", "dk", "dv"), oracle.sdpa_vjp(
                i["query"], i["key"], i["value"], i["grad_output"], as_dd=True, **kw)))
    elif case.operation == "multi_head_attention":
        w = {n: i[n] for n in ("wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo") if n in i}
        expected = {"output": oracle.multi_head_attention(i["query_input"], i.get("key_value_input"), w,
                                                          attn_mask=i.get("attn_mask"), as_dd=True, **o)}
    elif case.operation == "rotary_embedding":
        expected = {"output": oracle.rotary_embedding(i["x"], i["positions"], as_dd=True, **o)}
    else:
        expected = {"output": oracle.sinusoidal_encoding(as_dd=True, **o)}
    got = R.compute(case.operation, i, o, exact=True)
    scales = R.natural_scales(case.operation, i, o)
    for name, want in expected.items():
        assert oracle.ulp_error(got[name], want, scales[name]) <= EXACT_ULP, name


def test_encoding_rows_across_reduction_blocks():
    """Rows on both sides of the 1024-row reduction blocks of a long table near p = 1e6."""
    from attnconf.reference import encoding

    offset, rows = 10 ** 6 - 1500, [0, 1, 1023, 1024, 1025, 2047, 2048, 2499]
    table = R.sinusoidal_encoding(2500, 16, offset=offset, frequencies="t2t")
    exact = R.sinusoidal_encoding(2500, 16, offset=offset, frequencies="t2t", exact=True)
    expected = oracle.sinusoidal_encoding(0, 16, positions=[offset + r for r in rows], frequencies="t2t", as_dd=True)
    assert encoding.BLOCK_ROWS < 2500
    assert oracle.ulp_error(table[rows], expected, 1.0) <= DEFAULT_ENC_ULP
    assert oracle.ulp_error(exact[rows], expected, 1.0) <= EXACT_ULP
