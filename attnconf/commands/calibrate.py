"""`attnconf calibrate`: measure the tolerance rule's false-failure rate and known-bad detection.

For what: the evidence that the default conformance level separates right from wrong (issue 4):
(a) false failures of correct implementations (numpy-reference in every precision, the zoo's
control, every available bundled adapter on the clauses it claims) over random cases of every
case family; (b) which known-bad implementations of the zoo are caught, and by which check.
Exit 0 when there are zero false failures and every known-bad is caught, 1 otherwise.
The measuring lives in attnconf.conformance.calibration; this is only the CLI.
Must not: import any framework itself (adapters do, when they are instantiated).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from attnconf.errors import UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="false-failure rate on correct code and detection of known-bad code",
        description="Judge random cases of every case family (exact expected values) on correct "
                    "implementations with the default tolerance rule, and run the known-bad zoo "
                    "through agreement, invariants and profile; exit 0 when there are zero false "
                    "failures and every known-bad implementation is caught, 1 otherwise.")
    p.add_argument("--seeds", type=int, default=200, help="random cases per family (default 200)")
    p.add_argument("--zoo", default=None, metavar="DIR",
                   help="a known-bad zoo package directory of your own (its __init__.py defines "
                        "control() and all_known_bad()); default: the zoo installed with attnconf "
                        "(attnconf.conformance.known_bad); 'none' to skip detection")
    p.add_argument("--no-bundled", action="store_true",
                   help="only numpy-reference and the zoo control as correct implementations")
    p.add_argument("--family", action="append", default=None, metavar="NAME",
                   help="only this case family (repeatable)")
    p.add_argument("--first-catch", action="store_true",
                   help="stop at the first check that catches each known-bad implementation (faster)")
    p.add_argument("--json", metavar="PATH", help="also write the measurements as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from attnconf.conformance import calibration
    from attnconf.validation import check_choice, check_int

    try:
        seeds = check_int("--seeds", args.seeds, minimum=1)
        for f in args.family or ():
            check_choice("--family", f, tuple(calibration.family_names()))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.zoo is None:
        zoo = calibration.BUNDLED_ZOO
    else:
        zoo = None if args.zoo in ("none", "") else Path(args.zoo)

    from attnconf.commands.run import quiet_framework_logs

    quiet_framework_logs()
    doc = calibration.run(seeds=seeds, zoo=zoo, bundled=not args.no_bundled, families=args.family,
                          progress=Progress(sys.stderr), first_only=args.first_catch)
    print(calibration.format_report(doc))
    if args.json:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--json should name a writable file, but got {str(path)!r} ({exc.strerror})") from None
    return 0 if doc["ok"] else 1


class Progress:
    """What calibrate is doing, on a terminal: a line per finished step and a rewritten status line
    (family, seed) in between; nothing when stderr is not a terminal (logs, CI)."""

    def __init__(self, stream):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0

    def __call__(self, message: str) -> None:
        if self.tty:
            self.stream.write(f"\r\x1b[2K  {message}\n")
            self.stream.flush()

    def status(self, message: str) -> None:
        import time

        if self.tty and time.perf_counter() - self._last >= 0.2:
            self._last = time.perf_counter()
            self.stream.write(f"\r\x1b[2K  {message}")
            self.stream.flush()
