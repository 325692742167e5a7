"""Bundled position-bias and position-id adapters (issue 13: hf-t5-bias, hf-bloom-alibi,
hf-roberta-positions, hf-opt-positions, keras-hub-alibi, keras-hub-alibi-jax, hf-speecht5-relpos)
against formulas written here from the spec's text (spec/alibi.md, spec/relative_position.md,
spec/position_ids.md), independent of attnconf.reference: integer outputs bit-exact, lookups exact,
ALiBi within the rounding of the dtype each library computes in. Their divergences are pinned with numbers in
test_adapters_position_findings.py. keras-hub-alibi-jax needs keras on the JAX backend, so it runs in
a subprocess of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from attnconf.dtypes import EPS, numpy_dtype
from attnconf.errors import Unsupported
from tests.bundled_adapters import bundled_or_skip

ROOT = Path(__file__).resolve().parents[1]


# -- formulas from the spec ----------------------------------------------------------------------
def slopes(n, max_bias=8.0):
    """Press et al. / fairseq get_slopes: 2^(−max_bias·k/p) at 60 digits, rounded once to float64."""
    import mpmath

    def powers(p, ks):
        with mpmath.workdps(60):
            return [float(mpmath.mpf(2) ** (-mpmath.mpf(max_bias) * k / p)) for k in ks]

    p = 2 ** (n.bit_length() - 1)
    return np.array(powers(p, range(1, p + 1)) + powers(2 * p, range(1, 2 * p + 1, 2))[: n - p])


def alibi(n, L, S, mode, alignment, max_bias=8.0):
    """(H, L, S) float64 ALiBi bias."""
    m = slopes(n, max_bias)[:, None, None]
    i = np.arange(L)[:, None] + (S - L if alignment == "bottom_right" else 0)
    j = np.arange(S)[None, :]
    return {"causal": -m * (i - j), "symmetric": -m * np.abs(i - j), "row_constant": m * j + 0 * i}[mode]


def bucket(rel, bidirectional, num_buckets, max_distance):
    """T5's bucket of one relative position j − i, the floor of the exact real logarithm (integers)."""
    nb, out = num_buckets, 0
    if bidirectional:
        nb //= 2
        out += nb if rel > 0 else 0
        n = abs(rel)
    else:
        n = max(-rel, 0)
    exact = nb // 2
    if n < exact:
        return out + n
    # largest k with (max_distance/exact)^(k/(nb − exact)) <= n/exact, in rationals
    ratio, target, k = Fraction(max_distance, exact), Fraction(n, exact) ** (nb - exact), 0
    while k < nb and ratio ** (k + 1) <= target:
        k += 1
    return out + min(exact + k, nb - 1)


def buckets(L, S, bidirectional, num_buckets, max_distance, query_offset=0):
    return np.array([[bucket(j - (i + query_offset), bidirectional, num_buckets, max_distance)
                      for j in range(S)] for i in range(L)])


def position_ids(mask, scheme, past_length=0, padding_idx=1):
    mask = np.asarray(mask)
    T = mask.shape[1] - past_length
    if scheme == "roberta":
        m = mask[:, past_length:]
        return (np.cumsum(m, axis=1) + past_length) * m + padding_idx
    if scheme == "opt":
        return (np.cumsum(mask, axis=1) * mask - 1)[:, past_length:] + 2
    return np.broadcast_to(np.arange(T) + (past_length if scheme == "past" else 0), (mask.shape[0], T))


MASKS = {  # (B, past + T): right padding, left padding, none, holes
    "right_pad": [[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]],
    "left_pad": [[0, 0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0]],
}


def as_int(adapter, value):
    out = adapter.to_numpy(value)
    assert np.issubdtype(out.dtype, np.integer), out.dtype
    return out.astype(np.int64)


# -- T5 ------------------------------------------------------------------------------------------
T5_CONFIGS = {"bidirectional_32_128": (True, 32, 128), "causal_32_128": (False, 32, 128),
              "bidirectional_8_20": (True, 8, 20), "causal_16_64": (False, 16, 64),
              "bidirectional_64_256": (True, 64, 256)}


@pytest.mark.parametrize("shape", [(6, 6, 0), (3, 400, 0), (400, 3, 0), (2, 300, 150), (5, 9, -4)])
@pytest.mark.parametrize("config", T5_CONFIGS)
def test_t5_buckets_are_the_exact_rule(config, shape):
    # T5 evaluates ln in float32 and truncates; for these configurations (T5's defaults among them)
    # it lands on the exact floor at every distance here. Where it does not (exact integer
    # boundaries, values just below an integer) is pinned in test_adapters_position_findings.py.
    adapter = bundled_or_skip("hf-t5-bias")
    bi, nb, md = T5_CONFIGS[config]
    L, S, offset = shape
    got = as_int(adapter, adapter.relative_position_bucket(L, S, bidirectional=bi, num_buckets=nb,
                                                           max_distance=md, query_offset=offset))
    np.testing.assert_array_equal(got, buckets(L, S, bi, nb, md, offset))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_t5_bias_is_the_table_looked_up(bidirectional, dtype):
    adapter = bundled_or_skip("hf-t5-bias")
    table = np.random.default_rng(13).standard_normal((32, 3)).astype(numpy_dtype(dtype))
    out = adapter.relative_position_bias(adapter.from_numpy(table, dtype), 5, 40, bidirectional=bidirectional,
                                         num_buckets=32, max_distance=128, query_offset=3)
    got = adapter.to_numpy(out)
    assert got.dtype == table.dtype and got.shape == (3, 5, 40)
    want = np.moveaxis(table[buckets(5, 40, bidirectional, 32, 128, 3)], -1, 0)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))


# -- ALiBi ---------------------------------------------------------------------------------------
def slope_tolerance(name, dtype):
    # Relative, in ulp of the dtype each library computes in (measured, H ≤ 64): BLOOM raises a
    # float32 base to integer powers in float32, ≤ 4.0 float32 ulp (H = 32), then casts (its float64
    # slopes are float32-accurate: pinned in the findings); keras-hub multiplies Python floats,
    # start·ratio**i, ≤ 7.0 float64 ulp (H = 32), then rounds once into the dtype.
    if name == "hf-bloom-alibi":
        return 5 * EPS["float32" if dtype == "float64" else dtype]
    return 8 * EPS[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("heads", [1, 6, 8, 12, 16, 32])
@pytest.mark.parametrize("name", ["hf-bloom-alibi", "keras-hub-alibi"])
def test_alibi_slopes(name, heads, dtype):
    adapter = bundled_or_skip(name)
    got = adapter.to_numpy(adapter.alibi_slopes(heads, max_bias=8.0, dtype=dtype))
    assert got.dtype == numpy_dtype(dtype) and got.shape == (heads,)
    want = slopes(heads)
    assert np.max(np.abs(got.astype(np.float64) - want) / want) <= slope_tolerance(name, dtype)


def test_keras_hub_slopes_take_max_bias():
    adapter = bundled_or_skip("keras-hub-alibi")
    got = adapter.to_numpy(adapter.alibi_slopes(12, max_bias=5.0, dtype="float64"))
    np.testing.assert_allclose(got, slopes(12, 5.0), rtol=slope_tolerance("keras-hub-alibi", "float64"))


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(8, 8), (3, 11), (1, 300)])
def test_bloom_bias_is_row_constant_form(shape, dtype):
    adapter = bundled_or_skip("hf-bloom-alibi")
    L, S = shape
    for alignment in ("top_left", "bottom_right"):  # m·j does not depend on the query
        got = adapter.to_numpy(adapter.alibi_bias(12, L, S, max_bias=8.0, mode="row_constant",
                                                  alignment=alignment, dtype=dtype))
        assert got.dtype == numpy_dtype(dtype) and got.shape == (12, L, S)
        want = alibi(12, L, S, "row_constant", alignment)
        rel = 4 * (EPS["float32"] if dtype == "float64" else EPS[dtype])  # m·j formed in float32
        assert np.all(np.abs(got.astype(np.float64) - want) <= rel * np.abs(want))


def test_alibi_adapters_decline_forms_they_lack():
    bloom = bundled_or_skip("hf-bloom-alibi")
    assert bloom.capabilities.alibi_modes == ("row_constant",)
    for mode in ("causal", "symmetric"):
        with pytest.raises(Unsupported):
            bloom.alibi_bias(4, 3, 3, max_bias=8.0, mode=mode, alignment="bottom_right", dtype="float32")
    with pytest.raises(Unsupported):
        bloom.alibi_slopes(4, max_bias=4.0, dtype="float32")
    keras_hub = bundled_or_skip("keras-hub-alibi")
    assert keras_hub.capabilities.alibi_modes == ("causal",)
    for mode, alignment in (("symmetric", "bottom_right"), ("row_constant", "bottom_right"), ("causal", "top_left")):
        with pytest.raises(Unsupported):
            keras_hub.alibi_bias(4, 3, 5, max_bias=8.0, mode=mode, alignment=alignment, dtype="float32")


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_keras_hub_bias_last_row_is_the_causal_bias(dtype):
    # The one row where keras-hub's m·(j − S + 1) is the spec's −m·(i' − j) (bottom-right i' = S − 1);
    # the other rows are pinned in the findings.
    adapter = bundled_or_skip("keras-hub-alibi")
    got = adapter.to_numpy(adapter.alibi_bias(6, 4, 9, max_bias=8.0, mode="causal", alignment="bottom_right",
                                              dtype=dtype)).astype(np.float64)
    want = alibi(6, 4, 9, "causal", "bottom_right")
    assert got.shape == want.shape
    assert np.all(np.abs(got[:, -1] - want[:, -1]) <= 2 * EPS[dtype] * np.abs(want[:, -1]))


# -- position ids and the learned-table lookup -------------------------------------------------------
@pytest.mark.parametrize("past", [0, 3])
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("name, scheme, padding_idx", [("hf-roberta-positions", "roberta", 1),
                                                       ("hf-roberta-positions", "roberta", 0),
                                                       ("hf-opt-positions", "opt", 1)])
def test_position_ids(name, scheme, padding_idx, mask, past):
    adapter = bundled_or_skip(name)
    m = np.array(MASKS[mask])
    got = as_int(adapter, adapter.position_ids(adapter.index_from_numpy(m), scheme=scheme, past_length=past,
                                               padding_idx=padding_idx))
    np.testing.assert_array_equal(got, position_ids(m, scheme, past, padding_idx))


@pytest.mark.parametrize("name, scheme", [("hf-roberta-positions", "roberta"), ("hf-opt-positions", "opt")])
def test_position_ids_decline_other_schemes(name, scheme):
    adapter = bundled_or_skip(name)
    assert adapter.capabilities.position_id_schemes == (scheme,)
    mask = adapter.index_from_numpy(np.ones((1, 4), dtype=np.int64))
    for other in {"arange", "past", "roberta", "opt"} - {scheme}:
        with pytest.raises(Unsupported):
            adapter.position_ids(mask, scheme=other, past_length=0, padding_idx=1)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_opt_position_embedding_is_the_table_looked_up(dtype):
    adapter = bundled_or_skip("hf-opt-positions")
    table = np.random.default_rng(3).standard_normal((12, 5)).astype(numpy_dtype(dtype))
    ids = np.array([[0, 1, 2, 11], [5, 5, 3, 1]])
    got = adapter.to_numpy(adapter.position_embedding(adapter.from_numpy(table, dtype), adapter.index_from_numpy(ids)))
    assert got.dtype == table.dtype
    np.testing.assert_array_equal(got.astype(np.float64), table[ids].astype(np.float64))


@pytest.mark.parametrize("bad", [12, 40, -1, -3])
def test_opt_position_embedding_raises_out_of_range(bad):
    adapter = bundled_or_skip("hf-opt-positions")
    table = adapter.from_numpy(np.zeros((12, 5)), "float32")
    with pytest.raises(IndexError):
        adapter.position_embedding(table, adapter.index_from_numpy(np.array([[0, bad]])))


def test_speecht5_relative_index_declines_two_lengths():
    adapter = bundled_or_skip("hf-speecht5-relpos")
    with pytest.raises(Unsupported):
        adapter.relative_position_index(3, 10, max_relative_position=4, alignment="bottom_right")


# -- keras-hub-alibi on the JAX backend --------------------------------------------------------------
def test_keras_hub_alibi_on_jax_backend_in_its_own_process():
    pytest.importorskip("keras_hub")
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_adapters_position import alibi, slopes
        from attnconf.adapters.keras_hub_alibi import KerasHubAlibiJaxAdapter
        a = KerasHubAlibiJaxAdapter()
        ok, why = a.is_available()
        out = {{"available": ok, "reason": why, "errors": {{}}}}
        if ok:
            import keras
            out["backend"] = keras.backend.backend()
            for dtype in ("float64", "float32", "bfloat16"):
                for heads in (6, 8, 12):
                    got = a.to_numpy(a.alibi_slopes(heads, max_bias=8.0, dtype=dtype)).astype(np.float64)
                    out["errors"][f"slopes/{{heads}}/{{dtype}}"] = float(np.max(np.abs(got / slopes(heads) - 1)))
                got = a.to_numpy(a.alibi_bias(6, 4, 9, max_bias=8.0, mode="causal", alignment="bottom_right",
                                              dtype=dtype)).astype(np.float64)
                want = alibi(6, 4, 9, "causal", "bottom_right")
                out["errors"][f"last_row/6/{{dtype}}"] = float(np.max(np.abs(got[:, -1] - want[:, -1])))
                out["errors"][f"row_offset/6/{{dtype}}"] = float(np.max(np.abs(
                    (got - want) - (got - want)[:, :, :1])))  # a per-row constant: 0 when subtracted
        print("RESULT" + json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-2000:]
    result = json.loads(line[0][len("RESULT"):])
    if not result["available"]:
        pytest.skip(result["reason"])
    assert result["backend"] == "jax" and len(result["errors"]) == 3 * 5
    # rounding of values ≤ 8 once into the dtype (slopes relative; biases absolute, |m·(j − S + 1)| < 8)
    bad = {k: v for k, v in result["errors"].items()
           if v > (4 if k.startswith("slopes") else 16) * EPS[k.rsplit("/", 1)[1]]}
    assert not bad
