"""`attnconf golden generate|verify|export|list`: the golden vectors from the command line.

Thin layer over attnconf.reference.golden (and golden_export); must not hold golden logic of its own.
Exit codes: 0 ok; 1 verify found a mismatch; 2 usage error or a golden file that is missing,
unreadable, truncated or has the wrong sha256 (one line naming the file).
"""
from __future__ import annotations

import sys

from attnconf import selection


def register(subparsers) -> None:
    p = subparsers.add_parser("golden", help="generate, verify, export or list the golden vectors",
                              description="Golden vectors: expected outputs of the case catalogue.")
    p.set_defaults(func=_missing_action)
    sub = p.add_subparsers(dest="golden_action", metavar="ACTION")

    g = sub.add_parser("generate", help="recompute the golden files with the reference (exact=True)")
    _dir_option(g)
    g.set_defaults(func=_generate)

    v = sub.add_parser("verify", help="check sha256 of every golden file and that regeneration reproduces them")
    _dir_option(v)
    v.add_argument("--select", metavar="PATTERN", help=selection.HELP)
    v.set_defaults(func=_verify)

    e = sub.add_parser("export", help="write the goldens as .npy files plus index.json (docs/golden-format.md)")
    e.add_argument("dest", metavar="DIR", help="destination directory (created; empty or a previous export)")
    _dir_option(e)
    e.add_argument("--select", metavar="PATTERN", help=selection.HELP)
    e.set_defaults(func=_export)

    ls = sub.add_parser("list", help="list the golden cases with their clauses")
    _dir_option(ls)
    ls.add_argument("--select", metavar="PATTERN", help=selection.HELP)
    ls.set_defaults(func=_list)


def _dir_option(parser) -> None:
    parser.add_argument("--golden-dir", metavar="D", default=None,
                        help="golden directory (default: $ATTNCONF_GOLDEN_DIR, else the installed goldens)")


def _missing_action(args) -> int:
    from attnconf.errors import UsageError

    raise UsageError("golden action should be one of generate, verify, export, list, but got none")


def _generate(args) -> int:
    from attnconf.reference import golden

    manifest = golden.generate(args.golden_dir)
    print(f"wrote {len(manifest['cases'])} cases in {len(manifest['files'])} files "
          f"({manifest['total_bytes']} bytes, {manifest['generation_seconds']} s) to {golden.resolve_dir(args.golden_dir)}")
    return 0


def _verify(args) -> int:
    from attnconf.reference import golden

    report = golden.verify(args.golden_dir, select=args.select)
    for m in report["mismatches"]:
        print(f"MISMATCH {m['case']} {m['what']}: {m['message']}")
    status = "ok" if report["ok"] else f"{len(report['mismatches'])} mismatches"
    print(f"golden verify: {status}: {report['cases']} cases, {len(report['files'])} files, sha256 ok, "
          f"max {report['max_ulp']:.3g} ulp of natural scale, {report['seconds']} s")
    if report["spec_version"] != report["spec_version_current"]:
        print(f"note: goldens were generated under spec {report['spec_version']}, "
              f"this suite implements {report['spec_version_current']}")
    return 0 if report["ok"] else 1


def _export(args) -> int:
    from attnconf.errors import UsageError
    from attnconf.reference import golden, golden_export

    if args.select and not golden.select_records(golden.read_manifest(args.golden_dir)["cases"], args.select):
        raise UsageError(f"--select should match at least one case id, but got {args.select!r} matching none")

    path = golden_export.export(args.dest, golden_dir=args.golden_dir, select=args.select)
    print(f"exported to {path.parent} (index: {path})")
    return 0


def _list(args) -> int:
    from attnconf.errors import UsageError
    from attnconf.reference import golden

    records = golden.select_records(golden.read_manifest(args.golden_dir)["cases"], args.select)
    if args.select and not records:
        raise UsageError(f"--select should match at least one case id, but got {args.select!r} matching none")
    out = sys.stdout
    for r in records:
        out.write(f"{r['id']}\t{r['family']}\t{','.join(r['clauses'])}\n")
    return 0
