"""Invariants of T5's buckets and bias and of Shaw's index (inv.relpos.*). Named by the registry
entry attnconf/operations/relative_position_bucket.py (`invariants=`, for the three relative-
position operations); run by checks.invariants.

Every comparison is bit-exact: the outputs are integers or table rows (k = 0 rows of TABLE)."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.invariants import Context, DeterminismProbe, Invariant, Violation

# (num_buckets, max_distance) drawn: T5's defaults, small tables, an odd count, exact boundaries
_CONFIGS = ((32, 128), (8, 16), (33, 64), (48, 81), (96, 81), (10, 20))


def _ints(ctx, value, shape, what) -> np.ndarray:
    out = np.asarray(ctx.adapter.to_numpy(value))
    if out.shape != shape:
        raise Violation(f"{what} should have shape {shape}, but got {out.shape}")
    if out.dtype.kind not in "iu":
        raise Violation(f"{what} should be an integer array (relpos.dtype), but got dtype {out.dtype}")
    return out.astype(np.int64)


def _opts(ex) -> dict:
    return {"bidirectional": ex["bidirectional"], "num_buckets": ex["num_buckets"],
            "max_distance": ex["max_distance"]}


def call_bucket(ctx: Context, L, S, offset, ex) -> np.ndarray:
    out = ctx.adapter.relative_position_bucket(L, S, query_offset=offset, **_opts(ex))
    return _ints(ctx, out, (L, S), f"relative_position_bucket({L}, {S})")


def _what(ex) -> str:
    return (f"num_buckets={ex['num_buckets']}, max_distance={ex['max_distance']}, "
            f"bidirectional={ex['bidirectional']}, L={ex['L']}, S={ex['S']}, query_offset={ex['offset']}")


def _first_bad(bad, what):
    if bad.any():
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise Violation(f"{what}: {int(bad.sum())} of {bad.size} entries; first at {idx}")


def prop_monotone(ctx, ex):
    b = call_bucket(ctx, ex["L"], ex["S"], ex["offset"], ex)
    nb = ex["num_buckets"] // 2 if ex["bidirectional"] else ex["num_buckets"]
    rel = np.arange(ex["S"])[None, :] - (np.arange(ex["L"])[:, None] + ex["offset"])
    far = b - np.where(rel > 0, nb, 0) if ex["bidirectional"] else b
    n = np.abs(rel) if ex["bidirectional"] else np.maximum(-rel, 0)
    _first_bad((far < 0) | (far > nb - 1), f"buckets outside [0, nb − 1] (+ nb for keys after the query), nb = {nb} "
               f"({_what(ex)})")
    _first_bad((n < nb // 2) & (far != n), f"a distance below max_exact = {nb // 2} is not its own bucket ({_what(ex)})")
    order = np.argsort(n, axis=None, kind="stable")
    for side in ((rel > 0), (rel <= 0)):
        picked = order[side.ravel()[order]]
        d, v = n.ravel()[picked], far.ravel()[picked]
        drop = (np.diff(d) >= 0) & (np.diff(v) < 0)
        if drop.any():
            k = int(np.argmax(drop))
            raise Violation(f"buckets decrease as the distance grows ({_what(ex)}): distance {d[k]} -> bucket "
                            f"{v[k]}, distance {d[k + 1]} -> bucket {v[k + 1]}")


def prop_diagonal(ctx, ex):
    L, S, off = ex["L"], ex["S"], ex["offset"]
    b = call_bucket(ctx, L, S, off, ex)
    _first_bad(b[1:, 1:] != b[:-1, :-1], f"buckets not constant along diagonals ({_what(ex)})")
    if off:
        longer = call_bucket(ctx, L + off, S, 0, ex)
        _first_bad(b != longer[off:], f"buckets at query_offset={off} differ from rows {off}… of the "
                   f"prefill of L + {off} queries ({_what(ex)})")


def prop_lookup(ctx, ex):
    L, S, off = ex["L"], ex["S"], ex["offset"]
    rng = np.random.default_rng(ex["seed"])
    table = np.round(rng.uniform(-4, 4, (ex["num_buckets"], ex["H"])), 2)   # exact in every dtype below
    from attnconf.conformance.checks.strategies import round_to

    table = round_to(table, ctx.dtype)
    ad = ctx.adapter
    out = np.asarray(ad.to_numpy(ad.relative_position_bias(ad.from_numpy(table, ctx.dtype), L, S,
                                                           query_offset=off, **_opts(ex))))
    if out.shape != (ex["H"], L, S):
        raise Violation(f"relative_position_bias should have shape (H, L, S) = {(ex['H'], L, S)}, but got {out.shape}")
    b = call_bucket(ctx, L, S, off, ex)
    want = np.moveaxis(table[b], -1, 0)
    bad = out.astype(np.float64) != want
    if bad.any():
        h, i, j = (int(v) for v in np.argwhere(bad)[0])
        raise Violation(f"relative_position_bias[{h}, {i}, {j}] = {float(out[h, i, j])!r} is not table[bucket "
                        f"{b[i, j]}, {h}] = {want[h, i, j]!r} ({_what(ex)}; {int(bad.sum())} entries differ)")


def call_index(ctx, L, S, K, alignment) -> np.ndarray:
    out = ctx.adapter.relative_position_index(L, S, max_relative_position=K, alignment=alignment)
    return _ints(ctx, out, (L, S), f"relative_position_index({L}, {S}, K={K}, {alignment})")


def prop_index(ctx, ex):
    L, S, K = ex["L"], ex["S"], ex["K"]
    aligns = ctx.caps.relative_index_alignments
    got = {a: call_index(ctx, L, S, K, a) for a in aligns}
    what = f"L={L}, S={S}, K={K}"
    for a, idx in got.items():
        _first_bad((idx < 0) | (idx > 2 * K), f"indices outside [0, 2K] ({what}, {a})")
        _first_bad(idx[1:, 1:] != idx[:-1, :-1], f"indices not constant along diagonals ({what}, {a})")
    if L == S and len(got) == 2:
        _first_bad(got["top_left"] != got["bottom_right"], f"top_left and bottom_right differ although L = S ({what})")
    if L <= S and {"top_left", "bottom_right"} <= set(aligns):
        square = call_index(ctx, S, S, K, "top_left")[S - L:]
        _first_bad(got["bottom_right"] != square, f"bottom_right(L, S) differs from the last L rows of top_left(S, S) ({what})")


def _bucket_examples(lookup=False):
    def strategy(caps, dtype):
        from hypothesis import strategies as st

        return st.fixed_dictionaries({
            "config": st.sampled_from(_CONFIGS), "bidirectional": st.booleans(), "L": st.integers(1, 12),
            "S": st.integers(1, 200), "offset": st.integers(0, 150), "H": st.integers(1, 4) if lookup else st.just(1),
            "seed": st.integers(0, 2 ** 16)}).map(_flatten)
    return strategy


def _flatten(ex):
    ex = dict(ex)
    ex["num_buckets"], ex["max_distance"] = ex.pop("config")
    return ex


def _edges(caps):
    """The exact boundaries of 48 causal buckets at max_distance 81 (n = 36, 54; relpos.bucket.exact)."""
    return ({"num_buckets": 48, "max_distance": 81, "bidirectional": False, "L": 1, "S": 1, "offset": 60,
             "H": 1, "seed": 0},)


def _index_examples(caps, dtype):
    from hypothesis import strategies as st

    if not caps.relative_index_alignments:
        return st.nothing()
    return st.fixed_dictionaries({"L": st.integers(1, 10), "S": st.integers(1, 14), "K": st.integers(1, 6)})


def _needs_bucket(caps, dtype):
    return "" if "relative_position_bucket" in caps.operations else \
        "the lookup is checked against the implementation's own relative_position_bucket, which it lacks"


def _exact(inv, dtype):
    return {"tolerance_ulps": 0.0, "rule": "bit-exact: integers and table rows (TABLE k = 0)"}


def _determinism(ctx: Context, seed: int):
    ex = {"num_buckets": 32, "max_distance": 128, "bidirectional": True}
    return lambda: call_bucket(ctx, 16, 200, 3, ex)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.relpos.monotone", "relative_position_bucket", _bucket_examples(), prop_monotone,
              explicit=_edges, metrics=_exact),
    Invariant("inv.relpos.diagonal", "relative_position_bucket", _bucket_examples(), prop_diagonal,
              explicit=_edges, metrics=_exact),
    Invariant("inv.relpos.lookup", "relative_position_bias", _bucket_examples(lookup=True), prop_lookup,
              requires=_needs_bucket, explicit=_edges, metrics=_exact),
    Invariant("inv.relpos.index", "relative_position_index", _index_examples, prop_index, metrics=_exact),
)

DETERMINISM = DeterminismProbe("relative_position_bucket", _determinism, _exact)
