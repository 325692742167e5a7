"""verify_outputs: reading OUTPUTS (npz or folder, never unpickling) and judging it per case with
the engine's judge. Cases here are built with the reference (exact=True) like the golden files;
the end-to-end workflow through `attnconf golden export` is in test_verify_outputs_workflow.py.
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from attnconf import reference
from attnconf.conformance.execution import verify_outputs as vo
from attnconf.errors import UsageError
from attnconf.reference.cases import Case

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo.sdpa import good  # noqa: E402


def _bf16(x):
    return x.astype(ml_dtypes.bfloat16).astype(np.float64)   # representable in every dtype


def make_case(case_id="sdpa/verify_basic", causal=False, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {"query": _bf16(rng.standard_normal((1, 2, 3, 4))), "key": _bf16(rng.standard_normal((1, 2, 5, 4))),
              "value": _bf16(rng.standard_normal((1, 2, 5, 4)))}
    options = {"is_causal": causal}
    return Case(id=case_id, operation="sdpa", clauses=("sdpa.output",), inputs=inputs, options=options,
                expected=reference.compute("sdpa", inputs, options, exact=True),
                scale=reference.natural_scales("sdpa", inputs, options), seed=seed, family="sdpa-basic")


CASES = [make_case(), make_case("sdpa/verify_causal", causal=True, seed=1)]


def outputs_of(case, dtype=np.float32, fn=good):
    i = case.inputs
    return fn(i["query"].astype(dtype), i["key"].astype(dtype), i["value"].astype(dtype), **case.options)


def by_case(records):
    return {r["case"]: r for r in records}


def test_correct_outputs_pass_at_their_own_dtype_and_missing_cases_skip():
    arrays = {f"{CASES[0].id}/output": outputs_of(CASES[0], np.float32)}
    records, unknown = vo.verify(CASES, arrays, name="c-impl")
    got = by_case(records)
    assert unknown == []
    assert got[CASES[0].id]["status"] == "pass" and got[CASES[0].id]["dtype"] == "float32"
    assert got[CASES[0].id]["adapter"] == "c-impl"
    assert "attnconf verify-outputs" in got[CASES[0].id]["repro"]
    assert got[CASES[1].id]["status"] == "skip" and "no outputs" in got[CASES[1].id]["message"]


def test_wrong_values_fail_with_the_tolerance_rule():
    out = outputs_of(CASES[0], np.float64) * (1 + 1e-5)       # a 1e-5 relative scale error
    (rec, _), _ = vo.verify(CASES, {f"{CASES[0].id}/output": out})
    assert rec["status"] == "fail"
    assert rec["metrics"]["max_ulp_error"] > rec["metrics"]["tolerance_ulps"]


@pytest.mark.parametrize("array, words", [
    (np.zeros((1, 2, 3, 1), np.float32), "shape"),
    (np.zeros((1, 2, 3, 4), np.int32), "one dtype"),
])
def test_garbage_outputs_fail_with_a_precise_message(array, words):
    (rec, _), _ = vo.verify(CASES, {f"{CASES[0].id}/output": array})
    assert rec["status"] == "fail" and words in rec["message"]


def test_nan_where_golden_is_finite_fails():
    out = outputs_of(CASES[0], np.float32)
    out[0, 0, 0, 0] = np.nan
    (rec, _), _ = vo.verify(CASES, {f"{CASES[0].id}/output": out})
    assert rec["status"] == "fail"


def test_declared_dtype_is_checked_against_the_arrays():
    (rec, _), _ = vo.verify(CASES, {f"{CASES[0].id}/output": outputs_of(CASES[0], np.float32)}, dtype="float64")
    assert rec["status"] == "fail" and "dtype float64" in rec["message"]


def test_bfloat16_stored_as_uint16_bits_is_read_as_bfloat16():
    out = outputs_of(CASES[0], ml_dtypes.bfloat16)
    (rec, _), _ = vo.verify(CASES, {f"{CASES[0].id}/output": out.view(np.uint16)}, dtype="bfloat16")
    assert rec["status"] == "pass", rec["message"]


def test_unknown_keys_are_returned():
    _, unknown = vo.verify(CASES, {"sdpa/nonexistent/output": np.zeros(1)})
    assert unknown == ["sdpa/nonexistent/output"]


def test_read_outputs_from_npz_and_from_a_folder_agree(tmp_path):
    arrays = {f"{c.id}/output": outputs_of(c) for c in CASES}
    np.savez(tmp_path / "out.npz", **arrays)
    for key, arr in arrays.items():
        (tmp_path / "folder" / key).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "folder" / f"{key}.npy", arr)
    a, b = vo.read_outputs(tmp_path / "out.npz"), vo.read_outputs(tmp_path / "folder")
    assert sorted(a) == sorted(b) == sorted(arrays)
    for key in arrays:
        np.testing.assert_array_equal(a[key], b[key])


def test_pickled_object_arrays_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"sdpa/verify_basic/output": np.array([object()], dtype=object)})
    with pytest.raises(UsageError, match="evil.npz.*should be numeric"):
        vo.read_outputs(path)


def test_truncated_npz_names_the_file(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, **{f"{CASES[0].id}/output": outputs_of(CASES[0])})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UsageError, match="cut.npz"):
        vo.read_outputs(path)


def test_single_npy_instead_of_npz_is_a_usage_error(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(UsageError, match="single array"):
        vo.read_outputs(path)


def test_npz_members_are_plain_npy_files(tmp_path):
    """What a C or Rust writer must produce: a zip whose members are '<case id>/<name>.npy'."""
    path = tmp_path / "out.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open(f"{CASES[0].id}/output.npy", "w") as f:
            np.lib.format.write_array(f, outputs_of(CASES[0]), allow_pickle=False)
    (rec, _), _ = vo.verify(CASES, vo.read_outputs(path))
    assert rec["status"] == "pass"
