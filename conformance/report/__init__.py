"""The HTML conformance report: merge results files into one self-contained, escaped page.

    runs, problems = load_results(["reports/torch.json", "reports/jax.json"])
    render(runs, "reports/index.html", baseline="old.json", problems=problems)

The page has no network fetch (CSS, JS and SVG inline; opens from file://), is rendered by Jinja2
with autoescaping, and treats every string from a results file as hostile: it reaches the page
only through autoescaped template text, escaped SVG text, or the `tojson` filter (which escapes
`<`, `>`, `&` and quotes). The script only shows and hides elements and copies text; it never
builds HTML from strings.

Must not import any framework, and must not judge results (that is the suite's job): it shows
them with their denominators, never as one score across implementations.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

import jinja2
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from . import plots
from .diff import diff as diff_runs, profile_value
from .merge import count_cell, merge
from .model import SEVERITY, Run, as_runs, load_results, number, operations_of, plot_hints, status_class, text
from .spec_text import load_spec

__all__ = ["render", "render_html", "load_results", "embedded_records", "Run"]

_TEMPLATES = Path(__file__).parent / "templates"

# Metrics with a row of their own in the drill-down, in this order; the worst element gets one
# row; any other metric goes on one compact line.
_METRIC_ORDER = ("max_abs_error", "max_ulp_error", "baseline_ulp_error", "tolerance_ulps", "rule", "strict_pass")
_WORST = ("worst_index", "worst_actual", "worst_expected")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    return env


def _fmt(value: Any) -> str:
    """Numbers to 4 significant digits (integers exact); anything else as display text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return text(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def _command(cmd: Any) -> str:
    if isinstance(cmd, list):
        return shlex.join(text(c) for c in cmd)
    return text(cmd)


def _provenance(run: Run) -> dict:
    env = run.environment
    fw = env.get("frameworks")
    bench = run.benchmarks or {}
    return {
        "label": run.label, "source": run.source,
        "schema_version": text(run.data.get("schema_version")),
        "suite_version": text(run.data.get("suite_version")),
        "spec_version": text(run.data.get("spec_version")),
        "started_at": text(run.data.get("started_at")), "finished_at": text(run.data.get("finished_at")),
        "command": _command(run.data.get("command")),
        "python": text(env.get("python")), "platform": text(env.get("platform")),
        "cpu": text(env.get("cpu")), "numpy": text(env.get("numpy")), "device": text(env.get("device")),
        "frameworks": sorted((text(k), text(v)) for k, v in fw.items()) if isinstance(fw, dict) else [],
        "machine": _kv(bench.get("machine")) if bench else "",
        "n_records": len(run.records), "has_benchmarks": bool(bench),
        # a run killed halfway says complete=false (older files: unknown, shown as such)
        "complete": run.data.get("complete") if isinstance(run.data.get("complete"), bool) else None,
        "level": text(run.data.get("level")),
        "findings": _findings(run),
    }


def _findings(run: Run) -> list[dict]:
    """Expectation-file findings (entries that match nothing, now pass, ...), as display rows."""
    out = []
    for f in run.data.get("expectation_findings") or []:
        if not isinstance(f, dict):
            continue
        entry = f.get("entry")
        if isinstance(entry, dict):
            scope = " ".join(f"{k}={text(entry[k])}" for k in ("adapter", "dtype", "case", "clause", "check")
                             if k in entry and entry[k] not in (None, "*"))
            reason = text(entry.get("reason"))
        else:
            scope, reason = text(entry), ""
        out.append({"kind": text(f.get("kind")), "scope": scope, "reason": reason, "detail": text(f.get("detail"))})
    return out


_MAX_MESSAGE = 20_000  # a plug-in may raise with megabytes of text; the page must stay usable


def _cap(message: str) -> str:
    if len(message) <= _MAX_MESSAGE:
        return message
    return message[:_MAX_MESSAGE] + f"\n… ({len(message) - _MAX_MESSAGE} more characters in the results file)"


# The records travel as data (issue: a report that scales): global tables in the report-data
# block, then chunks of CHUNK records, each with its own string table, that the page's script
# reads as they arrive (the page answers filters before the last chunk is parsed).
CHUNK = 10_000
PAGE_SIZE = 100   # records listed to a page
# one record, in this order (indexes into the global tables "status", "impl", "dtype", "check",
# "operation"; "s:" fields index the chunk's own string table, "metric_items" is a list of such
# indexes (name, value, …), "repro" one index or [prefix, suffix] around the case; the rest are
# display strings)
RECORD_FIELDS = ("status", "impl", "s:case", "dtype", "check", "operation", "s:clauses", "s:message",
                 "repro", "ulp", "tol", "metric_items", "worst", "s:other_metrics", "s:options",
                 "s:shapes", "duration", "s:conflict")


def _metric_parts(metrics: dict) -> tuple[list[str], str, str]:
    """(flat [name, value, …] of the metrics with a row of their own, the worst element, the
    other metrics on one line)."""
    items: list[str] = []
    for k in _METRIC_ORDER:
        if k in metrics:
            items += [k, _fmt(metrics[k])]
    worst = ""
    if "worst_index" in metrics:
        worst = f"at {_fmt(metrics['worst_index'])}"
        if "worst_actual" in metrics or "worst_expected" in metrics:
            worst += f": got {_fmt(metrics.get('worst_actual'))}, expected {_fmt(metrics.get('worst_expected'))}"
    others = sorted((text(k) for k in metrics if k not in _METRIC_ORDER and k not in _WORST))
    return items, worst, " · ".join(f"{k}={_fmt_nested(metrics[k])}" for k in others)


def _fmt_nested(value: Any) -> str:
    """A metric value for the one-line "other metrics": numbers (also inside mappings and lists,
    e.g. the per-output metrics of a multi-output operation) to 4 significant digits."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{text(k)}: {_fmt_nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt_nested(v) for v in value) + "]"
    return _fmt(value)


class _Tables:
    """Global string tables (a value -> its index)."""

    def __init__(self):
        self.index: dict[str, dict[str, int]] = {}
        self.values: dict[str, list] = {}

    def id(self, table: str, value) -> int:
        idx = self.index.setdefault(table, {})
        key = value if isinstance(value, str) else json.dumps(value)
        if key not in idx:
            idx[key] = len(idx)
            self.values.setdefault(table, []).append(value)
        return idx[key]


def _records_data(records: list[dict], impl_index: dict[str, int]) -> tuple[dict, list[Markup]]:
    """(global tables, the record chunks packed for a <script type=CHUNK_TYPE>: gzip, base64)."""
    tables = _Tables()
    for s in SEVERITY:   # status classes are fixed; raw statuses join as met
        tables.id("status", s)
    chunks: list[Markup] = []
    for start in range(0, len(records), CHUNK):
        strings: dict[str, int] = {}

        def sid(value: str) -> int:
            n = strings.get(value)
            if n is None:
                n = strings[value] = len(strings)
            return n

        rows = []
        for rec in records[start:start + CHUNK]:
            metrics = rec["metrics"]
            items, worst, others = _metric_parts(metrics)
            options = ", ".join(f"{text(k)}={text(v, 'null')}" for k, v in
                                sorted(rec["options"].items(), key=lambda kv: text(kv[0])))
            shapes = "; ".join(f"{text(k)} {text(v)}" for k, v in sorted(rec["shapes"].items(), key=lambda kv: text(kv[0])))
            conflict = rec.get("conflict")
            case, repro = rec["case"], rec["repro"]
            at = repro.find(case) if case else -1
            rows.append([
                tables.id("status", rec["status"]), impl_index[rec["impl"]], sid(case),
                tables.id("dtype", rec["dtype"]), tables.id("check", rec["check"]),
                tables.id("operation", rec["operation"]), sid(" ".join(rec["clauses"])), sid(_cap(rec["message"])),
                # most repro commands are "<prefix><case><suffix>" with prefixes shared: [prefix, suffix]
                [sid(repro[:at]), sid(repro[at + len(case):])] if at >= 0 else sid(repro),
                _fmt(metrics["max_ulp_error"]) if "max_ulp_error" in metrics else "",
                _fmt(metrics["tolerance_ulps"]) if "tolerance_ulps" in metrics else "",
                [sid(x) for x in items], worst, sid(others), sid(options), sid(shapes),
                _fmt(rec["duration_s"]) if rec["duration_s"] is not None else "",
                sid("; ".join(conflict) if conflict else ""),
            ])
        chunks.append(_packed({"s": list(strings), "r": rows}))
    return {k: v for k, v in tables.values.items()}, chunks


# A chunk's JSON travels gzip-compressed and base64-encoded (the page inflates it with the
# browser's DecompressionStream): its repro commands, messages and metric strings repeat
# themselves, so the default run's records take a quarter of their JSON size or less.
CHUNK_TYPE = "application/x-attnconf-gzip-base64"


def _packed(value: Any) -> Markup:
    import base64
    import gzip

    raw = _compact_dumps(value).encode("utf-8")
    return Markup(base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii"))


def _unpacked(block: str) -> Any:
    import base64
    import gzip

    return json.loads(gzip.decompress(base64.b64decode(block)).decode("utf-8"))


def embedded_records(html: str) -> list[dict]:
    """The records a report page holds, decoded from its data blocks back to display fields
    ({"status", "impl", "framework", "run", "case", "dtype", "check", "operation", "clauses",
    "message", "repro", …}), in the page's order: what the page's script lists. For tests and
    tools that read a page without a browser."""
    import re

    data = json.loads(html.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0])
    fields, tables = data["record_fields"], data["tables"]
    out = []
    for block in re.findall(rf'<script type="{CHUNK_TYPE}" class="rec-chunk">(.*?)</script>', html, re.S):
        chunk = _unpacked(block)
        strings = chunk["s"]
        for row in chunk["r"]:
            rec: dict = {}
            for name, value in zip(fields, row):
                if name == "impl":
                    rec["impl"], rec["framework"], rec["run"] = tables["impl"][value]
                elif name == "repro":
                    rec["repro"] = strings[value] if isinstance(value, int) else None
                    rec["_repro"] = value
                elif name == "metric_items":
                    rec["metrics"] = dict(zip([strings[v] for v in value[::2]], [strings[v] for v in value[1::2]]))
                elif name.startswith("s:"):
                    rec[name[2:]] = strings[value]
                elif name in ("status", "dtype", "check", "operation"):
                    rec[name] = tables[name][value]
                else:
                    rec[name] = value
            if rec["repro"] is None:
                rec["repro"] = strings[rec["_repro"][0]] + rec["case"] + strings[rec["_repro"][1]]
            del rec["_repro"]
            out.append(rec)
    return out


def _json_markup(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block: <, >, & and ' escaped as \\u00XX, so
    no string can close the element (what Jinja's `tojson` does), compact separators."""
    return htmlsafe_json_dumps(value, dumps=_compact_dumps)


def _compact_dumps(value: Any, **kw) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str, **kw)


def _skips_by_reason(merged) -> list[dict]:
    """The coverage view of skips: per implementation, its skips (and the passes of invariants
    that declined some examples) counted by reason — the first line of the message ("declined:
    <why>" when the plug-in raised NotImplementedError, "unsupported: <why>" outside what it
    declares) — with the checks, dtypes and a few of the cases each reason covers."""
    from attnconf.errors import declined_message

    prefix = declined_message("")
    groups: dict[str, dict[tuple, dict]] = {}
    for r in merged.records:
        st = status_class(r["status"])
        if st != "skip" and not r["message"].startswith(prefix):
            continue
        reason = (r["message"].splitlines() or [""])[0][:300] or "(no reason given)"
        g = groups.setdefault(r["impl"], {}).setdefault((reason, st), {"n": 0, "checks": [], "dtypes": [], "cases": []})
        g["n"] += 1
        for key, value in (("checks", r["check"]), ("dtypes", r["dtype"])):
            if value not in g[key]:
                g[key].append(value)
        if len(g["cases"]) < _EXAMPLE_CASES and r["case"] not in g["cases"]:
            g["cases"].append(r["case"])
        elif r["case"] not in g["cases"]:
            g["more"] = True
    out = []
    for i in merged.implementations:
        if i.name not in groups:
            continue
        rows = [{"reason": why, "status": st, "n": g["n"], "checks": ", ".join(g["checks"]),
                 "dtypes": ", ".join(g["dtypes"]), "cases": ", ".join(g["cases"]) + (", …" if g.get("more") else "")}
                for (why, st), g in sorted(groups[i.name].items(), key=lambda kv: (-kv[1]["n"], kv[0]))]
        out.append({"impl": i.name, "n": sum(r["n"] for r in rows), "rows": rows})
    return out


_EXAMPLE_CASES = 3


def _coverage(runs: list[Run], merged, ops: dict) -> dict:
    """Implementation × operation: implemented or not (the runs' "coverage" entries), and the
    clauses judged (any status but skip) out of the clauses cited by any implementation's records
    of that operation, so that thin coverage shows; plus the adapters the runs did not run."""
    names = {i.key: i.name for i in merged.implementations}
    several: dict[str, set] = defaultdict(set)
    for run in runs:
        for e in run.entries("coverage"):
            several[text(e.get("adapter"))].add(run.label)
    entries: dict[tuple[str, str], dict] = {}
    rows_order: list[str] = [i.name for i in merged.implementations]
    for run in runs:
        for e in run.entries("coverage"):
            adapter, op = text(e.get("adapter")), text(e.get("operation"))
            name = names.get((run.label, adapter)) or (f"{adapter} [{run.label}]" if len(several[adapter]) > 1 else adapter)
            if name not in rows_order:
                rows_order.append(name)
            entries[(name, op)] = {"implemented": e.get("implemented") is True, "reason": text(e.get("reason"))}
    judged: dict[tuple[str, str], set] = defaultdict(set)
    cited: dict[str, set] = defaultdict(set)
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    judged_all: dict[str, set] = defaultdict(set)
    cited_all: dict[str, set] = defaultdict(set)
    for r in merged.records:
        op, st = r["operation"], status_class(r["status"])
        counts[(r["impl"], op)][st] += 1
        cited[op].update(r["clauses"])
        cited_all[r["impl"]].update(r["clauses"])
        if st != "skip":
            judged[(r["impl"], op)].update(r["clauses"])
            judged_all[r["impl"]].update(r["clauses"])
    seen_ops = {op for (_, op) in entries} | {op for (_, op) in counts}
    order = {name: (meta.get("order") if isinstance(meta.get("order"), int) else 10_000) for name, meta in ops.items()}
    op_names = sorted(seen_ops, key=lambda o: (order.get(o, 10_000), o))
    rows = []
    for name in rows_order:
        cells = []
        for op in op_names:
            e, c = entries.get((name, op)), counts.get((name, op))
            if e is None and not c:
                cells.append(None)
                continue
            cells.append({
                "implemented": True if e is None else e["implemented"], "reason": "" if e is None else e["reason"],
                "judged": len(judged.get((name, op), ())), "cited": len(cited.get(op, ())),
                "records": sum(c.values()) if c else 0, "skips": c.get("skip", 0) if c else 0,
                "thin": bool(c) and len(judged.get((name, op), ())) * 2 < len(cited.get(op, ())),
            })
        rows.append({"impl": name, "cells": cells, "judged": len(judged_all.get(name, ())),
                     "cited": len(cited_all.get(name, ()))})
    titles = {o: text((ops.get(o) or {}).get("title")) for o in op_names}
    not_run = []
    for run in runs:
        for e in run.entries("not_run"):
            not_run.append({"adapter": text(e.get("adapter")), "reason": text(e.get("reason")),
                            "command": text(e.get("command")), "run": run.label})
    return {"operations": [{"name": o, "title": titles[o]} for o in op_names], "rows": rows,
            "has_entries": bool(entries), "not_run": not_run, "several_runs": len(runs) > 1}


def _profile_table(runs: list[Run], impl_names: dict[tuple[str, str], str]) -> dict:
    """Aspects × implementations; a row diverges when the implementations disagree."""
    columns: list[str] = []
    cells: dict[tuple[str, str], dict] = {}
    aspects: list[str] = []
    for run in runs:
        for adapter, prof in run.profiles.items():
            if not isinstance(prof, dict):
                continue
            col = impl_names.get((run.label, text(adapter)), text(adapter))
            if col not in columns:
                columns.append(col)
            for aspect, entry in prof.items():
                aspect = text(aspect)
                if aspect not in aspects:
                    aspects.append(aspect)
                evidence = entry.get("evidence") if isinstance(entry, dict) else ""
                cells[(aspect, col)] = {"value": profile_value(entry), "evidence": text(evidence)}
    # the reference (when present) defines the canonical column; otherwise the most common value
    ref_col = next((c for c in columns if "reference" in c.lower()), None)
    rows = []
    for aspect in aspects:
        values = [cells[(aspect, c)]["value"] for c in columns if (aspect, c) in cells]
        if ref_col and (aspect, ref_col) in cells:
            canonical = cells[(aspect, ref_col)]["value"]
        else:
            canonical = max(set(values), key=values.count) if values else ""
        row_cells = []
        for c in columns:
            cell = cells.get((aspect, c))
            row_cells.append(None if cell is None else {**cell, "differs": cell["value"] != canonical})
        rows.append({"aspect": aspect, "cells": row_cells, "diverges": len(set(values)) > 1})
    return {"columns": columns, "rows": rows, "reference": ref_col}


def _speed_summary(runs: list[Run], several: bool) -> list[dict]:
    """Per (run, adapter, operation, dtype, causal): the largest-L point and the fitted exponent."""
    best: dict[tuple, dict] = {}
    for p in plots.benchmark_points(runs):
        key = (p["_run"], text(p.get("adapter")), text(p.get("operation")), text(p.get("dtype")), bool(p.get("causal")))
        if key not in best or number(p["L"]) > number(best[key]["L"]):
            best[key] = p
    exps = plots.scaling_exponents(runs)
    peaks = {}
    for run in runs:
        pk = (run.benchmarks or {}).get("peak_gflops")
        if isinstance(pk, dict):
            for d, v in pk.items():
                peaks[(run.label, text(d))] = number(v)
    rows = []
    for key, p in sorted(best.items()):
        run_label, adapter, op, dtype, causal = key
        rows.append({"impl": adapter + (f" [{run_label}]" if several else ""), "adapter": adapter,
                     "operation": op + (" causal" if causal else ""),
                     "dtype": dtype, "L": _fmt(p.get("L")), "gflops": _fmt(p.get("gflops")),
                     "pct_peak": _fmt(p.get("pct_peak")), "time_s": _fmt(p.get("time_s")),
                     # memory-bound operations (perf.bytes) report GB/s against the copy probe
                     "gbps": _fmt(p.get("gbps")), "pct_bandwidth": _fmt(p.get("pct_bandwidth")),
                     "peak_rss_mb": _fmt(p.get("peak_rss_mb")),
                     "exponent": _fmt(plots.lookup_exponent(exps, plots.scaling_key(run_label, p))),
                     "peak": _fmt(peaks.get((run_label, dtype)))})
    return rows


def _speed_statements(runs: list[Run]) -> list[dict]:
    """The speed checks stated as conformance statements (reported, or judged against a budget)."""
    out = []
    for run in runs:
        bench = run.benchmarks or {}
        for st in bench.get("statements") or []:
            if isinstance(st, dict):
                out.append({"adapter": text(st.get("adapter")), "operation": text(st.get("operation")),
                            "dtype": text(st.get("dtype")), "clause": text(st.get("clause")),
                            "what": text(st.get("what")), "measured": _fmt(st.get("measured")),
                            "budget": _fmt(st.get("budget")) if st.get("budget") is not None else "",
                            "status": text(st.get("status"))})
        for sk in bench.get("skipped") or []:
            if isinstance(sk, dict):
                out.append({"adapter": text(sk.get("adapter")), "operation": text(sk.get("operation")),
                            "dtype": text(sk.get("dtype")), "clause": "", "what": "not measured",
                            "measured": text(sk.get("reason")), "budget": "", "status": "skip"})
    return out


def _kv(value: Any) -> str:
    """A small mapping (e.g. benchmark machine info) as 'key: value · key: value'."""
    if isinstance(value, dict):
        return " · ".join(f"{text(k)}: {text(v)}" for k, v in value.items())
    return text(value)


def _glance_speed(rows: list[dict], adapter: str, ops: dict) -> str:
    """One phrase for the at-a-glance table: throughput at the largest L (float32 preferred)."""
    mine = [r for r in rows if r["adapter"] == adapter]
    if not mine:
        return ""
    # the headline figure: plain (non-causal) speed of the operation whose metadata says so
    # (report "headline"), in float32 when measured
    headline = {name for name in ops if plot_hints(ops, name).get("headline") is True}
    prefs = (lambda r: r["operation"] in headline and r["dtype"] == "float32", lambda r: r["dtype"] == "float32",
             lambda r: bool(r["gflops"]))
    r = next((r for pref in prefs for r in mine if pref(r)), mine[0])
    pct = f", {r['pct_peak']}% of peak" if r["pct_peak"] else ""
    return f"{r['operation']}: {r['gflops']} GFLOP/s{pct} at L={r['L']} ({r['dtype']})"


def _impl_rows(merged, profiles: dict, speed_rows: list[dict], ops: dict) -> list[dict]:
    """The at-a-glance and by-section rows, one per implementation."""
    rows = []
    for i in merged.implementations:
        col = profiles["columns"].index(i.name) if i.name in profiles["columns"] else None
        rows.append({
            "name": i.name, "adapter": i.adapter, "run": i.run, "framework": i.framework, "device": i.device,
            "verdict": i.verdict, "total": i.total, "counts": count_cell(i.counts), "raw_counts": dict(i.counts),
            "strict_pass": i.strict_pass, "strict_total": i.strict_total,
            "sections": [count_cell(i.by_section[s]) if i.by_section.get(s) else None for s in merged.sections],
            "divergences": [] if col is None else [
                (row["aspect"], row["cells"][col]["value"]) for row in profiles["rows"]
                if row["cells"][col] is not None and row["cells"][col]["differs"]],
            "speed": _glance_speed(speed_rows, i.adapter, ops),
        })
    return rows


def _matrix_rows(merged, spec: dict, clause_sections: dict[str, str]) -> list[dict]:
    """Clause × implementation cells; each clause links to its heading in the embedded spec text."""
    titles = {str(c["id"]): text(c.get("title")) for c in spec["clauses"]}
    anchors = {str(c["id"]): text(c.get("anchor")) or str(c["id"]) for c in spec["clauses"]}
    rows = []
    for cid in merged.clause_ids:
        anchor = anchors.get(cid, cid)
        cells = [merged.clause_cells.get((cid, i.key)) for i in merged.implementations]
        rows.append({
            "id": cid, "title": titles.get(cid, ""), "section": clause_sections.get(cid, cid.split(".")[0]),
            "href": f"#spec-{anchor}" if anchor in spec["anchors"] else f"#clause-{cid}",
            "cells": [count_cell(c) if c else None for c in cells], "known": cid in titles,
        })
    return rows


def build_context(runs: list[Run], *, baseline: list[Run] | None = None, problems: Iterable[str] = ()) -> dict:
    """Everything the template shows, from normalised runs (and an optional baseline)."""
    spec = load_spec()
    ops = operations_of(runs)
    clause_sections = {str(c["id"]): str(c.get("section") or str(c["id"]).split(".")[0]) for c in spec["clauses"]}
    merged = merge(runs, clause_sections, [str(c["id"]) for c in spec["clauses"]],
                   [s["id"] for s in spec["sections"] if s.get("id")] or None, ops)
    profiles = _profile_table(runs, {i.key: i.name for i in merged.implementations})
    speed_rows = _speed_summary(runs, len(runs) > 1)
    impls = _impl_rows(merged, profiles, speed_rows, ops)
    section_titles = {s["id"]: s["title"] for s in spec["sections"]}
    all_problems = list(problems) + spec["problems"]
    all_problems += [f"{r.label}: the run did not finish (complete=false); the records it wrote before "
                     f"stopping are shown" for r in runs if r.data.get("complete") is False]
    if merged.conflicts:
        all_problems.append(f"{len(merged.conflicts)} measurement(s) have different statuses in the merged files; "
                            "see Conflicts")
    impl_index = {i.name: n for n, i in enumerate(merged.implementations)}
    tables, chunks = _records_data(merged.records, impl_index)
    ctx = {
        "title": "attnconf conformance report",
        "generated_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "report_suite_version": _suite_version(),
        "problems": all_problems,
        "runs": [_provenance(r) for r in runs],
        "impls": impls,
        "sections": [{"id": s, "title": section_titles.get(s, s)} for s in merged.sections],
        "matrix": _matrix_rows(merged, spec, clause_sections),
        "skips": _skips_by_reason(merged),
        "coverage": _coverage(runs, merged, ops),
        "conflicts": merged.conflicts[:_MAX_CONFLICT_ROWS], "n_conflicts": len(merged.conflicts),
        "profiles": profiles,
        "n_records": len(merged.records),
        "record_chunks": chunks, "chunk_type": CHUNK_TYPE, "page_size": PAGE_SIZE,
        "frameworks": merged.frameworks, "dtypes": merged.dtypes, "statuses": merged.statuses,
        "impl_names": [i.name for i in merged.implementations],
        "spec": spec,
        "attention_plots": plots.attention_error_plots(merged.records, ops),
        "encoding_plots": plots.encoding_error_plots(merged.records, ops),
        "speed_plots": plots.speed_plots(runs),
        "speed_rows": speed_rows,
        "speed_statements": _speed_statements(runs),
        "diff": diff_runs(runs, baseline) if baseline else None,
    }
    ctx["data"] = {  # machine-readable summary, embedded via the escaping `tojson` filter
        "runs": [{"label": r["label"], "source": r["source"], "records": r["n_records"]} for r in ctx["runs"]],
        "implementations": [{"name": i["name"], "framework": i["framework"], "verdict": i["verdict"],
                             "counts": i["raw_counts"]} for i in impls],
        "problems": all_problems,
        # what the page's script needs to list the records (see RECORD_FIELDS)
        "n_records": len(merged.records), "n_chunks": len(chunks), "record_fields": list(RECORD_FIELDS),
        "tables": {**tables, "impl": [[i.name, i.framework, i.run] for i in merged.implementations],
                   "status_class": [status_class(s) for s in tables.get("status", [])]},
    }
    return ctx


_MAX_CONFLICT_ROWS = 500   # the page lists this many; the count says how many there are


def _suite_version() -> str:
    from attnconf import __version__

    return __version__


def _as_baseline(baseline: Any, problems: list[str]) -> list[Run] | None:
    if baseline is None:
        return None
    items = baseline if isinstance(baseline, (list, tuple)) else [baseline]
    out: list[Run] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            loaded, probs = load_results([item])
            problems.extend(f"baseline {p}" for p in probs)
            out.extend(loaded)
        else:
            out.extend(as_runs([item], default_prefix="baseline"))
    return out


def render_html(runs: Iterable[Any], *, baseline: Any = None, problems: Iterable[str] = ()) -> str:
    """The report page as a string (see `render`)."""
    problems = list(problems)
    runs = as_runs(runs)
    base = _as_baseline(baseline, problems)
    ctx = build_context(runs, baseline=base, problems=problems)
    if base is not None and not base:
        ctx["problems"].append("baseline: no readable baseline run, so no diff is shown")
    return _env().get_template("report.html.j2").render(**ctx)


def render(runs: Iterable[Any], out_path: str | os.PathLike, *, baseline: Any = None,
           problems: Iterable[str] = ()) -> Path:
    """Write the report for `runs` (Runs from `load_results`, parsed results dicts, or paths) to
    `out_path`; `baseline` (path, dict, Run or a list of them) adds the diff section; `problems`
    are one-line notes (e.g. unreadable inputs) shown at the top of the page. Returns the path."""
    page = render_html(runs, baseline=baseline, problems=problems)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees a half-written page
    return out

