"""Meta-tests of the case catalogue (reference/cases.py): coverage of the spec, the minimums of
issue 2, determinism and golden-representable inputs.

Must not compute expected values (tests/test_golden_* check those through the golden files).
"""
from __future__ import annotations

import collections
import json

import ml_dtypes
import numpy as np
import pytest

from attnconf import spec
from attnconf.reference.cases import catalogue, representable

CASES = catalogue()
BY_OP = collections.defaultdict(list)
for _c in CASES:
    BY_OP[_c.operation].append(_c)


def _sizes(c):
    q, k, v = c.inputs["query"], c.inputs["key"], c.inputs["value"]
    B, H, L, E = q.shape
    _, Hkv, S, Ev = v.shape
    return dict(B=B, H=H, Hkv=Hkv, L=L, S=S, E=E, Ev=Ev)


def _logit_range(c):
    q, k = c.inputs["query"], c.inputs["key"]
    scale = c.options["scale"] or 1.0 / np.sqrt(q.shape[-1])
    logits = np.einsum("bhle,bhse->bhls", q, np.repeat(k, q.shape[1] // k.shape[1], axis=1)) * scale
    return logits.min(), logits.max()


def _fully_masked_rows(c):
    m = c.inputs.get("attn_mask")
    if m is None:
        return 0
    return int((~m).all(-1).sum()) if m.dtype == bool else int(np.isneginf(m).all(-1).sum())


def test_minimum_counts():
    assert len(BY_OP["sdpa"]) >= 60
    assert len(BY_OP["sinusoidal_encoding"]) >= 20
    assert len(BY_OP["multi_head_attention"]) >= 10
    assert len(BY_OP["sdpa_vjp"]) >= 5


def test_every_definition_clause_is_cited_or_has_a_reason():
    cited = {cid for c in CASES for cid in c.clauses}
    uncovered = [c["id"] for c in spec.clauses() if c["kind"] == "definition"
                 and c["id"] not in cited and not c["untested_reason"]]
    assert not uncovered, f"definition clauses with neither a case nor an untested_reason: {uncovered}"


def test_every_definition_clause_is_cited_for_each_of_its_operations():
    pairs = {(cid, c.operation) for c in CASES for cid in c.clauses}
    gaps = [(c["id"], op) for c in spec.clauses() if c["kind"] == "definition" and c["testable"]
            for op in c["operations"] if (c["id"], op) not in pairs]
    assert not gaps, f"(clause, operation) pairs without a case: {gaps}"


def test_clauses_marked_untestable_are_not_cited():
    untestable = {c["id"] for c in spec.clauses() if not c["testable"]}
    bad = [(c.id, sorted(set(c.clauses) & untestable)) for c in CASES if set(c.clauses) & untestable]
    assert not bad, f"cases cite clauses marked untestable: {bad}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_cites_clauses_of_its_operation(case):
    for cid in case.clauses:
        assert case.operation in spec.clause(cid)["operations"], f"{cid} does not apply to {case.operation}"
    from attnconf import operations

    assert case.id.split("/")[0] == operations.get(case.operation).case_prefix   # the entry's prefix
    json.dumps(case.options)  # options must be JSON-serialisable for manifests and repro commands
    assert case.family and case.seed >= 0
    assert not case.expected and not case.scale, "the catalogue holds inputs only"


def test_sdpa_minimums():
    s = {c.id: _sizes(c) for c in BY_OP["sdpa"]}
    assert any(z["L"] < z["S"] for z in s.values()) and any(z["L"] > z["S"] for z in s.values())
    assert any(z["E"] % 2 and z["L"] % 2 and z["S"] % 2 for z in s.values()), "odd sizes"
    assert any(z["Ev"] != z["E"] for z in s.values())
    assert any(z["B"] > 1 for z in s.values())
    assert any(z["S"] >= 512 for z in s.values())
    groups = {z["H"] // z["Hkv"] for z in s.values() if z["Hkv"] < z["H"] and z["Hkv"] > 1}
    assert {2, 4} <= groups, f"GQA group sizes present: {groups}"
    assert any(z["Hkv"] == 1 < z["H"] for z in s.values()), "MQA"
    opts = [c.options for c in BY_OP["sdpa"]]
    assert any(o["scale"] is not None for o in opts)
    for align in ("top_left", "bottom_right"):
        assert any(o["is_causal"] and o["causal_alignment"] == align and s[c.id]["L"] != s[c.id]["S"]
                   for c, o in zip(BY_OP["sdpa"], opts)), f"causal {align} with L != S"
        assert any(o["is_causal"] and o["causal_alignment"] == align and "attn_mask" in c.inputs
                   for c, o in zip(BY_OP["sdpa"], opts)), f"mask + causal {align}"


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_with_broadcast_shapes(kind):
    shapes = {c.inputs["attn_mask"].shape for c in BY_OP["sdpa"] if "attn_mask" in c.inputs
              and (c.inputs["attn_mask"].dtype == bool) == (kind == "bool")}
    assert any(len(s) == 4 and 1 not in s for s in shapes), "a full (B, H, L, S) mask"
    assert any(len(s) < 4 for s in shapes), "a mask of lower rank"
    assert any(len(s) == 4 and 1 in s for s in shapes), "a rank-4 mask with broadcast dimensions"


def test_fully_masked_rows_present():
    assert any(_fully_masked_rows(c) for c in BY_OP["sdpa"] if c.inputs.get("attn_mask") is not None
               and c.inputs["attn_mask"].dtype == bool)
    assert any(_fully_masked_rows(c) for c in BY_OP["sdpa"] if c.inputs.get("attn_mask") is not None
               and c.inputs["attn_mask"].dtype != bool)
    for c in CASES:
        if _fully_masked_rows(c):
            assert "sdpa.fully_masked" in c.clauses, c.id


def test_large_logits_present():
    ranges = [_logit_range(c) for c in BY_OP["sdpa"] if "sdpa.range" in c.clauses]
    assert any(hi > 0.8e3 and hi < 2e3 for lo, hi in ranges) and any(hi > 0.8e4 for lo, hi in ranges)
    assert any(lo < -0.8e4 and hi < -0.8e4 for lo, hi in ranges), "a case with every logit near -1e4"
    assert any(lo < -0.8e3 and hi < 0 and lo > -2e3 for lo, hi in ranges), "a case with every logit near -1e3"


def test_encoding_minimums():
    opts = [c.options for c in BY_OP["sinusoidal_encoding"]]
    dims = {o["dim"] for o in opts}
    assert {1, 2, 3} <= dims and any(d % 2 == 0 and d > 3 for d in dims) and any(d % 2 and d > 3 for d in dims)
    assert max(o["offset"] + o["num_positions"] for o in opts) > 10 ** 6
    assert max(o["num_positions"] for o in opts) >= 8192
    assert any(o["base"] != 10000.0 for o in opts)
    combos = {(o["frequencies"], o["layout"]) for o in opts}
    assert combos == {(f, l) for f in ("vaswani", "t2t") for l in ("interleaved", "concat", "cos_first")}


def test_rope_minimums():
    # issue 12: >= 30 cases over both layouts, partial rotary, decode offsets, (B, T) positions,
    # positions up to 1e6, every scaling rule below and above L0, odd heads, E = 2.
    cases = BY_OP["rotary_embedding"]
    assert len(cases) >= 30
    assert {c.options["layout"] for c in cases} == {"interleaved", "half"}
    assert any(c.options["rotary_dim"] and c.options["rotary_dim"] < c.inputs["x"].shape[-1] for c in cases)
    assert any(c.inputs["positions"].ndim == 2 for c in cases)
    assert any(c.inputs["positions"].min() > 0 and c.inputs["x"].shape[2] <= 4 for c in cases), "a decode step"
    assert max(int(c.inputs["positions"].max()) for c in cases) >= 10 ** 6
    assert any(c.inputs["x"].shape[1] % 2 for c in cases) and any(c.inputs["x"].shape[-1] == 2 for c in cases)
    for kind in ("linear", "dynamic", "yarn", "llama3"):
        ones = [c for c in cases if (c.options["scaling"] or {}).get("rope_type") == kind]
        l0 = [c.options["scaling"].get("original_max_position_embeddings", 0) for c in ones]
        top = [int(c.inputs["positions"].max()) + 1 for c in ones]
        assert any(t <= l for t, l in zip(top, l0)) or kind == "linear", f"{kind} below L0"
        assert any(t > l for t, l in zip(top, l0)), f"{kind} above L0"


def test_mha_minimums():
    cases = BY_OP["multi_head_attention"]
    cross = [c.inputs["key_value_input"] is not c.inputs["query_input"] for c in cases]
    assert any(cross) and not all(cross)
    has_bias = ["bq" in c.inputs for c in cases]
    assert any(has_bias) and not all(has_bias)
    assert any(c.options["num_kv_heads"] < c.options["num_heads"] for c in cases)


def test_vjp_cases_carry_grad_output_of_output_shape():
    for c in BY_OP["sdpa_vjp"]:
        z = _sizes(c)
        assert c.inputs["grad_output"].shape == (z["B"], z["H"], z["L"], z["Ev"])


def test_catalogue_is_deterministic():
    again = {c.id: c for c in catalogue()}
    for c in CASES:
        other = again[c.id]
        assert other.seed == c.seed and other.options == c.options and other.clauses == c.clauses
        for name, arr in c.inputs.items():
            np.testing.assert_array_equal(other.inputs[name], arr)


def test_inputs_exactly_representable_in_float16_and_bfloat16():
    from attnconf import operations

    for c in CASES:
        for name, arr in c.inputs.items():
            if arr.dtype == bool:
                continue
            if name in operations.get(c.operation).index_inputs:   # integer inputs: never cast
                # int64 positions and lengths; int32 cu_seqlens, the dtype packed kernels take
                assert arr.dtype == (np.int32 if name.startswith("cu_seqlens") else np.int64), (c.id, name)
                continue
            assert arr.dtype == np.float64, (c.id, name)
            finite = arr[np.isfinite(arr)]
            for dt in (np.float16, ml_dtypes.bfloat16):
                back = finite.astype(dt).astype(np.float64)
                assert np.array_equal(back, finite), f"{c.id}:{name} not exact in {np.dtype(dt)}"


def test_representable_flushes_tiny_and_rejects_huge():
    r = representable(np.array([1e-6, -7e-5, 1.0 + 2 ** -9, 65504.0, -np.inf]))
    assert r[0] == 0.0 and r[1] != 0.0 and r[2] in (1.0, 1.0 + 2 ** -7)
    assert r[3] == 65280.0 and r[4] == -np.inf  # 65504 is not a bfloat16; -inf stays (masks)
    with pytest.raises(ValueError, match="should be"):
        representable(np.array([1e6]))
