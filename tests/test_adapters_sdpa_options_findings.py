"""Divergences of the issue-14 adapters' implementations from the spec, pinned with the numbers
measured here (transformers 5.24.0, torch 2.13.0+cpu, onnxruntime 1.32.0, onnx 1.23.2, jax 0.10.2),
each against attnconf.reference's exact output. They ship as expectations in
conformance/expectations/sdpa_options.json; a test that starts failing means the library changed:
update the finding, the expectation and its reason together.

Inputs: multiples of 1/8 (exact in every dtype), (B, H, L, S, E) = (1, 2, 4, 6, 8).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import compute
from tests.bundled_adapters import bundled_or_skip

RNG = np.random.default_rng(0)
Q, K, V = (np.round(RNG.standard_normal(s) * 8) / 8 for s in ((1, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8)))
MEAN_V = V.mean(axis=2, keepdims=True)
INDEX = ("query_offset", "key_lengths", "query_lengths")
NO_SINK = {"sinks": [-np.inf, -np.inf]}  # hf-eager-sinks declines cases without sinks; −∞ is none


def run(name, dtype, q=Q, k=K, v=V, **options):
    """The adapter's output as float64 NumPy, options converted as the engine converts them."""
    a = bundled_or_skip(name)
    native = {}
    for n, x in options.items():
        if n in INDEX:
            native[n] = a.index_from_numpy(np.asarray(x))
        elif n == "sinks":
            native[n] = a.from_numpy(np.asarray(x, dtype=np.float64), dtype)
        elif n == "attn_mask":
            native[n] = a.mask_from_numpy(np.asarray(x), dtype)
        else:
            native[n] = x
    out = a.sdpa(a.from_numpy(q, dtype), a.from_numpy(k, dtype), a.from_numpy(v, dtype), **native)
    return a.to_numpy(out).astype(np.float64)


def exact(q=Q, k=K, v=V, **options):
    inputs = {"query": q, "key": k, "value": v}
    inputs.update({n: np.asarray(options.pop(n)) for n in ("attn_mask", "sinks", *INDEX) if n in options})
    return compute("sdpa", inputs, options, exact=True)["output"]


def test_hf_eager_softmax_is_float32_for_float64_inputs():
    # Gemma 2's eager_attention_forward: softmax(attn_weights, dtype=torch.float32).to(query.dtype).
    # Measured max |error| 2.3e-07 (float32-accurate); gpt-oss's eager path and the SDPA path
    # compute in float64: 4.4e-16.
    assert 1e-8 < np.abs(run("hf-eager", "float64") - exact()).max() < 1e-6
    assert np.abs(run("hf-eager-sinks", "float64", **NO_SINK) - exact()).max() < 1e-14
    assert np.abs(run("hf-sdpa", "float64") - exact()).max() < 1e-14


def test_hf_eager_rows_without_keys_are_mean_of_v_or_nan():
    # masking_utils.eager_mask writes finfo(dtype).min (finite) where hidden: a row with no visible
    # key (here key_lengths = 0) is a softmax of equal logits, the mean of V (|Δ| 7.9e-08 at
    # float32), not 0; at float64 Gemma 2's float32 softmax turns finfo(float64).min into -inf: NaN.
    # gpt-oss's eager path (float64 softmax) gives mean(V) at float64; HF's SDPA path gives 0.
    assert exact(key_lengths=[0]).max() == 0
    assert np.abs(run("hf-eager", "float32", key_lengths=[0]) - MEAN_V).max() < 1e-6
    assert np.isnan(run("hf-eager", "float64", key_lengths=[0])).all()
    assert np.abs(run("hf-eager-sinks", "float64", key_lengths=[0], **NO_SINK) - MEAN_V).max() < 1e-14
    assert np.abs(run("hf-sdpa", "float64", key_lengths=[0])).max() == 0


def test_hf_sdpa_single_query_top_left_causal_sees_every_key():
    # sdpa_mask skips the mask when q_length == 1 (_ignore_causal_mask_sdpa) and
    # sdpa_attention_forward then passes is_causal = q_length > 1 = False: with q_offset 0 the one
    # query attends all S = 6 keys (bottom-right, as a decode step), not key 0 as top-left asks.
    # HF's eager path builds the mask and returns V[key 0]. Measured: hf-sdpa equals the unmasked
    # attention to 1.1e-16 and is 1.56 off V[key 0].
    q1 = Q[:, :, :1]
    top_left = exact(q=q1, is_causal=True)
    assert np.abs(top_left - V[:, :, :1]).max() < 1e-15
    got = run("hf-sdpa", "float64", q=q1, is_causal=True)
    assert np.abs(got - exact(q=q1)).max() < 1e-14 and np.abs(got - top_left).max() > 1.0
    assert np.abs(run("hf-eager-sinks", "float64", q=q1, is_causal=True, **NO_SINK) - top_left).max() < 1e-14


def test_float16_softcap_of_2_to_30():
    # c = 2^30 must leave the logits as they are (|s|³/(3c²) is nothing). Gemma 2's eager path
    # divides float16 logits by c: s/c underflows to 0, every capped logit is 0 and the row uniform
    # (mean(V) to 1.6e-04). onnxruntime's float16 kernel holds c in float16, where it is inf:
    # c·tanh(s/c) = inf·0 = NaN everywhere. FlexAttention's score_mod agrees with no softcap (8.7e-04,
    # float16 rounding).
    plain = exact()
    assert np.abs(run("hf-eager", "float16", softcap=2.0 ** 30) - MEAN_V).max() < 1e-3
    assert np.isnan(run("onnx-attention", "float16", softcap=2.0 ** 30)).all()
    assert np.abs(run("torch-flex", "float16", softcap=2.0 ** 30) - plain).max() < 4e-3


def test_float16_mask_added_in_float16():
    # A query row whose float mask is -59904 everywhere is an ordinary softmax of its logits. HF's
    # eager paths and onnxruntime add the mask to float16 logits in float16, where the ulp at 6e4 is
    # 32: the logits' differences vanish and the row comes back near mean(V): max |error| 0.49 on
    # that row; torch's SDPA (hf-sdpa) and FlexAttention keep them: 9.1e-04.
    m = np.zeros((1, 1, 4, 6))
    m[..., 0, :] = -59904.0
    want = exact(attn_mask=m)[..., 0, :]
    for name, extra in (("hf-eager", {}), ("hf-eager-sinks", NO_SINK), ("onnx-attention", {})):
        assert 0.3 < np.abs(run(name, "float16", attn_mask=m, **extra)[..., 0, :] - want).max() < 0.7, name
    for name in ("hf-sdpa", "torch-flex"):
        assert np.abs(run(name, "float16", attn_mask=m)[..., 0, :] - want).max() < 4e-3, name


def test_onnxruntime_mask_must_have_query_rows():
    # ONNX's Attention lets attn_mask broadcast to (B, H, L, S); onnxruntime 1.32's CPU kernel
    # refuses a mask whose second-to-last dimension is not L. The same all-True mask with L rows runs.
    with pytest.raises(Exception, match="inconsistent q_sequence_length"):
        run("onnx-attention", "float32", attn_mask=np.ones((1, 1, 1, 6), bool))
    assert np.abs(run("onnx-attention", "float32", attn_mask=np.ones((1, 1, 4, 6), bool)) - exact()).max() < 1e-6


def test_jax_rows_without_keys_are_mean_of_v():
    # jax.nn.dot_product_attention masks key_value_seq_lengths with -0.7·finfo(float32).max: a row
    # with no valid key gives mean(V) (7.9e-08), not 0; query_seq_lengths rows are zeroed as the spec asks.
    assert np.abs(run("jax-xla", "float32", key_lengths=[0]) - MEAN_V).max() < 1e-6
    padded = run("jax-xla", "float32", query_lengths=[2])
    assert np.abs(padded[:, :, 2:]).max() == 0 and np.abs(padded - exact(query_lengths=[2])).max() < 1e-6


def test_flex_lse_sink_recipe_gives_nan_for_an_empty_row_with_a_minus_inf_sink():
    # torch-flex applies sinks as HF's flex integration does (out · exp(lse − logsumexp(lse, sink))).
    # A row with no visible key has lse = −inf; with a finite sink the factor is 0 and the row 0 (as
    # the spec); with sink = −inf (the spec's "no sink") it is exp(−inf + inf) = NaN, where the spec
    # asks 0 (the fully-masked policy). No golden case combines the two; this pins the recipe.
    assert np.abs(run("torch-flex", "float32", key_lengths=[0], sinks=[0.0, 1.0])).max() == 0
    assert np.isnan(run("torch-flex", "float32", key_lengths=[0], sinks=[-np.inf, -np.inf])).all()
    assert exact(key_lengths=[0], sinks=[-np.inf, -np.inf]).max() == 0
