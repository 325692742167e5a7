"""The golden cases and calibration families of `merge_attention_states` (spec sdpa.merge.*).

For what: N partial states (outputs (N, B, H, L, Ev), lses (N, B, H, L)) that a merger must
combine: states of real key blocks (attention per block, the split-KV situation), random states,
empty states (LSE −∞, with garbage outputs that must not count), rows where every state is empty,
LSEs near ±800 (exp overflows or underflows in float64 without the max subtraction) and one
state alone. Inputs only, exact in every dtype (cases.representable); expected values come from
the reference (exact=True). Must not: hold expected numbers; import a framework.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import cases as _cases

FAMILY = {"blocks": "merge-blocks", "random": "merge-random", "empty": "merge-empty", "large": "merge-large"}


def _block_states(rng, N, B, H, L, S, E, Ev, cuts=None):
    """States of N consecutive key blocks of one random problem (float64 softmax per block, then
    rounded to golden values): the lse of an empty block is −∞ and its output 0."""
    q = rng.standard_normal((B, H, L, E)) * 1.5
    k = rng.standard_normal((B, H, S, E))
    v = rng.standard_normal((B, H, S, Ev))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(E)
    cuts = np.sort(rng.integers(0, S + 1, N - 1)) if cuts is None else np.asarray(cuts)
    bounds = np.concatenate([[0], cuts, [S]])
    outs, lses = [], []
    for a, z in zip(bounds[:-1], bounds[1:]):
        if z == a:
            outs.append(np.zeros((B, H, L, Ev)))
            lses.append(np.full((B, H, L), -np.inf))
            continue
        blk = s[..., a:z]
        m = blk.max(axis=-1, keepdims=True)
        e = np.exp(blk - m)
        outs.append((e / e.sum(-1, keepdims=True)) @ v[:, :, a:z])
        lses.append((m + np.log(e.sum(-1, keepdims=True)))[..., 0])
    return np.stack(outs), np.stack(lses)


def merge_case(case_id: str, clauses=(), *, family: str, N=2, B=1, H=2, L=3, Ev=4, S=None, E=4,
               source="blocks", cuts=None, lse_center=0.0, lse_spread=3.0, empty_states=0, empty_rows=0,
               description: str = "") -> _cases.Case:
    """A merge case. source "blocks": the states of N key blocks of one attention problem (S keys,
    default 3N; a block may be empty); "random": normal outputs, LSEs uniform in lse_center ±
    lse_spread; cuts: the block boundaries (None: random). empty_states: how many (n, b, h, i) states to make empty (LSE −∞, output left as
    garbage); empty_rows: how many (b, h, i) rows to make empty in every state."""
    seed = _cases._seed(case_id)
    rng = np.random.default_rng(seed)
    if source == "blocks":
        outs, lses = _block_states(rng, N, B, H, L, S or 3 * N, E, Ev, cuts)
        lses = lses + lse_center
    else:
        outs = rng.standard_normal((N, B, H, L, Ev))
        lses = lse_center + rng.uniform(-lse_spread, lse_spread, (N, B, H, L))
    cited = list(clauses)
    if empty_states:
        flat = lses.reshape(-1)
        flat[rng.choice(flat.size, size=empty_states, replace=False)] = -np.inf
    if empty_rows:
        rows = rng.choice(B * H * L, size=empty_rows, replace=False)
        lses.reshape(N, -1)[:, rows] = -np.inf
    if empty_states or empty_rows or np.isneginf(lses).any():
        cited.append("sdpa.merge.empty")
    inputs = {"outputs": _cases.representable(outs), "lses": _cases.representable(lses)}
    return _cases._make_case(case_id, "merge_attention_states", tuple(cited), inputs, {}, seed, family,
                             description)


def merge_cases() -> list:
    m, f = merge_case, FAMILY
    return [
        m("merge/blocks_n2", family=f["blocks"], N=2, B=2, H=2, L=4, Ev=8,
          description="the states of two key blocks: the merge is attention over all keys"),
        m("merge/blocks_n4_decode", family=f["blocks"], N=4, H=4, L=1, Ev=8, S=40,
          description="a decode step split four ways (flash-decoding)"),
        m("merge/blocks_n3_empty_block", family=f["blocks"], N=3, H=2, L=3, Ev=4, S=5, cuts=[2, 2],
          description="the middle block has no key: its state is (0, −∞) and counts for nothing"),
        m("merge/single_state", family=f["random"], N=1, H=2, L=3, Ev=5, source="random",
          description="one state: merging changes nothing"),
        m("merge/random_n5", family=f["random"], N=5, B=2, H=3, L=4, Ev=6, source="random", lse_spread=10.0),
        m("merge/empty_states_garbage", family=f["empty"], N=3, H=2, L=4, Ev=4, source="random", empty_states=6,
          description="empty states (LSE −∞) whose outputs hold garbage: weight 0"),
        m("merge/all_empty_rows", family=f["empty"], N=2, H=2, L=4, Ev=4, source="random", empty_rows=3,
          description="rows where every state is empty: output 0, LSE −∞, never NaN"),
        m("merge/lse_800", family=f["large"], N=3, H=2, L=3, Ev=4, source="random", lse_center=800.0,
          description="exp(lse) overflows float64: the maximum must be subtracted"),
        m("merge/lse_minus_800", family=f["large"], N=3, H=2, L=3, Ev=4, source="random", lse_center=-800.0,
          description="exp(lse) underflows to 0 in float64: 0/0 without the maximum"),
        m("merge/lse_100_blocks", family=f["large"], N=2, H=2, L=3, Ev=4, lse_center=100.0,
          description="exp(lse) overflows float32 (and float16) only"),
    ]


# --- random families (calibration) --------------------------------------------------------------
def _fam(i, kind):
    shape = [dict(N=2, B=1, H=2, L=3, Ev=4), dict(N=3, B=2, H=1, L=2, Ev=5), dict(N=4, B=1, H=2, L=1, Ev=8),
             dict(N=2, B=1, H=1, L=5, Ev=3)][i % 4]
    if kind == "blocks":
        return dict(shape, S=(2, 7, 12)[(i // 4) % 3])
    if kind == "random":
        return dict(shape, source="random", lse_spread=(1.0, 10.0, 40.0)[(i // 4) % 3])
    if kind == "empty":
        total = shape["N"] * shape["B"] * shape["H"] * shape["L"]
        return dict(shape, source="random", empty_states=1 + (i // 4) % min(3, total - 1),
                    empty_rows=(i // 2) % 2)
    return dict(shape, source=("random", "blocks")[(i // 4) % 2], lse_center=(-800.0, 100.0, 800.0)[i % 3])


def _family(name, kind):
    def build(rng, i, case_id):
        return merge_case(case_id, family=name, **_fam(i, kind))
    return build


MERGE_FAMILIES = {FAMILY[k]: _family(FAMILY[k], k) for k in FAMILY}
