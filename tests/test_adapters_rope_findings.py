"""Divergences of the wrapped RoPE implementations from the spec's exact rotation, measured against
the float64 NumPy rotation of test_adapters_rope.py (x ~ N(0, 1), shape (2, 3, 5, 8), so |x| ≤ 3.1).
Each test pins what the library does today with the numbers measured (transformers 5.24.0,
keras-hub 0.32.0, torch 2.13, TF 2.21); a test that starts failing means the library changed.
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from tests.bundled_adapters import bundled_or_skip
from tests.test_adapters_rope import P, X, rope, run

BOTH = ["hf-rope", "keras-hub-rope"]


@pytest.mark.parametrize("name", BOTH)
def test_float64_inputs_get_float32_angles(name):
    # Both form p·ω in float32 (HF: position_ids.float() * inv_freq; keras-hub: ops.cast(positions,
    # "float32")) whatever x's dtype, then cast cos/sin to float64. Measured max |error|:
    # 7.5e-08 (HF) / 6.7e-08 (keras-hub) at positions 0..4, 9.6e-03 (both) at 10^6..10^6+4;
    # the float64 rotation itself is ~1e-10 off there.
    adapter = bundled_or_skip(name)
    got, want = run(adapter, X, P, "float64")
    assert 1e-9 < np.max(np.abs(got - want)) < 2e-7
    got, want = run(adapter, X, P + 10**6, "float64")
    assert 5e-3 < np.max(np.abs(got - want)) < 2e-2


@pytest.mark.parametrize("name", BOTH)
def test_bfloat16_inputs_keep_float32_angles(name):
    # No bf16-angle loss (transformers PR #29285, gpt-neox PR #1016): the angle stays float32 and only
    # cos/sin and the products are rounded to bfloat16. At positions 10^4..10^4+4 the max |error| is
    # 0.0183 for both, about one bf16 ulp of |x| ≤ 3.1 (0.0156); bf16 angles (ulp 64 at 10^4) would
    # be wrong by O(1).
    adapter = bundled_or_skip(name)
    got, want = run(adapter, X, P + 10**4, "bfloat16")
    assert np.max(np.abs(got - want)) < 0.03


def test_keras_hub_dynamic_is_linear_scaling_by_f_to_r_over_r_minus_2():
    # keras-hub's rope_type "dynamic" divides every inverse frequency by f^(r/(r-2)) at every
    # sequence length: linear scaling by 4^(8/6) = 6.35 here, not HF's NTK rule (base rescaled, and
    # only once L = max position + 1 exceeds L0). Positions 0..4 with L0 = 4096, f = 4: HF leaves the
    # rotation unscaled (7.5e-08 off the unscaled rotation); keras-hub is 3.61 off it and 1.3e-07
    # off linear scaling by 6.35.
    adapter = bundled_or_skip("keras-hub-rope")
    scaling = {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 4096}
    got, want = run(adapter, X, P, "float64", scaling=scaling)
    assert np.max(np.abs(got - want)) > 3.0
    as_linear = rope(X, P, layout="half", scaling={"rope_type": "linear", "factor": 4.0 ** (8 / 6)})
    assert np.max(np.abs(got - as_linear)) < 2e-7


def test_keras_hub_yarn_attention_factor_rounded_to_compute_dtype():
    # keras-hub forms the YaRN factor 0.1·ln f + 1 in the layer's compute dtype and multiplies the
    # already-rounded cos/sin by it: in bfloat16, 1.1386294 becomes 1.140625 (+0.18 %) and the
    # product is rounded again. f = 4, L0 = 64, positions 0..4: max |error| 0.0189 (keras-hub) vs
    # 0.0140 (HF, which scales in float32 before casting cos/sin once).
    assert float(np.asarray(0.1 * math.log(4) + 1).astype(ml_dtypes.bfloat16)) == 1.140625
    scaling = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    errors = {}
    for name in BOTH:
        got, want = run(bundled_or_skip(name), X, P, "bfloat16", scaling=scaling)
        errors[name] = np.max(np.abs(got - want))
    assert errors["keras-hub-rope"] > 0.0165 and errors["hf-rope"] < 0.0165


def test_keras_hub_yarn_truncate_defaults_to_true():
    # keras-hub 0.32 defaults truncate=True (HF's default too, so the spec default agrees); older
    # keras-hub documentation described truncate=False (docs/findings.md#rope-scaling).
    pytest.importorskip("keras_hub")
    bundled_or_skip("keras-hub-rope")
    import keras_hub

    assert keras_hub.layers.RotaryEmbedding().truncate is True


def test_hf_llama_default_rope_ignores_partial_rotary_factor():
    # LlamaRotaryEmbedding's default init reads head_dim only: partial_rotary_factor=0.5 still
    # gives head_dim/2 = 4 frequencies (full-width cos), while the scaled inits (linear here) give 2.
    # So hf-rope expresses rotary_dim < E by a head_dim of r and a pass-through split.
    bundled_or_skip("hf-rope")
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    def frequencies(**params):
        config = LlamaConfig(hidden_size=8, num_attention_heads=1, head_dim=8, max_position_embeddings=64,
                             rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.5, **params})
        return LlamaRotaryEmbedding(config).inv_freq.shape[0]

    assert frequencies(rope_type="default") == 4
    assert frequencies(rope_type="linear", factor=1.0) == 2
