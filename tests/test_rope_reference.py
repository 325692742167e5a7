"""The RoPE reference (spec section `rope`) against the mpmath oracle, its gradient and its errors.

Must not test the registry entry or the goldens (test_golden_files, test_cases_catalogue do).
"""
from __future__ import annotations

import numpy as np
import pytest

from attnconf.reference import oracle, rope

SCALINGS = {
    "none": None,
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 64},
    "yarn": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 256},
    "yarn_untruncated": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256,
                         "truncate": False, "attention_factor": 1.25},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 1024},
}
POSITIONS = np.array([0, 1, 2047, 65_536, 999_999, 10 ** 6])


def _problem(seed, layout, E=16, r=12):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3, len(POSITIONS), E)), dict(rotary_dim=r, layout=layout)


@pytest.mark.parametrize("layout", rope.LAYOUTS)
@pytest.mark.parametrize("name", SCALINGS)
def test_default_and_exact_paths_within_their_bounds_up_to_1e6(name, layout):
    # spec/accuracy.md's contract: default <= 4 ulp, exact <= 1 ulp of natural scale.
    x, kw = _problem(len(name), layout)
    kw["scaling"] = SCALINGS[name]
    expected = oracle.rotary_embedding(x, POSITIONS, as_dd=True, **kw)
    ns = rope.natural_scale(x, POSITIONS, **kw)
    assert oracle.ulp_error(rope.rotary_embedding(x, POSITIONS, **kw), expected, ns) <= 4.0
    assert oracle.ulp_error(rope.rotary_embedding(x, POSITIONS, exact=True, **kw), expected, ns) <= 1.0


def test_a_naive_float64_angle_is_far_off_at_1e6():
    # Why the reference forms p·ω in double-double: the same formula with p*ω in float64.
    x, kw = _problem(7, "interleaved", E=8, r=8)
    pos = np.array([999_983, 999_999, 10 ** 6 + 777] * 2)   # round p·ω can round back to exact
    theta = pos[:, None] * 10000.0 ** (-np.arange(0, 8, 2) / 8)
    a, b = x[..., 0::2], x[..., 1::2]
    naive = np.empty_like(x)
    naive[..., 0::2], naive[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), b * np.cos(theta) + a * np.sin(theta)
    expected = oracle.rotary_embedding(x, pos, as_dd=True, **kw)
    assert oracle.ulp_error(naive, expected, rope.natural_scale(x, pos, **kw)) > 1e3


def test_per_batch_positions_rotate_each_row_by_its_own():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 3, 4))
    pos = np.array([[5, 6, 7], [100, 101, 102]])
    got = rope.rotary_embedding(x, pos, exact=True)
    for b in range(2):
        assert np.array_equal(got[b:b + 1], rope.rotary_embedding(x[b:b + 1], pos[b], exact=True))
    assert not np.allclose(got[0], rope.rotary_embedding(x[:1], pos[1], exact=True)[0])


def test_half_layout_is_the_interleaved_rotation_on_permuted_channels():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 5, 8))
    pos = np.arange(40, 45)
    perm = np.array([0, 4, 1, 5, 2, 6, 3, 7])       # half pair (i, i+4) -> interleaved (2i, 2i+1)
    half = rope.rotary_embedding(x, pos, layout="half", exact=True)
    inter = rope.rotary_embedding(x[..., perm], pos, exact=True)
    assert np.array_equal(half[..., perm], inter)


def test_partial_rotary_passes_the_other_channels_and_position_zero_is_identity():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1, 4, 10))
    y = rope.rotary_embedding(x, np.arange(4) + 9, rotary_dim=4)
    assert np.array_equal(y[..., 4:], x[..., 4:])
    assert not np.allclose(y[..., :4], x[..., :4])
    assert np.array_equal(rope.rotary_embedding(x, np.zeros(4, dtype=np.int64), rotary_dim=4), x)


@pytest.mark.parametrize("name", ["none", "yarn_untruncated"])
def test_vjp_is_the_adjoint(name):
    # <y(x), g> = <x, vjp(g)> for the linear map y = m·R(θ)x, at the exact path.
    rng = np.random.default_rng(6)
    x, g = rng.standard_normal((2, 2, 6, 12)), rng.standard_normal((2, 2, 6, 12))
    pos = np.arange(6) * 1000 + 3
    kw = dict(rotary_dim=8, scaling=SCALINGS[name], layout="half")
    lhs = np.sum(rope.rotary_embedding(x, pos, exact=True, **kw) * g)
    rhs = np.sum(x * rope.rotary_embedding_vjp(g, pos, exact=True, **kw))
    assert abs(lhs - rhs) <= 1e-12 * np.sum(np.abs(x) * np.abs(g))
    back = rope.rotary_embedding_vjp(rope.rotary_embedding(x, pos, exact=True, rotary_dim=8), pos,
                                     exact=True, rotary_dim=8)
    assert np.max(np.abs(back - x)) <= 4 * 2.0 ** -52 * np.max(np.abs(x))


def test_dynamic_rule_depends_on_the_longest_position_only_above_l0():
    sc = SCALINGS["dynamic"]
    x = np.random.default_rng(8).standard_normal((1, 1, 2, 8))
    short = rope.rotary_embedding(x, np.array([10, 11]), scaling=sc, exact=True)
    assert np.array_equal(short, rope.rotary_embedding(x, np.array([10, 11]), exact=True))
    longer = rope.rotary_embedding(x, np.array([10, 200]), scaling=sc, exact=True)
    assert not np.allclose(longer[..., 0, 2:], short[..., 0, 2:])   # token 10 changes with L


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_baseline_is_in_the_dtype_and_near_exact_at_small_positions(dtype):
    from attnconf.dtypes import EPS

    x = np.random.default_rng(9).standard_normal((1, 2, 8, 16)).astype(np.float32).astype(np.float64)
    if dtype != "float32":
        from attnconf.reference.rounding import to_dtype

        x = to_dtype(x, dtype).astype(np.float64)
    pos = np.arange(8)
    got = rope.rotary_embedding(x, pos, precision=dtype)
    assert str(got.dtype) == dtype
    err = np.abs(got.astype(np.float64) - rope.rotary_embedding(x, pos, exact=True))
    assert np.max(err / (rope.natural_scale(x, pos) * EPS[dtype])) <= 4.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(rotary_dim=3), "rotary_dim should be even with 2 <= r <= E = 8, but got 3"),
    (dict(rotary_dim=10), "rotary_dim should be even"),
    (dict(layout="rotate_half"), "layout should be one of"),
    (dict(base=1.0), "base should be a finite number > 1"),
    (dict(scaling={"rope_type": "ntk", "factor": 2.0}), "scaling rope_type should be one of"),
    (dict(scaling={"rope_type": "yarn", "factor": 2.0}), "should be a dict containing 'original_max_position_embeddings'"),
    (dict(scaling={"rope_type": "linear", "factor": 2.0, "beta_fast": 3}), "scaling keys of rope_type 'linear' should be among"),
    (dict(scaling={"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 64,
                   "low_freq_factor": 4, "high_freq_factor": 1}), "scaling high_freq_factor should be > low_freq_factor"),
    (dict(exact=True, precision="float32"), "precision should be None or 'float64' when exact=True"),
])
def test_bad_arguments_are_errors_that_teach(kwargs, message):
    x = np.zeros((1, 1, 3, 8))
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        rope.rotary_embedding(x, np.arange(3), **kwargs)


@pytest.mark.parametrize("positions, message", [
    (np.arange(3.0), "positions dtype should be an integer dtype, but got float64"),
    (np.arange(4), r"positions should be of shape \(T,\) = \(3,\) or \(B, T\) = \(1, 3\), but got shape \(4,\)"),
    (np.array([0, -1, 2]), r"positions should be integers in \[0, 2\^52\], but got range \[-1, 2\]"),
])
def test_bad_positions_are_errors_that_teach(positions, message):
    with pytest.raises((ValueError, TypeError), match=message):
        rope.rotary_embedding(np.zeros((1, 1, 3, 8)), positions)
