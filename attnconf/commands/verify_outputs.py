"""`attnconf verify-outputs OUTPUTS.npz …`: score outputs computed outside Python against the goldens.

Same judge, same tolerance rule and same results JSON as `attnconf run`; see docs/non-python.md
for the layout of OUTPUTS. Exit 0 when every case with outputs conforms, 1 otherwise, 2 for bad
input. Must not run implementation code.
"""
from __future__ import annotations

import sys

from attnconf import selection
from attnconf.conformance.results.record import FAILING

DEFAULT_JSON = "reports/verify-results.json"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify-outputs", help="score outputs computed elsewhere (C, Rust, CUDA …) against the golden cases",
        description="Judge outputs saved as OUTPUTS.npz (keys '<case id>/<output name>') or a folder of "
                    ".npy files against the golden cases with the tolerance rule of 'attnconf run'.")
    p.add_argument("outputs", nargs="+", metavar="OUTPUTS.npz",
                   help="an .npz of arrays keyed '<case id>/<output name>', or a folder OUTPUTS/<case id>/<name>.npy")
    p.add_argument("--golden-dir", metavar="DIR", help="golden files to judge against (default: the shipped ones)")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help=f"where to write the results JSON (default {DEFAULT_JSON})")
    p.add_argument("--html", metavar="PATH", help="also write an HTML report there")
    p.add_argument("--dtype", metavar="DTYPE",
                   help="the precision the outputs claim (float64, float32, float16, bfloat16); default: "
                        "each case's array dtype")
    p.add_argument("--name", default="external", metavar="NAME",
                   help="the implementation's row name in the results (default 'external')")
    p.add_argument("--select", metavar="EXPR", help=selection.HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from attnconf.conformance.execution import verify_outputs as vo
    from attnconf.dtypes import DTYPE_NAMES
    from attnconf.errors import UsageError
    from attnconf.validation import check_choice

    if args.dtype is not None:
        try:
            check_choice("--dtype", args.dtype, DTYPE_NAMES)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    vo.check_name(args.name)
    json_path = _writable("--json", args.json)
    html_path = _writable("--html", args.html, suffixes=(".html", ".htm")) if args.html else None
    arrays: dict = {}
    for path in args.outputs:
        arrays.update(vo.read_outputs(path))
    if not arrays:
        raise UsageError(f"{', '.join(args.outputs)} should hold .npy arrays keyed '<case id>/<output name>', "
                         f"but holds none")
    all_cases = _load_cases(args.golden_dir)
    cases = vo.select_cases(all_cases, args.select)
    if not cases:
        raise vo.no_cases_error(args.golden_dir, args.select)
    label = args.outputs[0] if len(args.outputs) == 1 else "OUTPUTS"
    _check_output_names(arrays, all_cases, label)
    arrays = {key: native_byte_order(a) for key, a in arrays.items()}
    records, unknown = vo.verify(cases, arrays, name=args.name, dtype=args.dtype, outputs_label=label)
    if arrays and len(unknown) == len(arrays):
        shown = ", ".join(repr(k) for k in sorted(unknown)[:3])
        raise UsageError(f"{label} should hold arrays keyed '<case id>/<output name>' (e.g. "
                         f"'{cases[0].id}/output'), but none of its {len(arrays)} keys names a golden case "
                         f"(got {shown}{', …' if len(unknown) > 3 else ''})")
    if unknown:
        sys.stderr.write(f"attnconf verify-outputs: ignored {len(unknown)} key(s) that name no golden case: "
                         + ", ".join(sorted(unknown)[:5]) + (", …" if len(unknown) > 5 else "") + "\n")
    _write_results(records, json_path, args)
    if html_path:
        _write_report(json_path, html_path)
    return _summarise(records, json_path, html_path)


def native_byte_order(array):
    """The array in this machine's byte order: correct values stored big-endian (a writer on
    another machine, `>f4`) are correct values, byte order is not a wrong answer."""
    if array.dtype.isnative or array.dtype.byteorder == "|":
        return array
    return array.astype(array.dtype.newbyteorder("="))


def _check_output_names(arrays, cases, label) -> None:
    """UsageError naming the first key whose case exists but whose output name the case does not
    have (misspelled, or an output of another operation): never judged as a missing output."""
    from attnconf.errors import UsageError

    outputs = {c.id: tuple(c.expected) for c in cases}
    for key in sorted(arrays):
        case_id, _, name = key.rpartition("/")
        if case_id in outputs and name not in outputs[case_id]:
            raise UsageError(f"{label}: key {key!r} should name an output of {case_id} "
                             f"({', '.join(outputs[case_id])}), but {name!r} is not one")


def _load_cases(golden_dir):
    from attnconf.reference.golden import load_cases

    return load_cases(golden_dir=golden_dir)


def _writable(option: str, path: str, suffixes=(".json",)):
    """Refuse an output path that cannot be written before any work is done."""
    from attnconf.conformance.results.files import check_writable
    from attnconf.errors import UsageError

    if not str(path).endswith(suffixes):
        raise UsageError(f"{option} should be a path ending in {' or '.join(suffixes)}, but got {path!r}")
    return check_writable(path, option=option)


def _write_results(records, json_path, args) -> None:
    from attnconf.conformance.results import files as results

    writer = results.ResultsWriter(json_path, command=["attnconf", "verify-outputs"] + list(args.outputs))
    writer.add_adapter({"name": args.name, "framework": "external", "version": "", "device": "",
                        "available": True, "reason": "",
                        "description": "outputs computed outside attnconf, scored by attnconf verify-outputs"})
    writer.extend(records)
    writer.finish()


def _write_report(json_path, html_path) -> None:
    from attnconf.conformance.report import load_results, render

    runs, _ = load_results([str(json_path)])
    render(runs, str(html_path), baseline=None)


def _summarise(records, json_path, html_path) -> int:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    bad = [r for r in records if r["status"] in FAILING]
    for r in bad[:20]:
        print(f"{r['status'].upper():5} {r['case']} [{r['dtype']}] {r['message'][:200]}")
    if len(bad) > 20:
        print(f"… and {len(bad) - 20} more non-conforming records")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"attnconf verify-outputs: {summary}; results in {json_path}" + (f", report {html_path}" if html_path else ""))
    return 1 if bad else 0
