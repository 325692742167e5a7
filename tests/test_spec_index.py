"""Meta-tests of spec/: the clause index is valid, complete and consistent with the Markdown text.

Must not test the reference numerics (tests/test_reference_* do) or the golden files.
"""
from __future__ import annotations

import re

import jsonschema
import pytest

from attnconf import spec

# The ids fixed by the lead in .notes/DECISIONS.md; reports and cases already cite them.
REQUIRED_IDS = """
sdpa.layout sdpa.scale.default sdpa.scale.explicit sdpa.logits sdpa.mask.bool sdpa.mask.float
sdpa.mask.broadcast sdpa.causal.top_left sdpa.causal.bottom_right sdpa.mask_and_causal sdpa.softmax
sdpa.fully_masked sdpa.gqa sdpa.output sdpa.value_dim sdpa.dtype sdpa.range sdpa.grad
mha.weights mha.projection mha.heads mha.output mha.bias mha.cross mha.gqa mha.mask
enc.positions enc.frequencies.vaswani enc.frequencies.t2t enc.layout.interleaved enc.layout.concat
enc.layout.cos_first enc.odd_dim enc.base enc.target enc.add enc.dtype
tol.metric tol.baseline tol.rule tol.levels
inv.convex_hull inv.query_permutation inv.key_permutation inv.causal_prefix inv.masked_keys
inv.mask_equivalence inv.batch_independence inv.gqa_repeat inv.value_linearity
inv.scale_homogeneity inv.finite inv.determinism inv.enc.bounds inv.enc.pythagorean
inv.enc.rotation inv.enc.relative inv.enc.offset_shift inv.mha.decomposition
perf.flops perf.scaling
""".split()

INDEX = spec.load_index()
SECTION_FILES = {s["id"]: s["file"] for s in INDEX["sections"]}


def test_index_matches_its_schema():
    jsonschema.validate(INDEX, spec.load_schema())


def test_schema_rejects_an_untestable_clause_without_reason():
    bad = {**INDEX, "clauses": [{**INDEX["clauses"][0], "testable": False, "untested_reason": None}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, spec.load_schema())


def test_spec_version_is_1_2_and_stated_in_readme():
    # 1.1: clause tol.golden added; 1.2: section rope; 1.3: sections alibi, relpos, posids and the sdpa
    # kernel options sdpa.opt.* (new clauses increment MINOR, spec/README.md "Versioning")
    assert spec.spec_version() == "1.4"
    assert "version 1.4" in spec.text("README.md").splitlines()[0]


def test_required_ids_present_and_ids_unique():
    ids = spec.clause_ids()
    assert len(ids) == len(set(ids)), "duplicate clause ids"
    missing = sorted(set(REQUIRED_IDS) - set(ids))
    assert not missing, f"clause ids missing from index.json: {missing}"


@pytest.mark.parametrize("clause", INDEX["clauses"], ids=lambda c: c["id"])
def test_clause_record_is_consistent(clause):
    assert clause["id"].startswith(clause["section"] + "."), "id must be prefixed with its section"
    assert clause["section"] in SECTION_FILES, f"unknown section {clause['section']!r}"
    assert clause["file"] == SECTION_FILES[clause["section"]], "clause file differs from its section's"
    assert clause["anchor"] == clause["id"]
    assert (clause["untested_reason"] is None) == clause["testable"]
    expected_kind = {"tol": "tolerance", "inv": "invariant", "perf": "performance"}.get(clause["section"], "definition")
    assert clause["kind"] == expected_kind


@pytest.mark.parametrize("section", INDEX["sections"], ids=lambda s: s["id"])
def test_every_clause_has_a_heading_and_every_heading_a_clause(section):
    name = section["file"]
    if section["id"] == "tol" and not spec.has_file(name):
        pytest.skip("tolerance.md is written with the conformance suite and has not landed yet")
    in_file = spec.headings(name)
    in_index = {c["id"]: c["title"] for c in spec.clauses(section["id"])}
    assert sorted(set(in_index) - set(in_file)) == [], f"clauses without a heading in {name}"
    assert sorted(set(in_file) - set(in_index)) == [], f"headings in {name} missing from index.json"
    if section["id"] == "tol":
        return  # titles of tolerance.md are its authors' choice; ids are what others cite
    for cid, title in in_index.items():
        assert in_file[cid] == title, f"{cid}: index title {title!r} != heading {in_file[cid]!r}"


def test_files_without_clauses_carry_no_clause_headings():
    assert spec.headings("README.md") == {}


def _clause_body(clause: dict) -> str:
    """The text from a clause's heading to the next heading."""
    text = spec.text(clause["file"])
    start = text.index("{#" + clause["id"] + "}")
    nxt = re.search(r"^#{1,4} ", text[start:], re.M)
    return text[start: start + nxt.start()] if nxt else text[start:]


OWN_CLAUSES = [c for c in INDEX["clauses"] if c["section"] != "tol"]


@pytest.mark.parametrize("clause", [c for c in OWN_CLAUSES if c["kind"] == "definition"], ids=lambda c: c["id"])
def test_definition_clauses_state_a_requirement(clause):
    assert re.search(r"\b(MUST|SHOULD|MAY)\b", _clause_body(clause)), "no MUST/SHOULD/MAY in the clause"


@pytest.mark.parametrize("clause", [c for c in OWN_CLAUSES if c["alternatives"]], ids=lambda c: c["id"])
def test_named_alternatives_appear_in_the_clause_text(clause):
    body = _clause_body(clause)
    missing = [a for a in clause["alternatives"] if f"`{a}`" not in body]
    assert not missing, f"alternatives not named in the text of {clause['id']}: {missing}"


def test_the_observed_divergences_are_named():
    # The divergences between frameworks in docs/findings.md; the spec must name each as an alternative.
    alts = {c["id"]: set(c["alternatives"]) for c in INDEX["clauses"]}
    assert {"uniform", "nan"} <= alts["sdpa.fully_masked"]
    assert "bottom_right" in alts["sdpa.causal.top_left"]
    assert "true_means_masked" in alts["mha.mask"]
    assert "tile" in alts["sdpa.gqa"]
    assert alts["sdpa.scale.default"]
    assert {"concat", "cos_first"} <= alts["enc.layout.interleaved"]
    assert "t2t" in alts["enc.frequencies.vaswani"]
    assert "half" in alts["rope.layout.interleaved"] and "interleaved" in alts["rope.layout.half"]
    assert {"truncate_false_default", "attention_factor_q_only"} <= alts["rope.scaling.yarn"]
    assert {"float32_angles", "low_precision_angles", "cos_sin_below_dtype"} <= alts["rope.dtype"]


def test_clause_lookup_and_unknown_id_error():
    assert spec.clause("sdpa.gqa")["file"] == "sdpa.md"
    with pytest.raises(KeyError, match="clause id should be"):
        spec.clause("sdpa.nonexistent")


@pytest.mark.parametrize("file_name", sorted({c["file"] for c in OWN_CLAUSES}) + ["README.md"])
def test_cross_references_name_existing_clauses(file_name):
    known = set(spec.clause_ids()) | {s["id"] for s in INDEX["sections"]}
    known |= {s["file"] for s in INDEX["sections"]}  # file names such as `sdpa.md` look alike
    refs = set(re.findall(r"`((?:sdpa|mha|enc|rope|tol|inv|perf)\.[a-z0-9_.]*[a-z0-9_*])`", spec.text(file_name)))
    unknown = sorted(r for r in refs if r not in known and not r.endswith(".*"))
    assert not unknown, f"{file_name} cites unknown clause ids: {unknown}"
