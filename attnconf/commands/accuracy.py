"""`attnconf accuracy`: print the reference's measured accuracy against the mpmath oracle.

For what: evidence for the accuracy contract of attnconf.reference (spec/accuracy.md): a table
of max errors in ulps of natural scale per path, PASS/FAIL per bound; exit 0 when every bound
holds, 1 otherwise. The measuring lives in attnconf.reference.accuracy; this is only the CLI.
Must not: import any framework.
"""
from __future__ import annotations

import sys

from attnconf.errors import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "accuracy", help="measure the reference's accuracy against an mpmath oracle (ulps of natural scale)",
        description="Compare every path of the NumPy reference (default float64, exact, and the naive "
                    "float64 formulas for contrast) with an arbitrary-precision mpmath oracle, over "
                    "random seeds and encoding positions up to 1e6; exit 0 when all bounds hold, 1 if not.")
    p.add_argument("--seeds", type=int, default=10, help="random problems per operation (default 10)")
    p.set_defaults(func=run)


def run(args) -> int:
    from attnconf.validation import check_int

    try:
        seeds = check_int("--seeds", args.seeds, minimum=1)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    from attnconf.reference import accuracy

    def progress(msg):
        if sys.stderr.isatty():
            sys.stderr.write(f"  measuring {msg} …\n")

    table, ok, seconds = accuracy.run(seeds, progress)
    print("attnconf reference accuracy vs mpmath oracle (40 digits); error = max |x - exact| / "
          "(natural scale * 2^-52)")
    print(table)
    print(f"{'all bounds hold' if ok else 'SOME BOUNDS FAIL'} ({seconds:.1f} s)")
    return 0 if ok else 1
