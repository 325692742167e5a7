"""Same-precision paths (tol.baseline): right dtype, and errors of the size the dtype implies.

The bounds are a priori, not fitted: a straightforward evaluation in a dtype with unit roundoff
u = eps/2 errs by a few roundings of each intermediate (logits, p, P·V; each rounding to the
storage dtype costs at most 0.5 eps) plus accumulation of at most E or S terms in float32.
We allow 8 eps of the storage dtype in natural scale for attention (four roundings of 0.5 eps,
doubled for the propagation through the softmax, plus float32 accumulation, which is far below
f16/bf16 eps and below 8·2^-23 for E, S <= 64) and check the error is also not absurdly small
(a path that silently ran in float64 would be "too good": below eps/1000).
"""
from __future__ import annotations

import numpy as np
import pytest

import attnconf.reference as R
from attnconf.dtypes import EPS, numpy_dtype


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return dict(query=rng.standard_normal((2, 4, 9, 16)), key=rng.standard_normal((2, 2, 33, 16)),
                value=rng.standard_normal((2, 2, 33, 8)), grad_output=rng.standard_normal((2, 4, 9, 8)))


def _err_in_eps(got, exact, scale, dtype):
    return np.max(np.abs(got.astype(np.float64) - exact) / scale) / EPS[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_sdpa_low_precision_dtype_and_error(dtype):
    inputs = _inputs(0)
    fwd = {k: inputs[k] for k in ("query", "key", "value")}
    opts = dict(enable_gqa=True, is_causal=True)
    # the exact answer for the inputs as the dtype holds them
    held = {k: v.astype(numpy_dtype(dtype)).astype(np.float64) for k, v in fwd.items()}
    exact = R.compute("sdpa", held, opts, exact=True)["output"]
    scale = R.natural_scales("sdpa", held, opts)["output"]
    got = R.compute("sdpa", fwd, opts, precision=dtype)["output"]
    assert got.dtype == numpy_dtype(dtype)
    err = _err_in_eps(got, exact, scale, dtype)
    assert 1e-3 < err <= 8.0, err


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_vjp_low_precision_dtype_and_error(dtype):
    inputs = _inputs(1)
    held = {k: v.astype(numpy_dtype(dtype)).astype(np.float64) for k, v in inputs.items()}
    opts = dict(enable_gqa=True)
    exact = R.compute("sdpa_vjp", held, opts, exact=True)
    scales = R.natural_scales("sdpa_vjp", held, opts)
    got = R.compute("sdpa_vjp", inputs, opts, precision=dtype)
    for n in ("dq", "dk", "dv"):
        assert got[n].dtype == numpy_dtype(dtype)
        # gradients chain two more roundings (dP, dS) and a sum over the group: 16 eps
        assert 1e-3 < _err_in_eps(got[n], exact[n], scales[n], dtype) <= 16.0, n


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_mha_low_precision_dtype_and_error(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 6, 8)).astype(numpy_dtype(dtype)).astype(np.float64)
    w = {n: (rng.standard_normal(s) / np.sqrt(8)).astype(numpy_dtype(dtype)).astype(np.float64)
         for n, s in dict(wq=(8, 8), wk=(8, 4), wv=(8, 4), wo=(8, 8), bo=(8,)).items()}
    inputs = dict(query_input=x, **w)
    opts = dict(num_heads=4, num_kv_heads=2)
    exact = R.compute("multi_head_attention", inputs, opts, exact=True)["output"]
    scale = R.natural_scales("multi_head_attention", inputs, opts)["output"]
    got = R.compute("multi_head_attention", inputs, opts, precision=dtype)["output"]
    assert got.dtype == numpy_dtype(dtype)
    # projections add two roundings each to the chain and their errors feed the logits: 32 eps
    assert 1e-3 < _err_in_eps(got, exact, scale, dtype) <= 32.0


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_encoding_low_precision(dtype):
    """float32 angles err by ~p·2^-24 (docs/findings.md#sinusoidal-precision); f16/bf16 add one rounding of the table."""
    t, offset = 64, 2000
    exact = R.sinusoidal_encoding(t, 32, offset=offset, exact=True)
    got = R.sinusoidal_encoding(t, 32, offset=offset, precision=dtype)
    assert got.dtype == numpy_dtype(dtype)
    err = np.max(np.abs(got.astype(np.float64) - exact))
    p_max = offset + t
    bound = 4 * p_max * 2.0 ** -24 + EPS[dtype]  # angle rounding (≤ 2 ulps of p·ω) + sin/cos + cast
    assert err <= bound, (err, bound)
    if dtype == "float32":
        assert err > 10 * 2.0 ** -24  # angles really were formed in float32 (not float64)
