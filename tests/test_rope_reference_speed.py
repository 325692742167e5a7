"""The RoPE reference's fast default path (docs/speed.md, target 3): its short angle reduction and
its blocking change no figure beyond the accuracy contract. No timing here (perf.*: figures are
ratios measured in one run by `attnconf bench --reference-targets`, never a timed unit test).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import oracle, rope
from attnconf.reference.encoding import reduced_angles

RULES = [(128, 10000.0, None), (64, 500000.0, None), (2, 10000.0, None),
         (128, 10000.0, ("linear", (("factor", 8.0),)))]


@pytest.mark.parametrize("r, base, rule", RULES, ids=["e128", "e64-base5e5", "e2", "linear8"])
def test_short_reduction_agrees_with_the_double_double_one_below_2_21(r, base, rule):
    w_hi, w_lo, _, _ = rope.frequencies_dd(r, base, rule, None)
    rng = np.random.default_rng(r)
    p = np.concatenate([np.arange(2048), rng.integers(0, rope.FAST_REDUCTION_BELOW, 4096),
                        [10 ** 6, rope.FAST_REDUCTION_BELOW - 1]]).astype(np.float64)
    fh, fl = rope._short_reduction(p, w_hi, w_lo)
    dh, dl = reduced_angles(p, w_hi, w_lo)
    diff = (fh - dh) + (fl - dl)
    diff = np.where(np.abs(diff) > np.pi, np.abs(diff) - 2 * np.pi, diff)   # k one apart: 2π
    assert np.abs(diff).max() < 2.0 ** -56


def test_positions_from_2_21_take_the_double_double_reduction_and_stay_within_4_ulp():
    pos = np.array([0, rope.FAST_REDUCTION_BELOW - 1, rope.FAST_REDUCTION_BELOW, 10 ** 9, 2 ** 40])
    x = np.random.default_rng(3).standard_normal((1, 2, len(pos), 8))
    expected = oracle.rotary_embedding(x, pos, as_dd=True)
    assert oracle.ulp_error(rope.rotary_embedding(x, pos), expected, rope.natural_scale(x, pos)) <= 4.0


@pytest.mark.parametrize("layout", rope.LAYOUTS)
@pytest.mark.parametrize("per_batch", [False, True], ids=["positions_T", "positions_BT"])
def test_blocks_of_any_size_give_the_same_bits(monkeypatch, layout, per_batch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 37, 10))
    pos = rng.integers(0, 10 ** 6, (2, 37) if per_batch else (37,))
    kw = dict(rotary_dim=6, layout=layout,
              scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})
    whole = rope.rotary_embedding(x, pos, **kw)
    monkeypatch.setattr(rope, "BLOCK_BYTES", 3 * 8 * 10)     # 3 rows a block: ragged edges
    monkeypatch.setattr(rope, "ANGLE_BLOCK", 7)
    assert np.array_equal(rope.rotary_embedding(x, pos, **kw), whole)
    assert np.array_equal(whole[..., 6:], x[..., 6:])
