"""`attnconf expectations update|list`: write an expectations file from a run, or show entries.

`update` keeps the existing entries (globs and reasons) that still hold and adds one entry per new
failure with a TODO reason for a person to write; it never invents reasons. Must not run
implementations.
"""
from __future__ import annotations

import sys

DEFAULT_OUT = "attnconf-expectations.json"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "expectations", help="expectation files: known divergences that a run reports as xfail",
        description="Expectation files list an implementation's known divergences, each with a reason; "
                    "'attnconf run' turns a matching failure into xfail.")
    sub = p.add_subparsers(dest="expectations_command", metavar="ACTION")
    up = sub.add_parser("update", help="write an expectations file that expects the failures of a run")
    up.add_argument("--results", default=None, metavar="PATH",
                    help="results JSON of 'attnconf run' (default: the run's default --json path)")
    up.add_argument("--out", default=DEFAULT_OUT, metavar="PATH",
                    help=f"where to write the expectations file (default {DEFAULT_OUT})")
    up.add_argument("--expectations", action="append", metavar="PATH",
                    help="existing file(s) whose still-valid entries and reasons are kept "
                         "(default: the shipped files)")
    up.add_argument("--adapter", action="append", metavar="NAME", help="only these adapters' records")
    up.set_defaults(func=update)
    ls = sub.add_parser("list", help="print the entries of expectation files (default: the shipped ones)")
    ls.add_argument("paths", nargs="*", metavar="PATH")
    ls.set_defaults(func=list_entries)
    p.set_defaults(func=_missing_action)


def _missing_action(args) -> int:
    from attnconf.errors import UsageError

    raise UsageError("expectations action should be one of update, list, but got none")


def _default_results_path() -> str:
    from attnconf.conformance.execution.runner import DEFAULT_JSON

    return str(DEFAULT_JSON)


def update(args) -> int:
    from attnconf.conformance.judging import expectations as ex
    from attnconf.conformance.results.files import read_results

    results_path = args.results or _default_results_path()
    doc = read_results(results_path)
    existing = ex.Expectations.load(args.expectations).entries
    out = ex.update_document(doc["results"], existing, adapters=args.adapter)
    path = ex.write_document(out, args.out)
    todo = sum(e["reason"].startswith("TODO") for e in out["expectations"])
    print(f"attnconf expectations: wrote {len(out['expectations'])} entries to {path}"
          + (f"; {todo} need a reason written (search for TODO)" if todo else ""))
    return 0


def list_entries(args) -> int:
    from attnconf.conformance.judging import expectations as ex

    paths = args.paths or ex.shipped_paths()
    for path in paths:
        for entry in ex.read_file(path):
            print(f"{entry.describe()}\n    {entry.reason}")
    return 0
