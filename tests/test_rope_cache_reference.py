"""The rope_cache reference (spec rope.cache.*): exact for the given caches, equal to the base-built
rotary_embedding with the exact tables, invariant under permuting rows with ids, and errors that
teach."""
from __future__ import annotations

import numpy as np
import pytest

from attnconf import reference as R
from attnconf.conformance.judging import tolerance as T
from attnconf.reference.rope_cache import rope_cache
from attnconf.reference.rope_cache_cases import base_tables


def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape)


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize("rotary_dim", [None, 4])
def test_exact_tables_give_the_base_built_rotation(layout, rotary_dim):
    x = _x((2, 3, 5, 8))
    r = 8 if rotary_dim is None else rotary_dim
    pos = np.array([[0, 3, 17, 4095, 100], [1, 1, 2, 3, 5]])
    cos, sin = base_tables(4096, r)
    got = rope_cache(x, cos, sin, pos, rotary_dim=rotary_dim, layout=layout)
    want = R.rotary_embedding(x, pos, rotary_dim=rotary_dim, layout=layout, exact=True)
    # the float64 tables carry cos(p·ω) rounded once (and p·ω rounded): a few ulp at p = 4095
    assert np.max(np.abs(got - want)) <= 4096 * 2.0 ** -52 * 4


def test_exact_is_correctly_rounded_and_default_close():
    rng = np.random.default_rng(1)
    x, cos, sin = rng.standard_normal((1, 2, 4, 6)), rng.standard_normal((9, 3)), rng.standard_normal((9, 3))
    pos = rng.integers(0, 9, (1, 4))
    ex = rope_cache(x, cos, sin, pos, exact=True)
    import mpmath

    with mpmath.workdps(50):
        a, b = x[0, 1, 2, 0], x[0, 1, 2, 3]
        c, s = cos[pos[0, 2], 0], sin[pos[0, 2], 0]
        exact = float(mpmath.mpf(a) * mpmath.mpf(c) - mpmath.mpf(b) * mpmath.mpf(s))
    assert ex[0, 1, 2, 0] == exact
    scale = R.natural_scales("rope_cache", dict(x=x, cos_cache=cos, sin_cache=sin, position_ids=pos), {})["output"]
    err = T.ulp_errors(rope_cache(x, cos, sin, pos), ex, scale, "float64")
    assert err.max() <= 1.0


def test_permuting_rows_with_ids_changes_nothing():
    rng = np.random.default_rng(2)
    x, cos, sin = _x((2, 1, 4, 4)), rng.uniform(-1, 1, (7, 2)), rng.uniform(-1, 1, (7, 2))
    pos = rng.integers(0, 7, (2, 4))
    perm = rng.permutation(7)
    cos2, sin2 = np.empty_like(cos), np.empty_like(sin)
    cos2[perm], sin2[perm] = cos, sin
    for layout in ("half", "interleaved"):
        assert np.array_equal(rope_cache(x, cos, sin, pos, layout=layout),
                              rope_cache(x, cos2, sin2, perm[pos], layout=layout))


def test_pass_through_channels_and_pairing():
    x = _x((1, 1, 2, 6))
    cos, sin = np.zeros((2, 2)), np.ones((2, 2))         # a quarter turn: (u, w) -> (−w, u)
    out = rope_cache(x, cos, sin, np.array([[0, 1]]), rotary_dim=4, layout="half")
    assert np.array_equal(out[..., 4:], x[..., 4:])
    assert np.array_equal(out[..., 0], -x[..., 2]) and np.array_equal(out[..., 2], x[..., 0])
    out = rope_cache(x, cos, sin, np.array([[0, 1]]), rotary_dim=4, layout="interleaved")
    assert np.array_equal(out[..., 0], -x[..., 1]) and np.array_equal(out[..., 1], x[..., 0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(position_ids=np.array([[0, 5]])), "position_ids should be cache rows in [0, N) = [0, 4)"),
    (dict(position_ids=np.array([0, 1])), "position_ids should be of shape (B, T) = (1, 2)"),
    (dict(position_ids=np.array([[0.0, 1.0]])), "position_ids dtype should be an integer dtype"),
    (dict(rotary_dim=3), "rotary_dim should be even with 2 <= r <= E = 4"),
    (dict(cos_cache=np.ones((4, 1))), "cos_cache width should be r/2 = 2"),
    (dict(layout="neox"), "layout should be one of 'half', 'interleaved'"),
])
def test_errors_teach(kwargs, message):
    args = dict(x=np.ones((1, 1, 2, 4)), cos_cache=np.ones((4, 2)), sin_cache=np.ones((4, 2)),
                position_ids=np.array([[0, 1]]))
    args.update(kwargs)
    x, c, s, p = (args.pop(k) for k in ("x", "cos_cache", "sin_cache", "position_ids"))
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        rope_cache(x, c, s, p, **args)
