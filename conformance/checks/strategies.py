"""Hypothesis strategies and seeded input builders for the invariant checks (spec/invariants.md).

A strategy draws a small *example*: a dict of shape parameters and a data seed. Arrays are built
from the example by NumPy's seeded generator, rounded to the dtype under test so that casting at
the adapter's border is exact. Drawing integers rather than arrays keeps shrinking cheap and the
shrunk counterexample readable ("B=1 H=1 L=2 S=3 E=1 Ev=1 seed=0").

Must not import any framework and must not judge anything (invariants.py does).
Shape legend: B batch, H query heads, Hkv kv heads, L queries, S keys, E head dim, Ev value dim,
D model dim.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from attnconf.dtypes import numpy_dtype
from attnconf.reference.rounding import FORMATS, round_to_format

SEEDS = st.integers(0, 2 ** 16)


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """x rounded to `dtype` and returned as float64 (exactly representable in `dtype`).

    float16/bfloat16 go through the project's own rounding (tol.golden), not a dependency's cast:
    ml_dtypes < 0.7 rounds float64 -> bfloat16 twice, which would change the examples drawn."""
    if dtype in FORMATS:
        return round_to_format(np.asarray(x, dtype=np.float64), FORMATS[dtype])
    return np.asarray(x, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)


def sdpa_examples(*, gqa=False, ev_differs=False, min_b=1, min_h=1, min_l=1, min_s=1,
                  max_l=6, max_s=9) -> st.SearchStrategy:
    """Shapes for one sdpa call. gqa: Hkv < H (group size >= 2); ev_differs: Ev may differ."""
    groups = st.integers(2, 3) if gqa else st.just(1)
    return st.fixed_dictionaries({
        "B": st.integers(min_b, 2), "Hkv": st.integers(min_h, 2), "G": groups,
        "L": st.integers(min_l, max_l), "S": st.integers(min_s, max_s),
        "E": st.integers(1, 4), "Ev": st.integers(1, 4) if ev_differs else st.just(0),
        "seed": SEEDS,
    })


def sdpa_arrays(ex: dict, dtype: str, *, q_scale: float = 1.0):
    """(q, k, v) float64 arrays for example `ex`, exactly representable in `dtype`.

    Values get a random offset per column so that the convex hull of a value column does not
    always contain 0 (a weight sum below 1 then shows as an output outside the hull).
    """
    rng = np.random.default_rng(ex["seed"])
    b, hkv, g, l, s, e = ex["B"], ex["Hkv"], ex["G"], ex["L"], ex["S"], ex["E"]
    ev = ex["Ev"] or e
    q = rng.uniform(-1, 1, (b, hkv * g, l, e)) * q_scale
    k = rng.uniform(-1, 1, (b, hkv, s, e))
    v = rng.uniform(-1, 1, (b, hkv, s, ev)) + rng.uniform(-2, 2, (1, 1, 1, ev))
    return round_to(q, dtype), round_to(k, dtype), round_to(v, dtype)


def row_mask(rng, shape, p_keep=0.6) -> np.ndarray:
    """A bool mask (…, L, S) with at least one True per row, so no row is fully masked."""
    m = rng.random(shape) < p_keep
    first = rng.integers(0, shape[-1], shape[:-1])
    np.put_along_axis(m, first[..., None], True, axis=-1)
    return m


def mha_examples(*, cross=False, bias=True) -> st.SearchStrategy:
    """Shapes for one multi-head layer call; every size is >= 1 (the spec defines no empty axis).

    Self-attention examples carry S = L and Dkv = D explicitly (cross=False), so a shrunk
    counterexample never shows a size 0 the layer was not actually given.
    """
    @st.composite
    def draw(data):
        ex = {"B": data(st.integers(1, 2)), "L": data(st.integers(1, 5))}
        ex["S"] = data(st.integers(1, 6)) if cross else ex["L"]
        ex.update(H=data(st.integers(1, 3)), E=data(st.integers(1, 3)), Ev=data(st.integers(1, 3)),
                  D=data(st.integers(1, 6)))
        ex["Dkv"] = data(st.integers(1, 6)) if cross else ex["D"]
        ex.update(cross=cross, bias=data(st.booleans()) if bias else False, seed=data(SEEDS))
        return ex
    return draw()


def mha_arrays(ex: dict, dtype: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(query_input, key_value_input, canonical weights) for `ex`, rounded to `dtype`."""
    rng = np.random.default_rng(ex["seed"])
    b, l, h, e, ev, d = ex["B"], ex["L"], ex["H"], ex["E"], ex["Ev"], ex["D"]
    s, dkv = ex["S"], ex["Dkv"]
    if min(b, l, s, h, e, ev, d, dkv) < 1:
        raise ValueError(f"mha example sizes should all be >= 1, but got {describe(ex)}")
    if not ex["cross"] and (s, dkv) != (l, d):
        raise ValueError(f"a self-attention example should have S = L and Dkv = D, but got {describe(ex)}")
    x = rng.uniform(-1, 1, (b, l, d))
    kv = rng.uniform(-1, 1, (b, s, dkv)) if ex["cross"] else x
    w = {"wq": rng.uniform(-1, 1, (d, h * e)) / np.sqrt(d),
         "wk": rng.uniform(-1, 1, (dkv, h * e)) / np.sqrt(dkv),
         "wv": rng.uniform(-1, 1, (dkv, h * ev)) / np.sqrt(dkv),
         "wo": rng.uniform(-1, 1, (h * ev, d)) / np.sqrt(h * ev)}
    if ex["bias"]:
        w.update(bq=rng.uniform(-1, 1, h * e), bk=rng.uniform(-1, 1, h * e),
                 bv=rng.uniform(-1, 1, h * ev), bo=rng.uniform(-1, 1, d))
    return round_to(x, dtype), round_to(kv, dtype), {n: round_to(a, dtype) for n, a in w.items()}


# Offsets: small ones (where off-by-one shows and shifts can reach offset 0) and long ones (where
# float32 angle error grows, so tolerances that scale with p are exercised).
OFFSETS = st.one_of(st.integers(0, 8), st.integers(9, 4096), st.integers(4097, 200_000))


def encoding_examples(layouts, frequencies, *, offset=True, base=True) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "dim": st.integers(1, 24), "n": st.integers(2, 24),
        "offset": OFFSETS if offset else st.just(0),
        "base": st.sampled_from([10000.0, 100.0, 500000.0]) if base else st.just(10000.0),
        "layout": st.sampled_from(list(layouts)), "frequencies": st.sampled_from(list(frequencies)),
        "k": st.integers(1, 23), "m": st.integers(1, 23), "seed": SEEDS,
    })


def describe(ex: dict) -> str:
    """The example as `name=value` pairs (shrunk counterexamples print this)."""
    return " ".join(f"{k}={v}" for k, v in ex.items())


# Rotary embeddings: positions small (off-by-one and position 0 show), mid (beyond bfloat16's and
# float16's exact integers, 256 and 2048) and long (float32 angles err by ~p·2^-24 there).
ROPE_POSITIONS = st.one_of(st.integers(0, 8), st.integers(9, 4096), st.integers(4097, 200_000))
# The scaling rules an example may use, by name (the shrunk example prints the name); the
# invariant keeps those its property holds for and the adapter accepts (caps.rope_scaling).
ROPE_SCALINGS = {
    "none": None,
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 64},
    "yarn": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 256},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 128},
}


def rope_examples(layouts, scalings, *, partial=False) -> st.SearchStrategy:
    """One rotary_embedding call's shapes and options: E even (2 … 16); r = 0 means rotary_dim
    None (every channel), partial=True draws 2 <= r < E; `shift` is the k of the relative and
    composition properties; per_batch gives positions of shape (B, T)."""
    @st.composite
    def draw(data):
        e = 2 * data(st.integers(2 if partial else 1, 8))
        r = 2 * data(st.integers(1, e // 2 - 1)) if partial else 0
        scaling = data(st.sampled_from(list(scalings)))
        if scaling == "dynamic" and (r or e) <= 2:
            scaling = "none"             # dynamic needs r > 2 (its exponent is r/(r−2))
        return {"B": data(st.integers(1, 2)), "H": data(st.integers(1, 2)), "T": data(st.integers(1, 6)),
                "E": e, "r": r, "layout": data(st.sampled_from(list(layouts))),
                "base": data(st.sampled_from([10000.0, 100.0, 500000.0])), "scaling": scaling,
                "offset": data(ROPE_POSITIONS), "shift": data(st.integers(1, 4096)),
                "per_batch": data(st.booleans()), "seed": data(SEEDS)}
    return draw()


def _copy(scaling):
    return None if scaling is None else dict(scaling)     # an adapter may not share our dict


def rope_arrays(ex: dict, dtype: str):
    """(x (B, H, T, E) rounded to `dtype` as float64, positions int64 (T,) or (B, T), options)."""
    rng = np.random.default_rng(ex["seed"])
    b, t = ex["B"], ex["T"]
    x = round_to(rng.uniform(-1, 1, (b, ex["H"], t, ex["E"])), dtype)
    if ex["per_batch"]:
        pos = ex["offset"] + np.stack([rng.permutation(t) + int(rng.integers(0, 64)) for _ in range(b)])
    else:
        pos = ex["offset"] + np.arange(t)
    options = {"base": ex["base"], "rotary_dim": ex["r"] or None, "layout": ex["layout"],
               "scaling": _copy(ROPE_SCALINGS[ex["scaling"]])}
    return x, pos.astype(np.int64), options
