"""`attnconf adapters`: list every adapter found (bundled and entry points), whether it can run,
and whether the default `attnconf run` includes it (opt-in rows run only when named).

Availability of bundled adapters comes from package metadata (Adapter.quick_status): no framework
is imported, so the listing takes well under a second (on a GPU device the frameworks are asked).
An entry point's adapter is loaded to describe it. Must not run any operation.
"""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("adapters", help="list the adapters found and whether each is available",
                              description="List bundled and entry-point adapters: name, framework, "
                                          "libraries and versions, device, whether the default run includes "
                                          "it (opt-in rows run only when named with --adapter), available or "
                                          "why not.")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    p.add_argument("--device", choices=("cpu", "cuda", "gpu"), default=None,
                   help="check availability on this device (default: each adapter's own default)")
    p.set_defaults(func=main)


def main(args) -> int:
    from attnconf.adapters.registry import discover

    rows = discover(device=args.device)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(format_table(rows))
    return 0


def format_table(rows: list[dict]) -> str:
    header = ("name", "framework", "version", "device", "default run", "available")
    lines = [header]
    for r in rows:
        status = "yes" if r["available"] else f"no: {r['reason']}"
        default = ("yes" if r.get("default", True) else "opt-in") if r.get("source") == "bundled" else "yes"
        lines.append((r["name"], r["framework"] or "?", r["version"] or "-", r["device"], default, status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line, widths)] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"
