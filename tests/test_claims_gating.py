"""Claims are honoured everywhere (issue 22): a plug-in that declares a restricting claim
(attnconf.adapters.declare: dtypes, mask_kinds, mask_and_causal, causal_alignment, fully_masked,
layout and frequencies, rope_layout and rope_scaling, gradients) is never called with a case
outside it —
not by the golden cases, the invariants or the profile of `attnconf run`, nor by calibration's
random cases — and what it does not implement gets coverage entries, no per-case records.
The plug-ins (tests/examples/claims_plugins.py) record every call and compute correctly under
their own claim, so a case outside the claim would also show as a failing record. The other
fields of declare() restrict nothing: name and description label the row, and deterministic is a
claim the determinism check judges (tests/test_invariants_checks.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from attnconf.adapters import registry
from attnconf.conformance import calibration, plan
from attnconf.conformance.execution import runner

EXAMPLES = Path(__file__).parent / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _adapter(flag, target):
    (spec,) = registry.resolve(**{flag: f"claims_plugins:{target}"}, framework="numpy")
    return spec, registry.instantiate(spec)


def _calls(name):
    import claims_plugins

    return [args for fn, args in claims_plugins.CALLS if fn == name]


def _run(tmp_path, spec, dtypes=("float64",), select=None):
    import claims_plugins

    claims_plugins.CALLS.clear()
    config = runner.RunConfig(specs=[spec], dtypes=dtypes, select=select, json_path=tmp_path / "r.json",
                              invariant_examples=1, expectations=False)
    return runner.run(config).doc


def _calibrate(adapter, families, dtypes=("float64",)):
    import claims_plugins

    claims_plugins.CALLS.clear()
    return calibration.false_failures([adapter], seeds=2, families=families, dtypes=dtypes)


def _no_failures(doc):
    bad = [(r["case"], r["dtype"], r["status"], r["message"][:120]) for r in doc["results"]
           if r["status"] in ("fail", "error", "crash", "timeout") and r["check"] == "agreement"]
    assert not bad, bad


def test_declared_dtypes_gate_cases_invariants_profile_and_calibration(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_float64_only")
    doc = _run(tmp_path, spec, dtypes=("float64", "float32"))
    calls = _calls("sdpa_float64_only")
    assert calls and {c["dtype"] for c in calls} == {"float64"}
    assert not [r for r in doc["results"] if r["dtype"] == "float32" and r["check"] != "agreement"]
    _calibrate(adapter, ["sdpa-mask"], dtypes=("float64", "float32"))
    assert {c["dtype"] for c in _calls("sdpa_float64_only")} == {"float64"}


def test_declared_mask_kinds_gate_float_masks_everywhere(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_bool_masks")
    doc = _run(tmp_path, spec)
    calls = _calls("sdpa_bool_masks")
    assert {c["mask"] for c in calls} == {None, "bool"}, "float masks reached a bool-only plug-in"
    _no_failures(doc)
    float_cases = [r for r in doc["results"] if r["check"] == "agreement" and "mask_kinds" in r["message"]]
    assert float_cases and all(r["status"] == "skip" for r in float_cases)
    _calibrate(adapter, ["sdpa-mask"])
    assert {c["mask"] for c in _calls("sdpa_bool_masks")} <= {None, "bool"}


def test_declared_mask_and_causal_false_never_gets_both(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_mask_or_causal")
    doc = _run(tmp_path, spec)
    calls = _calls("sdpa_mask_or_causal")
    assert calls and not [c for c in calls if c["mask"] and c["is_causal"]]
    assert any(c["mask"] for c in calls) and any(c["is_causal"] for c in calls)
    _no_failures(doc)


def test_declared_causal_alignment_gets_only_cases_it_agrees_with(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_bottom_right")
    doc = _run(tmp_path, spec)
    calls = _calls("sdpa_bottom_right")
    assert any(c["is_causal"] and c["L"] != c["S"] for c in calls), "its bottom-right cases should run"
    _no_failures(doc)     # a top-left case at L != S would fail: it computes bottom-right


def test_declared_fully_masked_policy_gets_no_zero_policy_golden_case(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_uniform_rows")
    doc = _run(tmp_path, spec, select="sdpa/fully_masked*")
    recs = [r for r in doc["results"] if r["check"] == "agreement"]
    assert recs and all(r["status"] == "skip" and "fully_masked='uniform'" in r["message"] for r in recs)
    assert not _calls("sdpa_uniform_rows"), "a fully-masked golden case reached a plug-in claiming 'uniform'"
    _calibrate(adapter, ["sdpa-fully-masked"])
    assert not _calls("sdpa_uniform_rows")


def test_declared_encoding_layout_and_frequencies(tmp_path):
    spec, adapter = _adapter("encoding", "encoding_concat_t2t")
    doc = _run(tmp_path, spec, dtypes=("float32",))
    assert _calls("encoding_concat_t2t")
    _no_failures(doc)    # an interleaved or vaswani case would fail: it computes concat t2t
    ran = [r for r in doc["results"] if r["check"] == "agreement" and r["status"] == "pass"]
    assert ran and all(r["options"].get("layout") == "concat" and r["options"].get("frequencies") == "t2t"
                       for r in ran)


def test_declared_rope_scaling_and_layout(tmp_path):
    spec, adapter = _adapter("rope", "rope_linear_only")
    doc = _run(tmp_path, spec)
    assert {c["rope_type"] for c in _calls("rope_linear_only")} == {None, "linear"}
    _no_failures(doc)    # a half-layout case would fail: it rotates interleaved pairs
    _calibrate(adapter, [f for f in calibration.family_names() if f.startswith("rope")])
    assert {c["rope_type"] for c in _calls("rope_linear_only")} <= {None, "linear"}


def test_gradients_not_claimed_is_coverage_not_records(tmp_path):
    spec, adapter = _adapter("sdpa", "sdpa_bool_masks")   # NumPy: no autodiff, so no sdpa_vjp
    doc = _run(tmp_path, spec, select="sdpa_vjp/*")
    assert not [r for r in doc["results"] if r["operation"] == "sdpa_vjp"]
    entry = next(e for e in doc["coverage"] if e["operation"] == "sdpa_vjp")
    assert entry == {"adapter": adapter.name, "operation": "sdpa_vjp", "implemented": False,
                     "reason": f"{adapter.name} declares no gradients"}
    implemented = {e["operation"] for e in doc["coverage"] if e["implemented"]}
    assert implemented == {"sdpa"}


def test_the_pytest_plugin_items_are_the_planners():
    _, adapter = _adapter("sdpa", "sdpa_bool_masks")
    from attnconf.reference.golden import load_cases

    cases = load_cases("sdpa/*mask*")
    items = list(plan.agreement(adapter, cases, ("float64",)))
    floats = [i for i in items if "attn_mask" in i.case.inputs and str(i.case.inputs["attn_mask"].dtype) != "bool"]
    assert floats and all("mask_kinds" in i.skip for i in floats)
    assert not [i for i in items if "mask_kinds" in i.skip and i not in floats]
