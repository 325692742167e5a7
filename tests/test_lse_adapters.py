"""The LSE and merge adapters against the exact reference, and their divergences pinned with the
numbers measured here (torch 2.13.0+cpu). They ship as expectations in
conformance/expectations/lse.json; a test that starts failing means the library changed: update
the finding, the expectation and its reason together.

Inputs: multiples of 1/16 (exact in every dtype), (B, H, L, S, E) = (1, 2, 4, 6, 8).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import compute
from tests.bundled_adapters import bundled_or_skip

RNG = np.random.default_rng(11)
Q, K, V = (np.round(RNG.standard_normal(s) * 16) / 16 for s in ((1, 2, 4, 8), (1, 2, 6, 8), (1, 2, 6, 8)))
EMPTY_ROW = np.ones((1, 1, 4, 6), bool)
EMPTY_ROW[..., 2, :] = False


def lse_of(name, dtype, mask=None, **options):
    a = bundled_or_skip(name)
    native = {n: a.from_numpy(np.asarray(x, np.float64), dtype) if n == "sinks" else a.index_from_numpy(np.asarray(x))
              for n, x in options.items()}
    m = None if mask is None else a.mask_from_numpy(mask, dtype)
    out, lse = a.sdpa_lse(*(a.from_numpy(x, dtype) for x in (Q, K, V)), attn_mask=m, **native)
    return a.to_numpy(out).astype(np.float64), a.to_numpy(lse)


def exact(mask=None, **options):
    inputs = {"query": Q, "key": K, "value": V, **{n: np.asarray(x) for n, x in options.items()}}
    if mask is not None:
        inputs["attn_mask"] = mask
    return compute("sdpa_lse", inputs, {}, exact=True)


@pytest.mark.parametrize("name", ["torch-flash-lse", "torch-flex"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-14), ("float32", 3e-6), ("bfloat16", 3e-2)])
def test_lse_is_natural_log_float32_below_float64(name, dtype, tol):
    _, lse = lse_of(name, dtype)
    assert str(lse.dtype) == ("float64" if dtype == "float64" else "float32")     # sdpa.lse.dtype
    assert np.max(np.abs(lse - exact()["lse"])) <= tol


def test_torch_flash_lse_gives_a_finite_zero_for_an_empty_row():
    # aten::_scaled_dot_product_flash_attention_for_cpu: logsumexp 0 and output 0 where the mask
    # hides every key, at every dtype (lse.json: sdpa.lse.empty, 'finite'); the other rows agree
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        out, lse = lse_of("torch-flash-lse", dtype, EMPTY_ROW)
        assert np.all(lse[..., 2] == 0.0)
        assert np.all(out[..., 2, :] == 0.0)
        want = exact(EMPTY_ROW)["lse"]
        assert np.allclose(np.delete(lse, 2, axis=-1), np.delete(want, 2, axis=-1), atol=3e-2)


def test_torch_flex_lse_is_neg_inf_for_empty_and_padded_rows():
    _, lse = lse_of("torch-flex", "float64", EMPTY_ROW)
    assert np.all(np.isneginf(lse[..., 2]))
    # padded rows with sinks: the adapter's translation keeps them −∞ (sdpa.lse.padded)
    _, lse = lse_of("torch-flex", "float32", sinks=np.array([0.5, -1.0]), query_lengths=np.array([2]))
    want = exact(sinks=np.array([0.5, -1.0]), query_lengths=np.array([2]))["lse"]
    assert np.all(np.isneginf(lse[..., 2:])) and np.allclose(lse[..., :2], want[..., :2], atol=3e-6)


def merge_of(dtype, outs, lses):
    a = bundled_or_skip("torch-cp-merge")
    out, lse = a.merge_attention_states(a.from_numpy(outs, dtype), a.from_numpy(lses, dtype))
    return a.to_numpy(out).astype(np.float64), a.to_numpy(lse)


STATES = np.round(RNG.standard_normal((3, 1, 2, 4, 5)) * 16) / 16
LSES = np.round(RNG.uniform(-3, 3, (3, 1, 2, 4)) * 16) / 16


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-14), ("float32", 2e-6), ("float16", 2e-3)])
def test_sdpa_merger_agrees_where_no_state_is_empty(dtype, tol):
    out, lse = merge_of(dtype, STATES, LSES)
    want = compute("merge_attention_states", {"outputs": STATES, "lses": LSES}, {}, exact=True)
    assert str(lse.dtype) == ("float64" if dtype == "float64" else "float32")
    assert np.max(np.abs(out - want["output"])) <= tol and np.max(np.abs(lse - want["lse"])) <= tol


def test_sdpa_merger_nan_for_empty_states():
    # _SDPAMerger: sigmoid(−∞ − (−∞)) = NaN for two empty states; lse − logsigmoid(lse − lse_n)
    # with lse = −∞ first gives NaN (lse.json: sdpa.merge.empty, 'nan')
    lses = LSES[:2].copy()
    lses[:, ..., 0] = -np.inf          # row 0: both states empty
    lses[0, ..., 1] = -np.inf          # row 1: the first state empty
    out, lse = merge_of("float32", STATES[:2], lses)
    assert np.all(np.isnan(out[..., 0, :])) and np.all(np.isnan(lse[..., 0]))
    assert np.all(np.isnan(lse[..., 1]))
    assert np.allclose(out[..., 1, :], STATES[1][..., 1, :], atol=1e-6)   # the output itself is right
    want = compute("merge_attention_states", {"outputs": STATES[:2], "lses": lses}, {}, exact=True)
    assert np.allclose(lse[..., 2:], want["lse"][..., 2:], atol=2e-6)


def test_jax_pallas_mha_residual_lse_is_base_2():
    # JAX has no LSE in jax.nn.dot_product_attention; its Pallas GPU flash kernel
    # (jax.experimental.pallas.ops.gpu.attention.mha) runs on CPU with interpret=True and, with
    # return_residuals=True, returns log2 of each row's denominator (its exp2 softmax): the
    # spec's `base2` alternative (sdpa.lse.base), measured on jax 0.10.2. Not bundled as an
    # adapter: block sizes must divide L and S, and each shape costs ~3 s to trace here.
    jax = pytest.importorskip("jax")
    attention = pytest.importorskip("jax.experimental.pallas.ops.gpu.attention")
    q, k, v = (jax.numpy.asarray(RNG.standard_normal((1, 16, 2, 16)), jax.numpy.float32) for _ in range(3))
    blocks = attention.BlockSizes(block_q=16, block_k=16, block_q_dkv=16, block_kv_dkv=16, block_q_dq=16,
                                  block_kv_dq=16)
    _, residuals = attention.mha(q, k, v, None, sm_scale=0.25, block_sizes=blocks, interpret=True,
                                 return_residuals=True)
    lse = np.asarray(residuals[0] if isinstance(residuals, (tuple, list)) else residuals, np.float64)
    s = np.einsum("blhe,bshe->bhls", np.asarray(q, np.float64), np.asarray(k, np.float64)) * 0.25
    natural = np.log(np.exp(s).sum(-1))
    assert np.max(np.abs(lse - natural / np.log(2.0))) < 1e-5
    assert np.max(np.abs(lse - natural)) > 0.5
