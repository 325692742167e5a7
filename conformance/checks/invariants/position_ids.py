"""Invariants of learned positions (inv.posids.*): ids shift by the past length, lookups are table
rows. Named by the registry entry attnconf/operations/position_ids.py (`invariants=`, for both
operations); run by checks.invariants. Every comparison is bit-exact (integers, table rows)."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.invariants import Context, DeterminismProbe, Invariant, Violation


def call_ids(ctx: Context, mask, scheme, past, pad) -> np.ndarray:
    ad = ctx.adapter
    out = np.asarray(ad.to_numpy(ad.position_ids(ad.index_from_numpy(mask), scheme=scheme, past_length=past,
                                                 padding_idx=pad)))
    want = (mask.shape[0], mask.shape[1] - past)
    if out.shape != want:
        raise Violation(f"position_ids should have shape (B, T) = {want}, but got {out.shape}")
    if out.dtype.kind not in "iu":
        raise Violation(f"position_ids should be an integer array (posids.dtype), but got dtype {out.dtype}")
    return out.astype(np.int64)


def _mask(ex) -> np.ndarray:
    rng = np.random.default_rng(ex["seed"])
    cur = (rng.random((ex["B"], ex["T"])) < 0.75).astype(np.int64)
    if ex["left"]:
        cur = np.sort(cur, axis=1)              # left padding: zeros first
    return np.concatenate([np.ones((ex["B"], ex["P"]), np.int64), cur], axis=1)


def prop_past_shift(ctx, ex):
    mask, P, scheme, pad = _mask(ex), ex["P"], ex["scheme"], ex["pad"]
    with_past = call_ids(ctx, mask, scheme, P, pad)
    fresh = call_ids(ctx, mask[:, P:], scheme, 0, pad)
    real = mask[:, P:] == 1
    want = fresh if scheme == "arange" else np.where(real, fresh + P, with_past)
    bad = with_past != want
    if bad.any():
        b, t = (int(v) for v in np.argwhere(bad)[0])
        raise Violation(f"position_ids(scheme={scheme!r}, past_length={P}) at ({b}, {t}) = {with_past[b, t]}, but "
                        f"the same tokens without the past give {fresh[b, t]}"
                        + ("" if scheme == "arange" else f" (+ {P} expected at real tokens)")
                        + f"; {int(bad.sum())} entries differ (mask {mask.tolist()})")


def prop_lookup(ctx, ex):
    rng = np.random.default_rng(ex["seed"])
    from attnconf.conformance.checks.strategies import round_to

    table = round_to(rng.uniform(-8, 8, (ex["N"], ex["D"])), ctx.dtype)
    ids = rng.integers(0, ex["N"], (ex["B"], ex["T"]))
    ad = ctx.adapter
    out = np.asarray(ad.to_numpy(ad.position_embedding(ad.from_numpy(table, ctx.dtype), ad.index_from_numpy(ids))))
    if out.shape != (ex["B"], ex["T"], ex["D"]):
        raise Violation(f"position_embedding should have shape (B, T, D) = {(ex['B'], ex['T'], ex['D'])}, but got {out.shape}")
    bad = out.astype(np.float64) != table[ids]
    if bad.any():
        b, t, d = (int(v) for v in np.argwhere(bad)[0])
        raise Violation(f"position_embedding[{b}, {t}] is not row {ids[b, t]} of the table (channel {d}: "
                        f"{float(out[b, t, d])!r} vs {table[ids[b, t], d]!r}; {int(bad.sum())} entries differ)")


def _shift_examples(caps, dtype):
    from hypothesis import strategies as st

    if not caps.position_id_schemes:
        return st.nothing()
    return st.fixed_dictionaries({"scheme": st.sampled_from(list(caps.position_id_schemes)), "B": st.integers(1, 3),
                                  "T": st.integers(1, 10), "P": st.integers(1, 12), "pad": st.integers(0, 2),
                                  "left": st.booleans(), "seed": st.integers(0, 2 ** 16)})


def _lookup_examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({"N": st.integers(1, 600), "D": st.integers(1, 8), "B": st.integers(1, 3),
                                  "T": st.integers(1, 12), "seed": st.integers(0, 2 ** 16)})


def _exact(inv, dtype):
    return {"tolerance_ulps": 0.0, "rule": "bit-exact: integers and table rows (TABLE k = 0)"}


def _determinism(ctx: Context, seed: int):
    ex = {"B": 2, "T": 16, "P": 4, "left": True, "seed": seed}
    scheme = (ctx.caps.position_id_schemes or ("past",))[0]
    return lambda: call_ids(ctx, _mask(ex), scheme, 4, 1)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.posids.past_shift", "position_ids", _shift_examples, prop_past_shift, metrics=_exact),
    Invariant("inv.posids.lookup", "position_embedding", _lookup_examples, prop_lookup, metrics=_exact),
)

DETERMINISM = DeterminismProbe("position_ids", _determinism, _exact)
