"""The position operations through the suite: agreement at int64 (bit-exact) and at the float
dtypes, the invariants, the profile aspects and the zoo, numpy-reference and the control passing,
and bare NumPy functions (tests/examples/example_positions.py) through `attnconf run`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnconf import operations
from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance import calibration, detection, known_bad
from attnconf.conformance.checks import invariants, profile
from attnconf.conformance.execution import runner
from attnconf.conformance.known_bad import positions as bugs

EXAMPLES = Path(__file__).parent / "examples"
MINE = ("alibi_slopes", "alibi_bias", "relative_position_bucket", "relative_position_bias",
        "relative_position_index", "position_ids", "position_embedding")
INTEGER = ("relative_position_bucket", "relative_position_index", "position_ids")


@pytest.fixture(scope="module")
def cases():
    return [c for c in runner.load_cases(None, None) if c.operation in MINE]


def test_integer_operations_run_once_at_int64_and_the_others_at_the_float_dtypes():
    run = ("float64", "float32", "float16", "bfloat16")
    for name in MINE:
        want = ("int64",) if name in INTEGER else run
        assert operations.get(name).case_dtypes(run) == want
    assert operations.get("alibi_bias").case_dtypes(("int64",)) == ()


@pytest.mark.parametrize("adapter", [NumpyReferenceAdapter(), known_bad.control()()], ids=lambda a: a.name)
def test_correct_implementations_pass_every_case(cases, adapter):
    bad = []
    for case in cases:
        for dtype in operations.get(case.operation).case_dtypes(("float64", "float32", "float16", "bfloat16")):
            rec = calibration.judge_one(adapter, case, dtype)
            if rec["status"] != "pass":
                bad.append((case.id, dtype, rec["message"][:200]))
            elif case.operation in INTEGER:
                assert rec["dtype"] == "int64" and rec["metrics"]["tolerance_ulps"] == 0
    assert not bad


class _Int32Buckets(NumpyReferenceAdapter):
    name = "int32-buckets"

    def relative_position_bucket(self, *args, **kwargs):
        return super().relative_position_bucket(*args, **kwargs).astype(np.int32)


class _FloatBuckets(NumpyReferenceAdapter):
    name = "float-buckets"

    def relative_position_bucket(self, *args, **kwargs):
        return super().relative_position_bucket(*args, **kwargs).astype(np.float64)


class _OneOff(NumpyReferenceAdapter):
    name = "one-off"

    def relative_position_bucket(self, *args, **kwargs):
        out = super().relative_position_bucket(*args, **kwargs).copy()
        out[0, -1] += 1
        return out


def test_an_integer_output_is_judged_bit_exactly_in_any_integer_dtype(cases):
    case = next(c for c in cases if c.operation == "relative_position_bucket")
    assert calibration.judge_one(_Int32Buckets(), case, "int64")["status"] == "pass"
    rec = calibration.judge_one(_FloatBuckets(), case, "int64")
    assert rec["status"] == "fail" and "output should be an integer array (relpos.dtype), but got dtype float64" in rec["message"]
    rec = calibration.judge_one(_OneOff(), case, "int64")
    assert rec["status"] == "fail" and rec["metrics"]["mismatches"] == 1 and rec["metrics"]["max_abs_error"] == 1.0
    assert rec["repro"].endswith("--dtype int64")
    # the message names the wrong element (a bit-exact row's 0/0 once pointed at a right one)
    L = case.expected["output"].shape[0]
    want = case.expected["output"][0, -1]
    assert f"worst at (0, {case.expected['output'].shape[1] - 1}): got {want + 1:.17g}, expected {want:.17g}" in rec["message"], (L, rec["message"])


def test_output_dtype_is_no_verdict_when_the_probe_call_is_not_offered():
    from attnconf.adapters.base import Capabilities
    from attnconf.conformance.checks import profile

    class IdsOnly(NumpyReferenceAdapter):      # position_ids only: the probe's position_embedding is not offered
        name = "ids-only"
        capabilities = Capabilities(operations=("position_ids",), dtypes=("float64", "float32"))

        def position_embedding(self, *args, **kwargs):
            from attnconf.errors import Unsupported
            raise Unsupported("ids-only does not implement position_embedding")

    found = profile.detect(IdsOnly())["output_dtype"]
    rec = next(r for r in profile.profile_records(IdsOnly(), {"output_dtype": found}))
    assert rec["status"] == "skip" and rec["message"].startswith("unsupported: "), rec


def test_invariants_pass_on_the_reference_and_the_control():
    for adapter in (NumpyReferenceAdapter(), known_bad.control()()):
        for dtype in ("float64", "bfloat16"):   # the float operations' 4 at each float dtype, the integer ones' 4 at int64
            recs = [r for r in invariants.check(adapter, dtype) + invariants.check(adapter, "int64")
                    if r["operation"] in MINE and r["case"] != "invariant/inv.determinism"]
            assert len(recs) == 8 and all(r["status"] == "pass" for r in recs), [(r["case"], r["message"]) for r in recs]


@pytest.mark.parametrize("bug, clause", [
    (bugs.AlibiNaiveSlopes, "inv.alibi.geometric"), (bugs.AlibiBiasSignFlipped, "inv.alibi.diagonal"),
    (bugs.BucketNoHalving, "inv.relpos.monotone"), (bugs.ShawAlignmentSwapped, "inv.relpos.index"),
    (bugs.PastLengthIgnored, "inv.posids.past_shift"), (bugs.LookupWraps, None),
])
def test_invariants_catch_their_bugs(bug, clause):
    recs = {r["case"]: r for d in ("float64", "int64") for r in invariants.check(bug(), d) if r["operation"] in MINE}
    failed = sorted(c for c, r in recs.items() if r["status"] == "fail")
    assert failed == ([] if clause is None else [f"invariant/{clause}"])


def test_profile_names_the_alternatives():
    ref = profile.detect(NumpyReferenceAdapter())
    assert ref["alibi_slopes"]["value"] == "paper" and ref["alibi_causal_form"]["value"] == "causal"
    assert ref["alibi_alignment"]["value"] == {"top_left": "top_left", "bottom_right": "bottom_right"}
    assert ref["relative_position_bucket_boundaries"]["value"] == "exact"
    assert ref["position_embedding_out_of_range"]["value"] == "raises"
    seen = {cls: profile.detect(cls()) for cls in (bugs.BucketFloat32Log, bugs.AlibiSymmetricForCausal,
                                                 bugs.AlibiAlignmentSwapped, bugs.LookupWraps, bugs.ShawAlignmentSwapped)}
    assert seen[bugs.BucketFloat32Log]["relative_position_bucket_boundaries"]["value"] == "float32_log"
    assert seen[bugs.AlibiSymmetricForCausal]["alibi_causal_form"]["value"] == "symmetric"
    assert seen[bugs.AlibiAlignmentSwapped]["alibi_alignment"]["value"] == {"top_left": "bottom_right",
                                                                           "bottom_right": "top_left"}
    assert seen[bugs.LookupWraps]["position_embedding_out_of_range"]["value"] == "wraps"
    assert seen[bugs.ShawAlignmentSwapped]["relative_position_index_alignment"]["value"]["bottom_right"] == "top_left"


class _RowConstant(NumpyReferenceAdapter):
    """BLOOM's form asked for as causal: m·j on every row."""
    name = "row-constant"

    def alibi_bias(self, num_heads, query_length, key_length, *, mode="causal", **kw):
        return super().alibi_bias(num_heads, query_length, key_length, mode="row_constant", **kw)


def test_a_row_constant_bias_is_named_so():
    found = profile.detect(_RowConstant())["alibi_causal_form"]
    assert found["value"] == "row_constant", found


def test_the_zoo_has_its_position_bugs_and_each_is_caught(cases):
    mine = [c for c in known_bad.all_known_bad() if c.__module__.endswith(".positions")]
    assert len(mine) >= 8
    needed = ("naive slopes", "sign flip", "symmetric for causal", "bucket from log2", "off-by-one max_exact",
              "halving missed", "RoBERTa positions without the padding offset", "past length ignored")
    for text in needed:
        assert any(text in c.bug_class for c in mine), text
    randoms = [calibration.random_case(f, 0) for f, (op, _) in calibration.families().items() if op.name in MINE]
    for cls in mine:
        assert detection.detect_one(cls(), golden=cases, random_cases=randoms, first_only=True), cls.name


def _run(*args, tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "attnconf", "run", *args, "--framework", "numpy", "--json", str(out),
                           "--no-checks"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())["results"]


def test_a_bare_alibi_function_without_mode_runs_its_causal_cases(tmp_path):
    recs = _run("--alibi-bias", "example_positions:alibi_bias", "--select", "alibi/*", tmp_path=tmp_path)
    passed = {r["case"] for r in recs if r["status"] == "pass"}
    skipped = {r["case"]: r["message"] for r in recs if r["status"] == "skip"}
    assert "alibi/causal_br_h8_l3_s10" in passed and "alibi/decode_h16_s2048" in passed
    assert "does not accept the keyword 'mode'" in skipped["alibi/symmetric_h12_l16"]
    assert "does not accept the keyword 'alignment'" in skipped["alibi/causal_tl_h8_l3_s10"]
    assert {r["status"] for r in recs} <= {"pass", "skip"}


def test_a_bare_position_id_function_runs_at_int64_and_declines_the_rest(tmp_path):
    recs = _run("--position-ids", "example_positions:position_ids", "--select", "posids/*", tmp_path=tmp_path)
    assert {r["dtype"] for r in recs} == {"int64"}
    by = {r["case"]: r for r in recs}
    assert by["posids/roberta_left_pad"]["status"] == "pass" and by["posids/past_decode_p100"]["status"] == "pass"
    assert by["posids/opt_left_pad"]["status"] == "skip" and "declined" in by["posids/opt_left_pad"]["message"]


def test_verify_outputs_judges_integer_outputs_at_int64():
    from attnconf import reference
    from attnconf.conformance.execution import verify_outputs

    cases = runner.load_cases("posids/*", None)
    arrays = {f"{c.id}/output": np.asarray(reference.compute(c.operation, c.inputs, c.options)["output"]).astype(np.int32)
              for c in cases}
    recs, unknown = verify_outputs.verify(cases, arrays)
    assert not unknown and {(r["dtype"], r["status"]) for r in recs if r["operation"] == "position_ids"} == {("int64", "pass")}


def test_determinism_of_an_integer_valued_operation_runs_at_its_int64():
    """An implementation of only T5's buckets (hf-t5-bias's shape): its determinism probe runs at
    the operation's own int64 (before, the record of the skipped float check looked up sdpa's
    tolerance row at int64 and the whole invariant run of the adapter ended in one error)."""
    import dataclasses

    from attnconf.conformance import known_bad
    from attnconf.conformance.checks import invariants as inv

    class BucketsOnly(known_bad.control()):
        name = "test/buckets-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities,
                                           operations=("relative_position_bucket",))

    rec = inv.check_determinism(BucketsOnly(), "int64")
    assert rec["status"] == "pass" and rec["operation"] == "relative_position_bucket", rec
    recs = inv.check(BucketsOnly(), "int64", max_examples=1)
    assert {r["operation"] for r in recs} == {"relative_position_bucket"}
    assert all(r["status"] in ("pass", "skip") for r in recs), [(r["case"], r["message"]) for r in recs]
