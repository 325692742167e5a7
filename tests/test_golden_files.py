"""Meta-tests of the shipped golden vectors: manifest ↔ catalogue, size, loading, and `verify`.

Must not recompute goldens in place (generate runs into tmp dirs only).
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import time

import numpy as np
import pytest

from attnconf import spec
from attnconf.reference import golden
from attnconf.reference.cases import catalogue

GOLDEN = golden.resolve_dir()


@pytest.fixture(scope="module")
def manifest():
    return golden.read_manifest()


def test_manifest_describes_the_catalogue(manifest):
    cat = catalogue()
    from attnconf import operations

    # one archive per operation, in registry order
    assert [r["id"] for r in manifest["cases"]] == [c.id for op in operations.names()
                                                    for c in cat if c.operation == op]
    by_id = {c.id: c for c in cat}
    for r in manifest["cases"]:
        c = by_id[r["id"]]
        assert r["clauses"] == list(c.clauses) and r["seed"] == c.seed and r["family"] == c.family
        assert r["options"] == json.loads(json.dumps(c.options))
        assert {n: v["shape"] for n, v in r["inputs"].items()} == {n: list(a.shape) for n, a in c.inputs.items()}
        assert set(r["outputs"]) == set(operations.get(c.operation).outputs)   # the entry's outputs
    assert manifest["spec_version"] == spec.spec_version()
    assert manifest["generator_version"] == golden.GENERATOR_VERSION and manifest["exact"] is True


def test_total_size_at_most_20_mb(manifest):
    on_disk = sum((GOLDEN / name).stat().st_size for name in manifest["files"])
    on_disk += (GOLDEN / golden.MANIFEST).stat().st_size
    assert on_disk <= 20 * 1024 * 1024, f"golden files take {on_disk} bytes"


def test_load_cases_select_glob_substring_and_list():
    causal = golden.load_cases("sdpa/*causal*")
    assert causal and all(c.id.startswith("sdpa/") and "causal" in c.id for c in causal)
    assert {c.id for c in golden.load_cases("gqa_h4")} == {c.id for c in catalogue() if "gqa_h4" in c.id}
    two = golden.load_cases("enc/base_500,mha/self_causal")
    assert [c.id for c in two] == ["mha/self_causal", "enc/base_500"]
    assert golden.load_cases("no-such-case") == []


def test_loaded_case_has_inputs_expected_and_scale():
    (case,) = golden.load_cases("sdpa/fully_masked_bool_rows")
    assert case.inputs["attn_mask"].dtype == bool
    out, scale = case.expected["output"], case.scale["output"]
    assert out.dtype == np.float64 and out.shape == case.inputs["query"].shape[:3] + case.inputs["value"].shape[-1:]
    assert scale.shape == out.shape and np.all(scale >= 0)
    masked = ~np.broadcast_to(case.inputs["attn_mask"], out.shape[:3] + (case.inputs["key"].shape[2],)).any(-1)
    assert masked.any() and np.all(out[masked] == 0.0), "fully-masked rows are 0 (sdpa.fully_masked)"
    (vjp,) = golden.load_cases("sdpa_vjp/gqa_h4_hkv2")
    assert vjp.expected["dk"].shape == vjp.inputs["key"].shape and vjp.expected["dq"].shape == vjp.inputs["query"].shape


def test_verify_passes_on_the_shipped_goldens():
    started = time.perf_counter()
    report = golden.verify()
    elapsed = time.perf_counter() - started
    assert report["ok"], report["mismatches"][:5]
    assert report["cases"] == len(catalogue()) and report["max_ulp"] <= 1.0
    assert elapsed < 60, f"verify took {elapsed:.1f} s"


def test_generate_into_a_tmp_dir_round_trips(tmp_path):
    subset = [c for c in catalogue() if c.id in ("sdpa/gqa_h4_hkv2", "enc/vaswani_d3", "mha/self_bias_d16_h2",
                                                 "sdpa_vjp/basic_l5_s7")]
    written = golden.generate(tmp_path, cases=subset)
    assert sorted(written["files"]) == ["encoding.npz", "mha.npz", "sdpa.npz", "sdpa_vjp.npz"]
    assert golden.verify(tmp_path)["ok"]
    again = golden.generate(tmp_path / "again", cases=[c for c in catalogue() if c.id in {s.id for s in subset}])
    # fixed zip timestamps: the same outputs give the same bytes, so sha256 only changes with the values
    assert {n: f["sha256"] for n, f in again["files"].items()} == {n: f["sha256"] for n, f in written["files"].items()}
    shipped = {c.id: c for c in golden.load_cases("sdpa/gqa_h4_hkv2")}
    fresh = {c.id: c for c in golden.load_cases("sdpa/gqa_h4_hkv2", golden_dir=tmp_path)}
    ulp, _ = golden.ulp_error(fresh["sdpa/gqa_h4_hkv2"].expected["output"],
                              shipped["sdpa/gqa_h4_hkv2"].expected["output"], shipped["sdpa/gqa_h4_hkv2"].scale["output"])
    assert ulp <= 1.0


def test_ulp_error_rules():
    e, s = np.array([1.0, 0.0, 2.0]), np.array([1.0, 0.0, 4.0])
    assert golden.ulp_error(e.copy(), e, s) == (0.0, [0])
    ulp, where = golden.ulp_error(e + np.array([0, 0, 8 * 2.0 ** -52]), e, s)
    assert ulp == pytest.approx(2.0) and where == [2]
    assert golden.ulp_error(e + np.array([0, 1e-300, 0]), e, s)[0] == np.inf, "zero scale allows no difference"
    assert golden.ulp_error(np.array([np.nan]), np.array([1.0]), np.array([1.0]))[0] == np.inf
    assert golden.ulp_error(np.zeros(2), np.zeros(3), np.ones(3))[0] == np.inf


def test_every_stored_input_is_a_fixed_point_of_the_rounding_rule(manifest):
    # tol.golden: inputs hold values the rule gives, whatever ml_dtypes is installed.
    from attnconf.reference.rounding import round_to_bfloat16, round_to_float16

    from attnconf import operations

    for case in golden.load_cases():
        for name, x in case.inputs.items():
            if x.dtype == np.bool_:
                continue
            if name in operations.get(case.operation).index_inputs:   # integer positions: no rounding
                assert np.issubdtype(x.dtype, np.integer), (case.id, name)
                continue
            for rule in (round_to_bfloat16, round_to_float16):
                back = rule(x)
                same = np.array_equal(back.view(np.uint64), x.view(np.uint64))
                assert same, (f"{case.id} input {name} should be exact under {rule.__name__}, but "
                              f"{int((back != x).sum())} values change")
    assert "nearest-even" in manifest["input_values"] and manifest["generator_note"].startswith(
        golden.GENERATOR_VERSION + ":"), "the manifest should state the input rule and why this generator version"


def _with_double_rounded_input(directory):
    """The sdpa/long_s512 key as generator 1.0 could store it: one value rounded through float32."""
    import ml_dtypes  # only to build the old value; the suite itself never rounds this way

    from attnconf.reference.rounding import round_to_bfloat16

    manifest_path = directory / golden.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    record = next(r for r in manifest["cases"] if r["id"] == "sdpa/long_s512")
    key = f"{record['key']}.input.key"
    path = directory / record["file"]
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    stored = arrays[key].copy()
    # A draw just below the midpoint above a stored value v with an odd last bit: rounded once it
    # is v; through float32 it becomes the midpoint, whose tie goes to the even neighbour.
    fraction, exponent = np.frexp(stored)
    ulp = np.ldexp(1.0, exponent - 8)
    odd = (stored > 2.0 ** -14) & ((np.round(fraction * 2 ** 8).astype(np.int64) % 2) == 1)
    i = int(np.flatnonzero(odd.ravel())[0])
    draw = stored.flat[i] + ulp.flat[i] / 2 - ulp.flat[i] * 2.0 ** -20
    via32 = float(np.float32(draw).astype(ml_dtypes.bfloat16))
    assert round_to_bfloat16(np.array([draw]))[0] == stored.flat[i] != via32, "the draw should round differently"
    stored.flat[i] = via32
    arrays[key] = stored
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    manifest["files"][record["file"]]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["generator_version"] = "1.0"
    manifest_path.write_text(json.dumps(manifest))


def test_a_double_rounded_input_is_read_but_fails_verify(tmp_path):
    # Old (1.0) golden files stay readable; verify says which input no longer regenerates.
    shutil.copytree(GOLDEN, tmp_path / "g", ignore=shutil.ignore_patterns("*.tmp", "__pycache__"))
    _with_double_rounded_input(tmp_path / "g")
    only = "sdpa/long_s51[2]"  # a glob: the substring would match sdpa_vjp's too
    (case,) = golden.load_cases(only, golden_dir=tmp_path / "g")
    assert case.inputs["key"].shape == (1, 1, 512, 16)
    report = golden.verify(tmp_path / "g", select=only)
    what = [(m["case"], m["what"], m["message"]) for m in report["mismatches"]]
    assert what == [("sdpa/long_s512", "inputs", "catalogue inputs/options differ: ['key']")], (
        f"verify should report the double-rounded key, but got {what}")
