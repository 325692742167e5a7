"""`attnconf adapters`: list every adapter found (bundled and entry points) and whether it can run.

Availability imports each framework once (torch ~1 s, TensorFlow ~2 s): Python's module cache
makes every later adapter of the same framework free. Must not run any operation.
"""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("adapters", help="list the adapters found and whether each is available",
                              description="List bundled and entry-point adapters: name, framework, "
                                          "version, device, available or why not.")
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
    header = ("name", "framework", "version", "device", "available")
    lines = [header]
    for r in rows:
        status = "yes" if r["available"] else f"no: {r['reason']}"
        lines.append((r["name"], r["framework"] or "?", r["version"] or "-", r["device"], status))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line, widths)] + [line[-1]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"
