"""One selection language (attnconf.selection) behind every --select: attnconf run, golden
verify/export/list, verify-outputs, and the invariant/profile record ids. Each front end is asked
the same comma/glob/substring expression and must pick exactly what selection.selects picks."""
from __future__ import annotations

import json

import pytest

from attnconf import cli, selection
from attnconf.reference import golden

IDS = [r["id"] for r in golden.read_manifest(None)["cases"]]
# A glob, a substring and an alternative that matches nothing, joined by commas, with spaces.
EXPR = "sdpa/size_l1_*, base_2_odd ,no-such-case"


@pytest.mark.parametrize("expr, case_id, selected", [
    (None, "sdpa/x", True),
    ("", "sdpa/x", True),
    ("causal", "sdpa/causal_tl", True),            # substring anywhere
    ("sdpa/causal*", "sdpa/causal_tl", True),      # glob on the whole id
    ("causal*", "sdpa/causal_tl", False),          # a glob is not a substring
    ("mha/,enc/", "enc/base_2_odd", True),         # commas join alternatives
    ("mha/,enc/", "sdpa/causal_tl", False),
    ("sdpa/[cm]*", "sdpa/mask_bool", True),
    ("SDPA", "sdpa/causal_tl", False),             # case-sensitive
])
def test_the_language(expr, case_id, selected):
    assert selection.selects(expr, case_id) is selected


def expected_ids() -> list[str]:
    ids = [i for i in IDS if selection.selects(EXPR, i)]
    assert ids and any(i.startswith("sdpa/size_l1_") for i in ids) and "enc/base_2_odd" in ids
    return ids


def test_golden_list(capsys):
    assert cli.main(["golden", "list", "--select", EXPR]) == 0
    listed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == expected_ids()


def test_golden_load_cases_and_verify():
    assert [c.id for c in golden.load_cases(EXPR)] == expected_ids()
    assert golden.verify(None, select=EXPR)["cases"] == len(expected_ids())


def test_run(tmp_path, capsys):
    path = tmp_path / "r.json"
    code = cli.main(["run", "--no-checks", "--executor", "in-process", "--adapter", "numpy-reference",
                     "--select", EXPR, "--dtype", "float64", "--json", str(path)])
    capsys.readouterr()
    assert code == 0
    assert [r["case"] for r in json.loads(path.read_text())["results"]] == expected_ids()


def test_verify_outputs_takes_commas_too():
    from attnconf.conformance.execution import verify_outputs

    cases = golden.load_cases(None)
    assert [c.id for c in verify_outputs.select_cases(cases, EXPR)] == expected_ids()


def test_invariant_and_profile_records():
    from attnconf.adapters import registry
    from attnconf.conformance.checks import invariants
    from attnconf.conformance.results import repro

    assert repro.selects("profile/,inv.finite", "invariant/inv.finite")
    adapter = registry.instantiate(registry.resolve(names=["numpy-reference"])[0])
    recs = invariants.check(adapter, "float64", max_examples=2, select="inv.finite, invariant/inv.enc.b*")
    assert sorted({r["case"] for r in recs}) == ["invariant/inv.enc.bounds", "invariant/inv.finite"]
