"""`attnconf bench`: speed of every adapter against this machine's matmul peak, and the reference's targets.

Writes the results JSON's `benchmarks` section (attnconf.conformance.bench.run) and prints one
line per point. Speed is reported, never judged (spec/performance.md), unless the user sets a
budget: --max-exponent, --min-pct-peak, --min-ratio-vs-reference turn statements into "speed"
records that pass or fail (exit 1 on a failure). `--reference-targets` measures the two targets
of the blocked reference, the RoPE reference's bandwidth target and the packed reference's ratio
to the contiguous one (sdpa_varlen <= 1.5x sdpa_lse on the same work) instead of the sweep (exit 1
if one fails).
Must not import any framework at module level (`attnconf --help` stays cheap).
"""
from __future__ import annotations

import sys
import time

from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import UsageError
from attnconf.validation import finite_number



def benchmarked() -> tuple[str, ...]:
    """The operations `--operation` may name: every registered one with a bench grid."""
    from attnconf import operations

    return tuple(op.name for op in operations.operations() if op.bench_grid is not None)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark implementations (GFLOP/s, %% of peak, scaling in L; RoPE in GB/s)",
        description="Time every adapter's operations over L = S = 128 … --max-L against a matmul "
                    "peak probed in the same run (RoPE: GB/s against a copy probe of the same run); fit the "
                    "scaling exponent; write the benchmarks "
                    "section of the results JSON.")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME|PKG.MOD:CLASS",
                   help="adapter name or class (repeatable); default: every available bundled "
                        "adapter (with --quick: numpy-reference)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or gpu (default cpu)")
    p.add_argument("--quick", action="store_true",
                   help="small sweep (L <= 512, float32) finishing in well under a minute")
    p.add_argument("--json", metavar="PATH", help="write the results JSON (with the benchmarks section)")
    p.add_argument("--max-L", type=int, default=4096, metavar="N", help="largest L = S (default 4096)")
    p.add_argument("--max-positions", type=int, metavar="N",
                   help="largest encoding table (default 1000000, --quick 10000)")
    p.add_argument("--operation", action="append", metavar="OP",
                   help="only these operations (repeatable): " + ", ".join(benchmarked()))
    p.add_argument("--dtype", metavar="LIST", help="comma-separated dtypes (default float32,float64,bfloat16)")
    p.add_argument("--max-exponent", type=finite_number, metavar="X",
                   help="budget: fail when a scaling exponent in L exceeds X (e.g. 2.2)")
    p.add_argument("--min-pct-peak", type=finite_number, metavar="P",
                   help="budget: fail when %% of the dtype's matmul peak at the largest L is below P")
    p.add_argument("--min-ratio-vs-reference", type=finite_number, metavar="R",
                   help="budget: fail when throughput / numpy-reference's at the same point is below R")
    p.add_argument("--reference-targets", action="store_true",
                   help="measure the reference's targets (>= 50 %% of dgemm peak at "
                        "L=S=4096 H=8 E=64; <= 1 GiB RSS at L=S=65536 H=1 E=64; float64 RoPE at "
                        "B=1 H=32 T=8192 E=128 >= 25 %% of the copy bandwidth; the paged and the packed "
                        "(sdpa_varlen) references <= 1.5x the contiguous one on the same work, printed as "
                        "ratios) instead of the sweep")
    p.set_defaults(func=main)


def main(args) -> int:
    _check_args(args)
    from attnconf.commands.run import quiet_framework_logs

    quiet_framework_logs()
    started = time.time()
    if args.reference_targets:
        section, failed = _targets(args)
        adapters = []
    else:
        adapters = _adapters(args)
        from attnconf.conformance.bench.run import run_benchmarks

        budgets = {"max_exponent": args.max_exponent, "min_pct_peak": args.min_pct_peak,
                   "min_ratio_vs_reference": args.min_ratio_vs_reference}
        section = run_benchmarks(adapters, quick=args.quick, max_L=args.max_L,
                                 max_positions=args.max_positions, operations=args.operation,
                                 dtypes=_dtypes(args.dtype), budgets=budgets, progress=_print)
        _print_statements(section)
        failed = any(s["status"] == "fail" for s in section["statements"])
    if args.json:
        path = _write(args.json, section, adapters, started)
        _print(f"results: {path}")
    return 1 if failed else 0


def _check_args(args) -> None:
    if args.max_L < 128:
        raise UsageError(f"--max-L should be >= 128, but got {args.max_L}")
    if args.max_positions is not None and args.max_positions < 1000:
        raise UsageError(f"--max-positions should be >= 1000, but got {args.max_positions}")
    known = benchmarked()
    for op in args.operation or ():
        if op not in known:
            raise UsageError(f"--operation should be one of {', '.join(known)}, but got {op!r}")
    if args.json:
        from attnconf.conformance.results.files import check_writable

        check_writable(args.json)


def _dtypes(text):
    if not text:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    for n in names:
        if n not in DTYPE_NAMES:
            raise UsageError(f"--dtype should list names among {', '.join(DTYPE_NAMES)}, but got {n!r}")
    return names


def _adapters(args) -> list:
    from attnconf.adapters import registry

    names = args.adapter or (["numpy-reference"] if args.quick else None)
    plain = [n for n in names or () if ":" not in n]
    classes = [n for n in names or () if ":" in n]
    if names is None:
        specs = registry.resolve(None, device=args.device, isolated=False)   # timed in this process
    else:
        specs = registry.resolve(plain, adapter_classes=classes, device=args.device, isolated=False)
    if not specs:
        raise UsageError("adapters should include at least one available adapter, but got none "
                         "(see 'attnconf adapters')")
    return [registry.instantiate(s) for s in specs]


def _targets(args) -> tuple[dict, bool]:
    from attnconf.conformance.bench import machine, serving, targets

    if args.quick:  # smaller shapes for CI: the figures are not the targets' shapes
        speed = targets.speed_target(rounds=2, shape=dict(B=1, H=2, L=1024, S=1024, E=64))
        mem = targets.memory_target(shape=dict(B=1, H=1, L=8192, S=8192, E=64))
        rope = targets.rope_target(rounds=2, shape=dict(B=1, H=8, T=2048, E=128))
        paged = serving.paged_target(rounds=9, shape=serving.QUICK_SHAPE)
    else:
        _status("speed target: dgemm peak, then the blocked reference at L=S=4096 …")
        speed = targets.speed_target()
        _status("memory target: the blocked reference at L=S=65536 in a child process …")
        mem = targets.memory_target()
        _status("RoPE target: copy bandwidth, then float64 RoPE at T=8192 …")
        rope = targets.rope_target()
        _status("paged target: the paged reference against the contiguous one …")
        paged = serving.paged_target(rounds=9)
    from attnconf.conformance.bench import varlen   # packed vs contiguous reference, same work

    _status("packed target: the packed reference against the contiguous one …")
    packed = varlen.varlen_target(shape=dict(B=4, H=2, L=256, E=64) if args.quick else None)
    _status("")
    for line in targets.format_report(speed, mem, rope) + serving.format_paged(paged) + varlen.format_report(packed):
        _print(line)
    if args.quick:
        _print("(--quick: reduced shapes; run without --quick for the targets themselves)")
    section = {"machine": machine.machine_info(), "peak_gflops": {"float64": speed["dgemm_peak_gflops"]},
               "bandwidth_gbps": rope["copy_gbps"],
               "points": [], "scaling": [], "statements": [], "skipped": [],
               "reference_targets": {"quick": bool(args.quick), "speed": speed, "memory": mem,
                                     "rope": rope, "paged": paged, "varlen": packed}}
    return section, "FAIL" in (speed["status"], mem["status"], rope["status"], paged["status"], packed["status"])


def _write(path, section, adapters, started):
    from attnconf.conformance.bench import checks
    from attnconf.conformance.results.files import new_document, now, write_json_atomic

    doc = new_document(command=["attnconf"] + sys.argv[1:])
    doc["adapters"] = [a.describe() for a in adapters]
    for row in doc["adapters"]:   # provenance: every library a benchmarked implementation runs on
        for dist, version in (row.get("libraries") or {}).items():
            doc["environment"]["frameworks"].setdefault(dist, version)
    doc["results"] = checks.records(section.get("statements", []))
    doc["benchmarks"] = section
    doc["finished_at"] = now()
    doc["complete"] = True
    doc["elapsed_s"] = time.time() - started
    write_json_atomic(path, doc)
    return path


def _print_statements(section) -> None:
    for s in section["statements"]:
        _print(f"[{s['status']}] {s['adapter']} {s['operation']} {s['dtype']}: {s['message']}")
    grouped: dict = {}
    for s in section["skipped"]:   # one line per adapter and reason, not per point
        grouped.setdefault((s["adapter"], s["reason"]), []).append(f"{s['operation']}/{s['dtype']}")
    for (adapter, reason), what in grouped.items():
        _print(f"[skip] {adapter}: {', '.join(what)}: {reason}")


def _print(line: str) -> None:
    print(line, flush=True)


def _status(message: str) -> None:
    """A rewritten status line on a terminal (stderr) while a long measurement runs; "" clears it.
    Nothing when stderr is not a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[2K{message}")
        sys.stderr.flush()
