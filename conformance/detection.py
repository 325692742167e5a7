"""Known-bad detection: which checks catch each implementation of the zoo (calibration's second
target: every known-bad caught, the control clean). `attnconf calibrate` runs it through
`calibration.run`; tests/test_known_bad_zoo.py calls `detect_one` per zoo class.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from attnconf.conformance import plan
from attnconf.conformance.calibration import BUNDLED_ZOO, family_names, judge_one, random_case
from attnconf.conformance.results.record import FAILING as CAUGHT   # a known-bad is caught by a failing record
from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import SetupError


def load_zoo(zoo: str | Path = BUNDLED_ZOO):
    """(control class, [known-bad classes]) of the bundled zoo (BUNDLED_ZOO, a module name) or of a
    zoo package directory (a Path: its __init__.py defines control() and all_known_bad())."""
    if isinstance(zoo, str) and zoo == BUNDLED_ZOO:
        module = importlib.import_module(BUNDLED_ZOO)
        return module.control(), module.all_known_bad()
    path = Path(zoo).resolve()
    init = path / "__init__.py"
    if not init.is_file():
        raise SetupError(f"--zoo should be a package directory with __init__.py, but got {str(zoo)!r}")
    # One module name per directory: two zoos loaded in one process must not shadow each other.
    name = f"attnconf_calibration_zoo_{abs(hash(str(path))):x}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    module = sys.modules[name]
    return module.control(), module.all_known_bad()


def interleave_by_operation(cases) -> list:
    """Cases reordered round-robin over operations, so each operation's first cases come early."""
    groups: dict = {}
    for c in cases:
        groups.setdefault(c.operation, []).append(c)
    out, lists = [], list(groups.values())
    for i in range(max((len(g) for g in lists), default=0)):
        out.extend(g[i] for g in lists if i < len(g))
    return out


def detect_one(adapter, *, golden, random_cases, dtypes=DTYPE_NAMES, seed=0, enough: int = 3,
               first_only: bool = False) -> list[str]:
    """The checks that catch `adapter`: "profile <aspect> = …", "agreement (golden|random) <case>
    @ <dtype>", "invariant <clause> @ <dtype>". Agreement stops after `enough` failing case-dtypes
    per source; first_only stops at the first hit (tests: is it caught at all?)."""
    from attnconf.conformance.checks import invariants
    from attnconf.conformance.checks import profile

    hits: list[str] = []
    prof = profile.detect(adapter)
    for rec in profile.profile_records(adapter, prof):
        if rec["status"] in CAUGHT:
            hits.append(f"profile {rec['case'][len('profile/'):]} = {rec['metrics']['value']}")
    if hits and first_only:
        return hits[:1]
    for label, cases in (("golden", golden), ("random", random_cases)):
        n = 0
        for case in interleave_by_operation(cases):
            if n >= (1 if first_only else enough):
                break
            if plan.implements(adapter, case.operation):
                continue
            for item in plan.agreement(adapter, [case], dtypes):
                rec = judge_one(adapter, item.case, item.dtype)
                if rec["status"] in CAUGHT:
                    n += 1
                    hits.append(f"agreement ({label}) {case.id} @ {item.dtype}")
                    break
        if hits and first_only:
            return hits[:1]
    for dtype in plan.check_dtypes(adapter, dtypes):
        # A fixed draw count, not a time budget: what is caught must not depend on the load.
        for rec in invariants.check(adapter, dtype, seed=seed, shrink=False, max_examples=1):
            if rec["status"] in CAUGHT:
                hits.append(f"invariant {rec['clauses'][0]} @ {dtype}")
                if first_only:
                    return hits[:1]
    return hits


def detection(zoo_path, *, random_seeds: int = 2, progress=None, first_only: bool = False) -> tuple[list, dict]:
    """([(name, bug_class, hits)], control_hits): hits empty means not caught."""
    from attnconf.conformance.execution.runner import load_cases

    control, bad = load_zoo(zoo_path)
    golden = load_cases(None, None)
    randoms = [random_case(f, s) for f in family_names() for s in range(random_seeds)]
    rows = []
    control_hits = detect_one(control(), golden=golden, random_cases=randoms)
    for cls in bad:
        rows.append((cls.name, getattr(cls, "bug_class", ""),
                     detect_one(cls(), golden=golden, random_cases=randoms, first_only=first_only)))
        if progress:
            progress(f"zoo: {cls.name}: {'caught' if rows[-1][2] else 'MISSED'}")
    return rows, control_hits
