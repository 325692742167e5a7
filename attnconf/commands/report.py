"""`attnconf report RESULTS.json … --html PATH [--baseline OLD.json]`: merge results into one page.

Inputs may be files, folders (their *.json) or glob patterns. An input that is missing or cannot
be read is one line on stderr and a note in the page, not a failure, so that a tox `report` env
still produces a report when some framework envs did not run. Exit 0 when at least one run was
read, 2 when none was (the page is written anyway, listing why).

Must not judge results: it only shows what the results files say.
"""
from __future__ import annotations

import sys

DEFAULT_HTML = "reports/index.html"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="merge results JSON files into one self-contained HTML report",
        description="Merge any number of results files (tox envs, machines, devices) into one "
                    "self-contained HTML report that opens from file://.")
    p.add_argument("results", nargs="+", metavar="RESULTS.json",
                   help="results files written by 'attnconf run --json'; a folder means its *.json files")
    p.add_argument("--html", default=DEFAULT_HTML, metavar="PATH",
                   help=f"where to write the report (default {DEFAULT_HTML})")
    p.add_argument("--baseline", action="append", metavar="OLD.json",
                   help="earlier results to diff against (repeatable; merged)")
    p.set_defaults(func=run)


def run(args) -> int:
    from attnconf.conformance.report import load_results, render
    from attnconf.errors import UsageError
    from attnconf.validation import fail

    html = str(args.html)
    if not html.endswith((".html", ".htm")):
        fail("--html", "a path ending in .html", repr(html), UsageError)
    runs, problems = load_results(args.results)
    for p in problems:
        sys.stderr.write(f"attnconf report: {p}\n")
    base_problems: list[str] = []
    if args.baseline:
        base_runs, base_problems = load_results(args.baseline)
        for p in base_problems:
            sys.stderr.write(f"attnconf report: baseline {p}\n")
        baseline = base_runs
    else:
        baseline = None
    try:
        out = render(runs, html, baseline=baseline, problems=problems + [f"baseline {p}" for p in base_problems])
    except OSError as exc:
        fail("--html", "a writable path", f"{html!r} ({type(exc).__name__}: {exc.strerror or exc})", UsageError)
    n_records = sum(len(r.records) for r in runs)
    print(f"attnconf report: wrote {out} ({len(runs)} run(s), {n_records} records"
          + (f", {len(problems)} input problem(s)" if problems else "") + ")")
    if not runs:
        sys.stderr.write(f"attnconf: no results could be read from {len(args.results)} input(s); "
                         f"the report at {out} lists why\n")
        return 2
    return 0
