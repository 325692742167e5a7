"""Speed statements per implementation: scaling exponent, % of peak, throughput vs the reference.

Clause perf.* says performance is reported, not judged: a statement is "reported" unless the user
set a budget (`--max-exponent`, `--min-pct-peak`, `--min-ratio-vs-reference`), in which case it is
"pass" or "fail" and becomes a results record with check "speed".
Must not: fail anything without a budget the user chose.
"""
from __future__ import annotations

from collections import defaultdict

from attnconf.conformance.bench.scaling import fit_exponent
from attnconf.conformance.results.record import Record

REFERENCE_ADAPTER = "numpy-reference"


def _in_flops(p: dict) -> bool:
    """Whether the point's operation counts its work in flops (attnconf.operations work_unit):
    perf.scaling and perf.flops are statements about those; a table's entries are not."""
    from attnconf import operations

    return operations.get(p["operation"]).work_unit == "flop"


def scaling(points: list[dict]) -> list[dict]:
    """A fit per series: same adapter, operation, dtype, B, H, E and causal, L = S varying."""
    series = defaultdict(list)
    for p in points:
        if not _in_flops(p) or p["L"] != p["S"]:
            continue
        series[(p["adapter"], p["operation"], p["dtype"], p["B"], p["H"], p["E"], p["causal"])].append(p)
    fits = []
    for (adapter, operation, dtype, B, H, E, causal), ps in series.items():
        ps = sorted(ps, key=lambda p: p["L"])
        if len({p["L"] for p in ps}) < 2:
            continue
        fit = fit_exponent([p["L"] for p in ps], [p["time_s"] for p in ps])
        fits.append({"adapter": adapter, "operation": operation, "dtype": dtype, "B": B, "H": H,
                     "E": E, "causal": causal, "exponent": fit["exponent"],
                     "intercept": fit["intercept"], "fitted_points": fit["points"],
                     "points": [{"L": p["L"], "time_s": p["time_s"]} for p in ps]})
    return fits


def statements(points: list[dict], fits: list[dict], *, max_exponent=None, min_pct_peak=None,
               min_ratio_vs_reference=None) -> list[dict]:
    """Every speed statement, status "reported" or (with a budget) "pass"/"fail"."""
    out = []
    for f in fits:
        if f["exponent"] is None or f["causal"]:
            continue
        out.append(_statement(f, "perf.scaling", "scaling exponent in L", f["exponent"], max_exponent,
                              lambda m, b: m <= b, "<="))
    best = _largest_L(points)
    for key, p in best.items():
        if p.get("pct_peak") is not None:
            out.append(_statement(p, "perf.flops", f"% of {p['dtype']} matmul peak at L={p['L']}",
                                  p["pct_peak"], min_pct_peak, lambda m, b: m >= b, ">="))
        ref = _reference_point(points, p)
        if ref is not None and p["adapter"] != REFERENCE_ADAPTER:
            ratio = _throughput(p) / _throughput(ref)
            out.append(_statement(p, "perf.flops", f"throughput / {REFERENCE_ADAPTER} at L={p['L']}",
                                  ratio, min_ratio_vs_reference, lambda m, b: m >= b, ">="))
    return out


def records(stmts: list[dict]) -> list[dict]:
    """Results records (check "speed") for the statements a budget judged."""
    recs = []
    for s in stmts:
        if s["status"] == "reported":
            continue
        recs.append(Record(adapter=s["adapter"], framework=s.get("framework", ""),
                           operation=s["operation"], case=f"bench/{s['operation']}/{s['what']}",
                           clauses=[s["clause"]], dtype=s["dtype"], check="speed", status=s["status"],
                           metrics={"measured": s["measured"], "budget": s["budget"]},
                           message=s["message"], repro=s.get("repro", "attnconf bench"),
                           duration_s=0.0, options={}, shapes={}).to_json())
    return recs


def _statement(src, clause, what, measured, budget, ok, relation):
    status = "reported" if budget is None else ("pass" if ok(measured, budget) else "fail")
    message = f"{what} = {measured:.3g}" + ("" if budget is None else f" (budget {relation} {budget:g})")
    return {"adapter": src["adapter"], "framework": src.get("framework", ""),
            "operation": src["operation"], "dtype": src["dtype"], "clause": clause, "what": what,
            "measured": measured, "budget": budget, "status": status, "message": message}


def _largest_L(points):
    best = {}
    for p in points:
        if not _in_flops(p) or p["causal"]:
            continue
        key = (p["adapter"], p["operation"], p["dtype"])
        if key not in best or (p["L"], p["H"]) > (best[key]["L"], best[key]["H"]):
            best[key] = p
    return best


def _reference_point(points, p):
    for q in points:
        if q["adapter"] == REFERENCE_ADAPTER and all(
                q[k] == p[k] for k in ("operation", "dtype", "B", "H", "L", "S", "E", "causal")):
            return q
    return None


def _throughput(p) -> float:
    return p["gflops"] if p.get("gflops") is not None else p.get("entries_per_s", 0.0)
