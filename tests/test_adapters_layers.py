"""Weight loading of the multi-head attention adapters and attnconf's own encodings in each
framework, against attnconf.reference at float64.

A weight-layout bug (transposed kernel, wrong head split, q/k swapped, inverted torch mask
polarity) moves the output by O(natural scale); float64 rounding through two projections and
SDPA moves it by ~1e-15 relative, so the 1e-11 tolerance separates them by 10 orders.
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf import reference
from bundled_adapters import bundled_or_skip as _adapter
from attnconf.conformance.judging.engine import compute_outputs
from attnconf.errors import Unsupported
from attnconf.reference.cases import Case

# keras-tf-mha: float64 runs lose ~1e-9 where 1/sqrt(E) is not a float32 number (E = 2, 3), as the
# scale rounded to float32 in keras.ops.dot_product_attention (a finding, test_adapters_findings.py);
# float32 rounding of the scale moves logits by 2^-24·|logit| ≲ 1e-7 relative, measured ≤ 3e-9.
MHA_REL_TOL = {"numpy-reference": 1e-11, "torch-nn-mha": 1e-11, "keras-tf-mha": 1e-7}
MHA_ADAPTERS = list(MHA_REL_TOL)



def _mha_inputs(rng, *, B=2, L=5, S=None, D=8, Dkv=None, H=2, E=None, Ev=None, biases="all", mask=None):
    E, Ev = E or D // H, Ev or D // H
    inputs = {"query_input": rng.standard_normal((B, L, D)),
              "wq": rng.standard_normal((D, H * E)) / np.sqrt(D),
              "wo": rng.standard_normal((H * Ev, D)) / np.sqrt(H * Ev)}
    if S is not None:
        inputs["key_value_input"] = rng.standard_normal((B, S, Dkv or D))
    kv_dim = Dkv or D
    inputs["wk"] = rng.standard_normal((kv_dim, H * E)) / np.sqrt(kv_dim)
    inputs["wv"] = rng.standard_normal((kv_dim, H * Ev)) / np.sqrt(kv_dim)
    names = {"all": ("bq", "bk", "bv", "bo"), "some": ("bk", "bo"), "none": ()}[biases]
    sizes = {"bq": H * E, "bk": H * E, "bv": H * Ev, "bo": D}
    for n in names:
        inputs[n] = rng.standard_normal(sizes[n])
    if mask is not None:
        inputs["attn_mask"] = mask(rng, L, S or L)
    return inputs


def _bool_mask(rng, L, S):
    m = rng.random((L, S)) > 0.4
    m[:, -1] = True  # never fully masked: with is_causal the intersection keeps key 0, see below
    m[:, 0] = True
    return m


MHA_SCENARIOS = {
    "self_all_biases": (dict(biases="all"), {}),
    "self_no_bias": (dict(biases="none"), {}),
    "self_some_biases": (dict(biases="some"), {}),
    "cross_dkv_differs": (dict(S=7, Dkv=6), {}),
    "bool_mask_polarity": (dict(mask=_bool_mask), {}),
    "causal": (dict(), {"is_causal": True}),
    "causal_cross_L_ne_S": (dict(S=7), {"is_causal": True}),
    "bool_mask_and_causal": (dict(mask=_bool_mask), {"is_causal": True}),
    "float_mask": (dict(mask=lambda r, L, S: r.standard_normal((2, 2, L, S))), {}),
    "value_dim_differs": (dict(E=3, Ev=5), {}),
    "heads_4": (dict(H=4, D=8), {}),
}


def _needs(caps, scenario):
    if scenario == "float_mask":
        return "float" in caps.mask_kinds
    if scenario == "value_dim_differs":
        return caps.value_dim_differs
    return True


@pytest.mark.parametrize("scenario", list(MHA_SCENARIOS))
@pytest.mark.parametrize("name", MHA_ADAPTERS)
def test_mha_float64_matches_reference(name, scenario):
    adapter = _adapter(name)
    shape_kw, options = MHA_SCENARIOS[scenario]
    inputs = _mha_inputs(np.random.default_rng(5), **shape_kw)
    H = shape_kw.get("H", 2)
    case = Case(id=f"test/{scenario}", operation="multi_head_attention", clauses=(), inputs=inputs,
                options={"num_heads": H, "num_kv_heads": H, "is_causal": False, **options})
    if not _needs(adapter.capabilities, scenario):
        with pytest.raises(Unsupported):
            compute_outputs(adapter, case, "float64")
        return
    got = compute_outputs(adapter, case, "float64")["output"]
    want = reference.compute(case.operation, case.inputs, case.options)["output"]
    scale = reference.natural_scales(case.operation, case.inputs, case.options)["output"]
    assert got.shape == want.shape
    err = np.abs(got - want) / scale
    assert err.max() <= MHA_REL_TOL[name], f"{name} {scenario}: {err.max():.3g} × natural scale"


def test_torch_mha_mask_polarity_is_inverted_at_the_border():
    """The canonical True = takes part; nn.MultiheadAttention's True = NOT allowed. Passing the
    canonical mask through unchanged must give a different answer (so the translation matters)."""
    import torch

    adapter = _adapter("torch-nn-mha")
    rng = np.random.default_rng(2)
    inputs = _mha_inputs(rng, biases="none", mask=_bool_mask)
    canonical = torch.from_numpy(inputs["attn_mask"])
    translated = adapter._mask(canonical, False, 2, 2, 5, 5, torch.zeros(1, dtype=torch.float64))
    assert torch.equal(translated, ~canonical)


ENC_ADAPTERS = ["numpy-reference", "torch-sinusoidal", "jax-sinusoidal", "tf-sinusoidal", "keras-hub-sine"]
ENC_SCENARIOS = {
    "vaswani_interleaved_d16": dict(num_positions=50, dim=16),
    "vaswani_odd_d7": dict(num_positions=20, dim=7),
    "vaswani_d1": dict(num_positions=9, dim=1),
    "vaswani_concat_odd": dict(num_positions=20, dim=9, layout="concat"),
    "vaswani_cos_first": dict(num_positions=20, dim=8, layout="cos_first"),
    "t2t_concat_d12": dict(num_positions=30, dim=12, layout="concat", frequencies="t2t"),
    "t2t_odd_d5_interleaved": dict(num_positions=30, dim=5, frequencies="t2t"),
    "t2t_d2": dict(num_positions=10, dim=2, frequencies="t2t", layout="cos_first"),
    "t2t_d1": dict(num_positions=4, dim=1, frequencies="t2t"),
    "offset_base": dict(num_positions=16, dim=10, offset=1000, base=500.0),
}


@pytest.mark.parametrize("scenario", list(ENC_SCENARIOS))
@pytest.mark.parametrize("name", ENC_ADAPTERS)
def test_encoding_float64_matches_reference(name, scenario):
    adapter = _adapter(name)
    options = dict(base=10000.0, offset=0, layout="interleaved", frequencies="vaswani")
    options.update(ENC_SCENARIOS[scenario])
    case = Case(id=f"test/{scenario}", operation="sinusoidal_encoding", clauses=(), inputs={}, options=options)
    caps = adapter.capabilities
    if options["layout"] not in caps.encoding_layouts or options["frequencies"] not in caps.encoding_frequencies:
        with pytest.raises(Unsupported):
            compute_outputs(adapter, case, "float64")
        return
    got = compute_outputs(adapter, case, "float64")["output"]
    want = reference.compute(case.operation, {}, options)["output"]
    assert got.shape == want.shape and got.dtype == np.float64
    # A float64 angle p·ω (ω from exp(-k·ln base)) errs by ≲ 8·p·u with u = 2⁻⁵³; |d sin| ≤ |d angle|;
    # the bound is taken 16× looser for summation and libm. Variant bugs give O(1) errors.
    # keras-hub-sine rounds 1/base to float32 (keras.ops.cast of a Python float, a finding), so
    # its ω carries u = 2⁻²⁴ even in a float64 table (measured 4.8e-8 at p < 50, base 10000).
    u = 2.0 ** -24 if name == "keras-hub-sine" else 2.0 ** -53
    p_max = options["offset"] + options["num_positions"]
    assert np.abs(got - want).max() <= 8 * (1 + p_max) * u * 16


@pytest.mark.parametrize("name", ["torch-sinusoidal", "jax-sinusoidal", "tf-sinusoidal"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_own_encoding_dtype_and_float32_angles(name, dtype):
    """attnconf's own encodings compute angles in float32 and round once to a lower dtype."""
    adapter = _adapter(name)
    options = dict(num_positions=64, dim=8, base=10000.0, offset=0, layout="interleaved", frequencies="vaswani")
    case = Case(id="test/enc-dtype", operation="sinusoidal_encoding", clauses=(), inputs={}, options=options)
    got = compute_outputs(adapter, case, dtype)["output"]
    assert str(got.dtype) == dtype
    want = reference.compute(case.operation, {}, options)["output"]
    eps = {"float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
    # float32 angles at p ≤ 63 err by ≤ 63·2⁻²⁴ ≈ 4e-6, plus one rounding to the output dtype.
    assert np.abs(got.astype(np.float64) - want).max() <= eps + 64 * 2.0 ** -23
