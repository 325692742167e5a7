"""Real framework behaviour that diverges from the canonical spec, seen through the bundled
adapters (torch 2.13 CPU, jax 0.10.2, tensorflow 2.21 + keras 3.15 here).

These are findings, not adapter bugs: the adapters pass them through unrepaired, and these tests
pin them down so that a framework change (or an adapter that starts "fixing" them) is noticed.
Expected values are computed from the inputs (mean of V, the reference with a float32 scale), never
typed in.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from attnconf import reference
from bundled_adapters import bundled_or_skip as _adapter
from attnconf.conformance.judging.engine import compute_outputs
from attnconf.errors import Unsupported
from attnconf.reference.cases import Case



def _sdpa_case(inputs, **options):
    opts = {"is_causal": False, "causal_alignment": "top_left", "scale": None, "enable_gqa": False}
    opts.update(options)
    return Case(id="finding", operation="sdpa", clauses=(), inputs=inputs, options=opts)


def _qkv(seed=0, L=4, S=6, E=4, Ev=4):
    rng = np.random.default_rng(seed)
    return {"query": rng.standard_normal((1, 2, L, E)), "key": rng.standard_normal((1, 2, S, E)),
            "value": rng.standard_normal((1, 2, S, Ev))}


def _fully_masked_row1(kind):
    if kind == "bool":
        m = np.ones((4, 6), bool)
        m[1] = False
    else:
        m = np.zeros((4, 6))
        m[1] = -np.inf
    return m


FULLY_MASKED = {  # adapter -> {mask kind: observed policy}
    "torch-math": {"bool": "zero", "float": "zero"},
    "torch-flash": {"bool": "zero", "float": "zero"},
    "torch-default": {"bool": "zero", "float": "zero"},
    "jax-xla": {"bool": "uniform", "float": "nan"},   # mask -> large finite negative; bias -inf -> NaN
    "keras-tf": {"bool": "uniform", "float": "nan"},
}


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("name", list(FULLY_MASKED))
def test_fully_masked_row_policy(name, kind):
    adapter = _adapter(name)
    inputs = dict(_qkv(), attn_mask=_fully_masked_row1(kind))
    row = compute_outputs(adapter, _sdpa_case(inputs), "float64")["output"][0, :, 1]   # (H, Ev)
    observed = FULLY_MASKED[name][kind]
    if observed == "zero":
        assert np.all(row == 0)
    elif observed == "uniform":
        np.testing.assert_allclose(row, inputs["value"][0].mean(axis=1), rtol=1e-6, atol=1e-7)
    else:
        assert np.isnan(row).all()
    assert adapter.capabilities.fully_masked == "zero"  # nothing documented: the claim stays canonical


def test_jax_softmax_runs_in_float32_for_float64_inputs():
    """jax.nn.dot_product_attention casts logits to float32 ("Softmax is always computed in
    float32"): a float64 call is float32-accurate, ~1e-7 relative, not ~1e-16."""
    adapter = _adapter("jax-xla")
    case = _sdpa_case(_qkv(3, L=16, S=16, E=8, Ev=8))
    got = compute_outputs(adapter, case, "float64")["output"]
    assert got.dtype == np.float64
    want = reference.compute("sdpa", case.inputs, case.options)["output"]
    scale = reference.natural_scales("sdpa", case.inputs, case.options)["output"]
    err = (np.abs(got - want) / scale).max()
    assert 1e-10 < err < 1e-5


@pytest.mark.parametrize("scale", [None, 0.3])
def test_keras_rounds_the_scale_to_float32_for_float64_inputs(scale):
    """keras.ops.dot_product_attention (TF backend) at float64 equals the exact algorithm run with
    the scale rounded to float32 — for the default 1/sqrt(E) (E = 8) and an explicit one."""
    adapter = _adapter("keras-tf")
    case = _sdpa_case(_qkv(4, E=8, Ev=8), scale=scale)
    got = compute_outputs(adapter, case, "float64")["output"]
    exact_scale = 1 / np.sqrt(8) if scale is None else scale
    as_float32 = dict(case.options, scale=float(np.float32(exact_scale)))
    with_f32_scale = reference.compute("sdpa", case.inputs, as_float32)["output"]
    canonical = reference.compute("sdpa", case.inputs, case.options)["output"]
    assert np.abs(got - with_f32_scale).max() < 1e-13
    assert np.abs(got - canonical).max() > 1e-10


def test_torch_flash_accepts_mask_with_causal_math_rejects_it():
    """CPU flash intersects attn_mask with is_causal; the MATH path raises (adapter: Unsupported)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flash, math_ = _adapter("torch-flash"), _adapter("torch-math")
    rng = np.random.default_rng(5)
    mask = rng.random((4, 6)) > 0.3
    mask[:, 0] = True
    case = _sdpa_case(dict(_qkv(5), attn_mask=mask), is_causal=True)
    got = compute_outputs(flash, case, "float64")["output"]
    want = reference.compute("sdpa", case.inputs, case.options)["output"]
    assert np.abs(got - want).max() < 1e-12
    with pytest.raises(Unsupported):
        compute_outputs(math_, case, "float64")
    q, k, v = (torch.from_numpy(case.inputs[n]) for n in ("query", "key", "value"))
    with sdpa_kernel([SDPBackend.MATH]), pytest.raises(RuntimeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=torch.from_numpy(mask), is_causal=True)


def test_torch_flash_limits_on_cpu():
    """CPU flash: Ev != E has no kernel; a 1-D attn_mask (broadcastable, as torch documents)
    crashes with IndexError instead of broadcasting."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.from_numpy(a) for a in _qkv(6, Ev=6).values())
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), pytest.raises(RuntimeError, match="No available kernel"):
        F.scaled_dot_product_attention(q, k, v)
    v4 = torch.from_numpy(_qkv(6)["value"])
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), pytest.raises(IndexError):
        F.scaled_dot_product_attention(q, k, v4, attn_mask=torch.zeros(6, dtype=torch.float64))
    with sdpa_kernel([SDPBackend.MATH]):  # the same mask broadcasts on MATH
        F.scaled_dot_product_attention(q, k, v4, attn_mask=torch.zeros(6, dtype=torch.float64))
    assert _adapter("torch-flash").capabilities.value_dim_differs is False


def test_torch_bottom_right_with_more_queries_than_keys_gives_zero_rows():
    """causal_lower_right warns "will produce NaNs" for L > S, yet rows with no visible key are 0."""
    adapter = _adapter("torch-math")
    case = _sdpa_case(_qkv(7, L=6, S=4), is_causal=True, causal_alignment="bottom_right")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = compute_outputs(adapter, case, "float64")["output"]
    assert np.all(out[:, :, :2] == 0)


def test_jax_jitted_float16_fails_on_cpu():
    """jax-xla is jitted: float16 on CPU raises "precision 'F16_F16_F32' is not supported by
    dot_general"; eager float16 and jitted bfloat16 run."""
    adapter = _adapter("jax-xla")
    case = _sdpa_case(_qkv(8))
    with pytest.raises(ValueError, match="F16_F16_F32"):
        compute_outputs(adapter, case, "float16")
    assert str(compute_outputs(adapter, case, "bfloat16")["output"].dtype) == "bfloat16"


def test_keras_mha_fully_masked_row_is_mean_of_values():
    """keras.layers.MultiHeadAttention: a fully-masked query row gives mean(V)·Wo, torch's layer 0."""
    rng = np.random.default_rng(9)
    D, H = 8, 2
    w = {n: rng.standard_normal((D, D)) for n in ("wq", "wk", "wv", "wo")}
    x = rng.standard_normal((1, 4, D))
    mask = np.ones((4, 4), bool)
    mask[2] = False
    case = Case(id="finding", operation="multi_head_attention", clauses=(), inputs=dict(w, query_input=x, attn_mask=mask),
                options={"num_heads": H, "num_kv_heads": H, "is_causal": False})
    keras_row = compute_outputs(_adapter("keras-tf-mha"), case, "float64")["output"][0, 2]
    torch_row = compute_outputs(_adapter("torch-nn-mha"), case, "float64")["output"][0, 2]
    mean_v = (x[0] @ w["wv"]).mean(axis=0) @ w["wo"]
    np.testing.assert_allclose(keras_row, mean_v, rtol=1e-6)
    assert np.all(torch_row == 0)


def test_keras_hub_float64_uses_a_float32_frequency_and_low_precision_computes_in_dtype():
    """SinePositionEncoding casts 1/max_wavelength through float32 (keras.ops.cast of a Python
    float) and computes angles in the layer's dtype: float16 tables err by ~3e-3 at p < 64."""
    adapter = _adapter("keras-hub-sine")
    exact = reference.sinusoidal_encoding(50, 16)
    f64 = adapter.to_numpy(adapter.sinusoidal_encoding(50, 16, dtype="float64"))
    assert 1e-10 < np.abs(f64 - exact).max() < 50 * 2.0 ** -24 * 8
    f16 = adapter.to_numpy(adapter.sinusoidal_encoding(64, 8, dtype="float16")).astype(np.float64)
    assert np.abs(f16 - reference.sinusoidal_encoding(64, 8)).max() > 2.0 ** -10


def test_keras_tf_multi_query_attention_fails():
    """keras.ops.dot_product_attention (TF backend) handles H/Hkv = 2 but raises for a single
    key/value head (MQA): Einsum "Expected dimension 4 at axis 2 … but got dimension 1"."""
    adapter = _adapter("keras-tf")
    rng = np.random.default_rng(10)
    inputs = {"query": rng.standard_normal((1, 4, 5, 8)), "key": rng.standard_normal((1, 1, 7, 8)),
              "value": rng.standard_normal((1, 1, 7, 8))}
    with pytest.raises(Exception, match="Expected dimension 4"):
        compute_outputs(adapter, _sdpa_case(inputs, enable_gqa=True), "float32")
    two = dict(inputs, key=np.repeat(inputs["key"], 2, axis=1), value=np.repeat(inputs["value"], 2, axis=1))
    assert compute_outputs(adapter, _sdpa_case(two, enable_gqa=True), "float32")["output"].shape == (1, 4, 5, 8)


def test_torch_flash_has_no_kernel_for_a_3d_mask():
    """A (H, L, S) mask broadcasts on MATH but CPU flash reports "No available kernel"."""
    adapter = _adapter("torch-flash")
    inputs = dict(_qkv(11), attn_mask=np.ones((2, 4, 6), bool))
    with pytest.raises(RuntimeError, match="No available kernel"):
        compute_outputs(adapter, _sdpa_case(inputs), "float32")
    assert compute_outputs(_adapter("torch-math"), _sdpa_case(inputs), "float32")["output"].shape == (1, 2, 4, 4)


def test_keras_mha_head_bias_lands_on_sequence_positions_when_length_equals_heads():
    """Keras's TF `ops.add` treats a per-head (H, 1) bias as a channel bias and, when the sequence
    length T equals H and key/value dim is 1, adds it along the sequence axis (`tf.nn.bias_add`).
    torch's layer computes the canonical projection; only T == H with E = Ev = 1 shows it."""
    rng = np.random.default_rng(3)
    D, H, E = 1, 2, 1

    def case(L):
        w = {"wq": rng.standard_normal((D, H * E)), "wk": rng.standard_normal((D, H * E)),
             "wv": rng.standard_normal((D, H * E)), "wo": rng.standard_normal((H * E, D)),
             "bq": rng.standard_normal(H * E), "bk": rng.standard_normal(H * E),
             "bv": rng.standard_normal(H * E), "bo": rng.standard_normal(D)}
        inputs = dict(w, query_input=rng.standard_normal((1, L, D)))
        return Case(id="finding", operation="multi_head_attention", clauses=(), inputs=inputs,
                    options={"num_heads": H, "num_kv_heads": H, "is_causal": False})

    def deviation(adapter, c):
        exact = reference.compute(c.operation, c.inputs, c.options)["output"]
        return float(np.max(np.abs(compute_outputs(adapter, c, "float64")["output"] - exact)))

    keras = _adapter("keras-tf-mha")
    assert deviation(keras, case(L=H)) > 1e-3            # the finding: T == H
    assert deviation(keras, case(L=H + 1)) < 1e-9        # the same layer is right otherwise
