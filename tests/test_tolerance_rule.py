"""The tolerance rule (conformance/judging/tolerance.py, compare.py): units, baselines, floors, levels.

Expected values come from the reference (exact=True) or from arithmetic on the inputs, never
from numbers typed in; every test here can fail if the rule changes meaning.
"""
import numpy as np
import pytest

from attnconf import reference
from attnconf.conformance.judging import compare
from attnconf.conformance.judging import tolerance
from attnconf.dtypes import DTYPE_NAMES, EPS, numpy_dtype


def test_table_has_every_operation_and_dtype_with_a_reason():
    from attnconf import operations

    for op in operations.operations():
        for dt in op.dtypes or DTYPE_NAMES:
            rule = tolerance.rule_for(op.name, dt)
            if rule.k == 0:     # bit-exact rows (integer results, exact lookups): nothing else allowed
                assert rule.floor_ulps == 0 and rule.strict_ulps == 0, (op.name, dt)
            else:
                assert rule.k >= 1 and rule.floor_ulps > 0 and rule.strict_ulps > 0, (op.name, dt)
            assert rule.baseline in ("case", "position")
            assert len(rule.why) > 40
    with pytest.raises(KeyError, match="should be"):
        tolerance.rule_for("sdpa", "int8")


def test_errors_are_in_ulps_of_natural_scale():
    x = np.array([1.0, -2.0, 0.5])
    scale = np.array([1.0, 4.0, 0.5])
    a = x + np.array([3, 2, 1]) * scale * EPS["float32"]
    np.testing.assert_allclose(tolerance.ulp_errors(a, x, scale, "float32"), [3, 2, 1], rtol=1e-9)


def test_nonfinite_outputs_are_infinitely_wrong_unless_the_exact_value_is_the_same():
    x = np.array([1.0, 1.0, np.nan, np.inf, np.inf])
    a = np.array([np.nan, np.inf, np.nan, np.inf, -np.inf])
    err = tolerance.ulp_errors(a, x, np.ones(5), "float64")
    assert list(np.isinf(err)) == [True, True, False, False, True]


def test_zero_scale_keeps_exact_zero_and_flags_nonzero():
    err = tolerance.ulp_errors(np.array([0.0, 0.1]), np.zeros(2), np.zeros(2), "float16")
    assert err[0] == 0 and err[1] > 1e6


def test_floor_applies_when_the_baseline_happens_to_be_exact():
    # FlashAttention's 2x-baseline has no floor: an exact baseline would fail a 1-ulp-off kernel.
    rule = tolerance.rule_for("sdpa", "float32")
    x = np.linspace(-1, 1, 10)
    off_by_one = x + EPS["float32"]
    c = compare.compare(off_by_one, x, np.ones(10), "float32", operation="sdpa", baseline=x)
    assert c.baseline_ulp_error == 0 and c.tolerance_ulps == rule.floor_ulps and c.passed


def test_tolerance_scales_with_the_baseline_error():
    rule = tolerance.rule_for("sdpa", "float64")
    x = np.zeros(4)
    base = x + 100 * EPS["float64"]
    ok = x + (rule.k * 100 - 1) * EPS["float64"]
    bad = x + (rule.k * 100 + 1) * EPS["float64"]
    assert compare.compare(ok, x, np.ones(4), "float64", operation="sdpa", baseline=base).passed
    c = compare.compare(bad, x, np.ones(4), "float64", operation="sdpa", baseline=base)
    assert not c.passed and "TABLE[sdpa, float64]" in c.message and "4 of 4" in c.message


def test_position_envelope_tightens_early_rows_but_follows_the_worst_baseline():
    rule = tolerance.rule_for("sinusoidal_encoding", "float32")
    b = np.zeros((100, 4))
    b[-1, 0] = 50.0                                        # the baseline's worst row is the last
    env = tolerance.baseline_envelope(rule, b, "sinusoidal_encoding", np.arange(100.0))
    assert env.shape == (100, 1)
    assert env[-1, 0] == 50.0 and env[0, 0] == pytest.approx(50.0 / 100)
    assert np.all(np.diff(env[:, 0]) >= 0)
    case = tolerance.baseline_envelope(tolerance.rule_for("sdpa", "float32"), b, "sdpa")
    assert case.shape == () and case == 50.0


def test_strict_grade_is_separate_from_the_default_level():
    x = np.linspace(-1, 1, 8)
    base = x + 300 * EPS["float32"]
    a = x + 200 * EPS["float32"]
    c = compare.compare(a, x, np.ones(8), "float32", operation="sdpa", baseline=base)
    assert c.passed and not c.strict_pass


def _pytorch_tutorial_table(n, d, offset):
    """The PyTorch tutorial's float32 table: exp(-log(10000)/d * 2i), angles in float32."""
    pos = np.arange(offset, offset + n, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d, 2, dtype=np.float32) * np.float32(-np.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)
    return pe


@pytest.mark.parametrize("n,d,offset", [(2048, 64, 0), (64, 8, 1_000_000), (256, 16, 10_000)])
def test_float32_angle_tables_pass_default_and_are_graded_strict(n, d, offset):
    opts = dict(num_positions=n, dim=d, base=10000.0, offset=offset, layout="interleaved", frequencies="vaswani")
    exact = reference.compute("sinusoidal_encoding", {}, opts, exact=True)["output"]
    base = reference.compute("sinusoidal_encoding", {}, opts, precision="float32")["output"]
    table = _pytorch_tutorial_table(n, d, offset)
    c = compare.compare(table, exact, np.ones_like(exact), "float32", operation="sinusoidal_encoding",
                        baseline=base, positions=offset + np.arange(n, dtype=float))
    assert c.passed, c.message
    assert not c.strict_pass  # long positions: far from the exact value, and reported as such


def test_a_constant_phase_error_is_caught_at_small_positions():
    # Per-case max baselines hide it behind the large-position rows; the position envelope does not.
    n, d = 2048, 64
    opts = dict(num_positions=n, dim=d, base=10000.0, offset=0, layout="interleaved", frequencies="vaswani")
    exact = reference.compute("sinusoidal_encoding", {}, opts, exact=True)["output"]
    base = reference.compute("sinusoidal_encoding", {}, opts, precision="float32")["output"]
    i = np.arange(d // 2)
    ang = np.arange(n)[:, None] * 10000.0 ** (-2 * i / d) + 3e-5
    bad = np.zeros((n, d))
    bad[:, 0::2], bad[:, 1::2] = np.sin(ang), np.cos(ang)
    c = compare.compare(bad.astype(np.float32), exact, np.ones_like(exact), "float32",
                        operation="sinusoidal_encoding", baseline=base, positions=np.arange(n, dtype=float))
    assert not c.passed and c.worst_index[0] < n // 4


def _sdpa_case(seed, L=7, S=9, E=8):
    rng = np.random.default_rng(seed)
    inputs = {n: rng.standard_normal(s) for n, s in
              (("query", (1, 2, L, E)), ("key", (1, 2, S, E)), ("value", (1, 2, S, E)))}
    return inputs, {}


@pytest.mark.parametrize("seed", range(5))
def test_a_scale_error_of_1e_5_fails_at_float64(seed):
    inputs, opts = _sdpa_case(seed)
    exact = reference.compute("sdpa", inputs, opts, exact=True)["output"]
    scale = reference.natural_scales("sdpa", inputs, opts)["output"]
    base = reference.compute("sdpa", inputs, opts)["output"]
    wrong = reference.compute("sdpa", inputs, {"scale": (1 + 1e-5) / np.sqrt(8)})["output"]
    assert compare.compare(base, exact, scale, "float64", operation="sdpa", baseline=base).passed
    c = compare.compare(wrong, exact, scale, "float64", operation="sdpa", baseline=base)
    assert not c.passed and c.max_ulp_error > 100 * c.tolerance_ulps


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_the_same_precision_baseline_passes_its_own_rule(dtype):
    inputs, opts = _sdpa_case(7)
    exact = reference.compute("sdpa", inputs, opts, exact=True)["output"]
    scale = reference.natural_scales("sdpa", inputs, opts)["output"]
    base = reference.compute("sdpa", inputs, opts, precision=dtype)["output"]
    assert base.dtype == numpy_dtype(dtype)
    assert compare.compare(base, exact, scale, dtype, operation="sdpa", baseline=base).passed


def test_assert_conforms_explains_and_hides_its_frame():
    x = np.arange(6.0).reshape(2, 3)
    a = x.copy()
    a[1, 2] = np.nan
    with pytest.raises(AssertionError) as info:
        compare.assert_conforms(a, x, np.ones_like(x), "float64", operation="sdpa", baseline=x,
                                repro="attnconf run --adapter a --select 'sdpa/x' --dtype float64")
    text = str(info.value)
    assert "(1, 2)" in text and "NaN" in text and "nan" in text and "rerun: attnconf run" in text
    assert "floor" in text and "TABLE[sdpa, float64]" in text
    assert compare.assert_conforms.__code__.co_varnames.index("__tracebackhide__") >= 0
    with pytest.raises(AssertionError, match="shape"):
        compare.assert_conforms(x[0], x, np.ones_like(x), "float64", operation="sdpa")


def _prescaled_sdpa(q, k, v, scale):
    """PyTorch MATH's order: q and k each multiplied by sqrt(scale) before the product."""
    r = np.sqrt(scale)
    s = (q * r) @ np.swapaxes(k * r, -1, -2)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("seed", range(6))
def test_argument_term_admits_prescaled_logits_but_not_a_scale_error(seed):
    from attnconf.conformance.judging import engine
    from attnconf.reference.cases import Case, representable

    rng = np.random.default_rng(seed)
    inputs = {"query": representable(rng.standard_normal((1, 2, 6, 16)) * 6),
              "key": representable(rng.standard_normal((1, 2, 9, 16)) * 6),
              "value": representable(rng.standard_normal((1, 2, 9, 16)))}
    case = Case(f"sdpa/arg{seed}", "sdpa", ("sdpa.logits",), inputs, {})
    case.expected = reference.compute("sdpa", inputs, {}, exact=True)
    case.scale = reference.natural_scales("sdpa", inputs, {})
    scale = 1 / np.sqrt(16)
    good = _prescaled_sdpa(inputs["query"], inputs["key"], inputs["value"], scale)
    bad = _prescaled_sdpa(inputs["query"], inputs["key"], inputs["value"], scale * (1 + 1e-5))
    ok = engine.judge(case, "float64", {"output": good}, adapter_name="t")
    assert ok["status"] == "pass", ok["message"]
    assert "max |logit|" in ok["metrics"]["rule"]
    assert engine.judge(case, "float64", {"output": bad}, adapter_name="t")["status"] == "fail"
