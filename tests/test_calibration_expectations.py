"""Shipped expectation entries apply at calibration's level: calibration judges random cases whose
ids match no golden case id, so an agreement entry for a bundled adapter documents a divergence
there only through its adapter + dtype + operation + clause + status (calibration.Scope). An entry
that cannot be matched that way (no clause, as keras_hub.json's 27 were) turns its documented
divergence into false failures of `attnconf calibrate` (issue 15: 21 at 20 seeds)."""
from __future__ import annotations

import fnmatch

import pytest

from attnconf.adapters import registry
from attnconf.conformance import calibration
from attnconf.conformance.judging.expectations import Expectation, Expectations, read_file, shipped_paths
from attnconf.dtypes import DTYPE_NAMES


@pytest.fixture(scope="module")
def golden():
    from attnconf.conformance.execution.runner import load_cases

    return load_cases(None, None)


def calibration_records(entry: Expectation, golden) -> list[dict]:
    """The failing records the entry documents on golden cases, as calibration would see them:
    the same adapter, dtype, clauses and status, but a random case id (matching no golden id)."""
    adapters = [a for a in registry.BUNDLED if fnmatch.fnmatchcase(a, entry.adapter)]
    dtypes = [d for d in DTYPE_NAMES if fnmatch.fnmatchcase(d, entry.dtype)]
    out = []
    for case in golden:
        rec = {"adapter": adapters[0], "dtype": dtypes[0] if dtypes else entry.dtype, "case": case.id,
               "clauses": list(case.clauses), "check": "agreement", "status": entry.status[0]}
        if entry.covers(rec):
            out.append({**rec, "case": f"{case.id.split('/', 1)[0]}/calibration-{case.id.split('/', 1)[1]}-0"})
    return out


def unmatched(entries, golden) -> list[str]:
    """The agreement entries for bundled adapters whose golden records no calibration scope would
    cover once the case id is a random one, and why."""
    scopes = calibration.documented_scopes(Expectations(entries))
    out = []
    for entry in entries:
        if entry.check not in ("*", "agreement"):
            continue
        if not any(fnmatch.fnmatchcase(a, entry.adapter) for a in registry.BUNDLED):
            continue   # not a bundled adapter's: calibration never judges it
        records = calibration_records(entry, golden)
        if not records:
            out.append(f"{entry.describe()}: documents no golden case (its case/clause match none)")
            continue
        missed = [r for r in records if not any(s.covers(r) for s in scopes)]
        if missed:
            out.append(f"{entry.describe()}: no calibration scope covers {missed[0]['case']} @ {missed[0]['dtype']} "
                       f"(clause {entry.clause!r}; a divergence not specific to one golden case should name "
                       f"its clause and dtype)")
    return out


@pytest.mark.parametrize("path", shipped_paths(), ids=lambda p: p.name)
def test_every_shipped_agreement_entry_applies_at_calibration_level(path, golden):
    problems = unmatched(read_file(path), golden)
    assert not problems, (f"every agreement entry of {path.name} should be matched at calibration's level "
                          f"(adapter + dtype + operation + clause + status), but got {len(problems)} that "
                          f"are not:\n" + "\n".join(problems[:10]))


def test_entries_calibration_cannot_match_are_reported(golden):
    """The check sees an entry without a clause (keras_hub.json before issue 15) and one whose
    clause its golden case does not cite; an entry naming the case's clause passes."""
    def entry(clause):
        return Expectation(adapter="keras-hub-sine", dtype="float64", case="enc/base_500", check="agreement",
                           clause=clause, reason=f"clause {clause}")

    for clause in ("*", "enc.offset"):
        problems = unmatched([entry(clause)], golden)
        assert len(problems) == 1, f"an entry with clause {clause!r} should be reported, but got {problems}"
    assert "no calibration scope covers enc/calibration-base_500-0 @ float64" in unmatched([entry("*")], golden)[0]
    assert "documents no golden case" in unmatched([entry("enc.offset")], golden)[0]
    assert unmatched([entry("enc.dtype")], golden) == []
