"""engine.compute_outputs / judge on good and bad NumPy implementations of sdpa.

The implementations are small NumPy adapters written here (no framework needed); expected values
are the golden ones, produced by the reference with exact=True.
"""
import json

import numpy as np
import pytest

from attnconf.adapters.base import Adapter, Capabilities
from attnconf.conformance.judging import engine
from attnconf.conformance.results import files as results
from attnconf.conformance.execution import runner
from attnconf.dtypes import numpy_dtype
from attnconf.errors import Unsupported


class GoodNumpy(Adapter):
    """A plain, correct sdpa in the dtype under test (float32 compute for float16/bfloat16)."""

    name = "test-numpy"
    capabilities = Capabilities(operations=("sdpa",), dtypes=("float64", "float32", "float16", "bfloat16"))

    def from_numpy(self, array, dtype):
        return np.asarray(array).astype(numpy_dtype(dtype))

    def from_numpy_bool(self, mask):
        return np.asarray(mask, bool)

    def to_numpy(self, value):
        return np.asarray(value)

    def logits_scale(self, e):
        return 1.0 / np.sqrt(e)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
             scale=None, enable_gqa=False):
        dt = query.dtype
        work = np.float64 if dt == np.float64 else np.float32
        q, k, v = (x.astype(work) for x in (query, key, value))
        if k.shape[1] != q.shape[1]:
            rep = q.shape[1] // k.shape[1]
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = q @ np.swapaxes(k, -1, -2) * work(scale if scale is not None else self.logits_scale(q.shape[-1]))
        L, S = s.shape[-2:]
        allowed = np.ones(s.shape, bool)
        if attn_mask is not None and attn_mask.dtype == bool:
            allowed &= attn_mask
        elif attn_mask is not None:
            s = s + attn_mask.astype(work)
        if is_causal:
            shift = S - L if causal_alignment == "bottom_right" else 0
            allowed &= np.tril(np.ones((L, S), bool), k=shift)
        s = np.where(allowed, s, -np.inf)
        m = s.max(-1, keepdims=True)
        full = np.isneginf(m)
        p = np.exp(s - np.where(full, 0, m))
        p = np.where(full, 0, p / np.where(full, 1, p.sum(-1, keepdims=True)))
        return (p @ v).astype(dt)


class ScaleBug(GoodNumpy):
    def logits_scale(self, e):
        return (1 + 1e-5) / np.sqrt(e)


class Garbage(GoodNumpy):
    def __init__(self, what):
        super().__init__()
        self.what = what

    def sdpa(self, query, key, value, **kw):
        out = super().sdpa(query, key, value, **kw)
        if self.what == "none":
            return None
        if self.what == "string":
            return "not an array"
        if self.what == "shape":
            return out[..., :-1]
        if self.what == "dtype":
            return out.astype(np.float64 if out.dtype != np.float64 else np.float32)
        if self.what == "nan":
            out = out.copy()
            out.flat[3] = np.nan
            return out
        if self.what == "raise":
            raise ValueError("kernel exploded")
        if self.what == "unsupported":
            raise Unsupported("no masks here")
        raise AssertionError(self.what)


@pytest.fixture(scope="module")
def cases():
    # GoodNumpy takes none of the kernel options (sdpa.opt.*): those cases are its skips, not its tests
    from attnconf.operations.sdpa import used_options

    return [c for c in runner.load_cases("sdpa/") if c.operation == "sdpa" and not used_options(c.inputs, c.options)]


def _judge(adapter, case, dtype):
    ex = runner.InProcessExecutor()
    out = ex.run(adapter, case, dtype)
    if out.status != "ok":
        return engine.judge(case, dtype, None, status=out.status, error=out.message, adapter_name=adapter.name)
    return engine.judge(case, dtype, out.outputs, adapter_name=adapter.name)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_a_correct_implementation_passes_every_golden_sdpa_case(cases, dtype):
    bad = [(c.id, r["message"]) for c in cases if (r := _judge(GoodNumpy(), c, dtype))["status"] != "pass"]
    assert not bad


def test_records_carry_metrics_and_a_repro(cases):
    rec = _judge(GoodNumpy(), cases[0], "float32")
    m = rec["metrics"]
    for key in ("max_abs_error", "max_ulp_error", "baseline_ulp_error", "tolerance_ulps", "rule",
                "worst_index", "strict_pass"):
        assert key in m
    assert rec["repro"] == f"attnconf run --adapter test-numpy --select {cases[0].id} --dtype float32"
    assert rec["check"] == "agreement" and rec["clauses"] == list(cases[0].clauses)
    doc = results.new_document(command=["x"])
    doc["results"].append(rec)
    results.validate(json.loads(json.dumps(results._clean(doc))))


def test_a_1e_5_scale_error_fails_at_float64(cases):
    recs = [_judge(ScaleBug(), c, "float64") for c in cases if not c.options.get("scale")]
    failed = [r for r in recs if r["status"] == "fail"]
    # Cases whose outputs do not depend on the scale (one key, uniform rows) are legitimately passed.
    assert len(failed) >= 0.8 * len(recs)
    assert "exceed the tolerance" in failed[0]["message"]


@pytest.mark.parametrize("what,status,words", [
    ("none", "fail", "returned None"),
    ("string", "fail", "should be an array, but got str"),
    ("shape", "fail", "should have shape"),
    ("dtype", "fail", "should have dtype float32"),
    ("nan", "fail", "NaN/inf where the exact value is finite"),
    ("raise", "error", "ValueError: kernel exploded"),
    ("unsupported", "skip", "unsupported: no masks here"),
])
def test_garbage_is_judged_with_a_precise_message(cases, what, status, words):
    rec = _judge(Garbage(what), cases[1], "float32")
    assert rec["status"] == status
    assert words in rec["message"]


def test_shape_is_checked_before_dtype(cases):
    c = cases[1]
    wrong = np.zeros((1, 2, 3), np.float64)
    rec = engine.judge(c, "float32", {"output": wrong}, adapter_name="x")
    assert "shape" in rec["message"] and "dtype" not in rec["message"]


def test_crash_and_timeout_statuses_pass_through(cases):
    for status in ("crash", "timeout"):
        rec = engine.judge(cases[0], "float64", None, status=status, error="SIGSEGV", adapter_name="x")
        assert rec["status"] == status and "SIGSEGV" in rec["message"]


def test_strict_level_turns_a_default_pass_beyond_strict_into_a_fail(cases):
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for("sdpa", "float32")
    off = (rule.strict_ulps + rule.floor_ulps) / 2   # inside the default floor, outside strict
    c = cases[0]
    x = c.expected["output"]
    worse = (x + off * np.finfo(np.float32).eps * c.scale["output"]).astype(np.float32)
    rec_d = engine.judge(c, "float32", {"output": worse}, adapter_name="x")
    rec_s = engine.judge(c, "float32", {"output": worse}, adapter_name="x", level="strict")
    assert rec_d["status"] == "pass" and rec_d["metrics"]["strict_pass"] is False
    assert rec_s["status"] == "fail" and "strict" in rec_s["message"]


def test_baselines_are_cached(cases, monkeypatch):
    from attnconf import reference

    calls = []
    real = reference.compute
    monkeypatch.setattr(reference, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    engine._BASELINES.clear()
    c = cases[2]
    out = runner.InProcessExecutor().run(GoodNumpy(), c, "float32").outputs
    for _ in range(3):
        engine.judge(c, "float32", out, adapter_name="x")
    assert len(calls) == 1
