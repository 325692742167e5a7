"""Inline SVG plots for the report: error vs position / L per dtype, GFLOP/s and % of peak vs L.

Plots are built as SVG text here, with every label escaped (series names come from adapters), and
inserted into the page as markup: no plotting library, no script, no network. Axes are log-scaled
where the quantity spans decades (errors, L, time); zero errors are drawn at the axis floor and
the floor is labelled so.

Must not read files; the only untrusted input is names and numbers, and names are escaped here.
"""
from __future__ import annotations

import math
from collections import defaultdict

from markupsafe import Markup, escape

from .model import Run, is_bad, number, text

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22")
ERROR_FLOOR_ULP = 0.01  # an exactly-correct result (0 ulp) is drawn here on a log axis


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e5:
        return f"{v:.4g}"
    return f"{v:.2g}"


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        if b - a <= 2:  # a narrow range: decades alone would leave the axis nearly unlabelled
            return [m * 10.0 ** e for e in range(a, b + 1) for m in (1, 2, 5)]
        step = max(1, (b - a) // 6)
        return [10.0 ** e for e in range(a, b + 1, step)]
    if hi == lo:
        return [lo]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2) if start + i * step <= hi + 1e-12 * abs(hi)]


W, H, LEFT, RIGHT, TOP, BOTTOM = 600, 330, 70, 16, 28, 48  # plot box in SVG user units


class _Axes:
    """Data ranges and the data -> SVG coordinate maps of one plot."""

    def __init__(self, pts: list[tuple[float, float]], logx: bool, logy: bool):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if logx:
            x0, x1 = x0 / 1.3, x1 * 1.3
        elif x0 == x1:
            x0, x1 = x0 - 1, x1 + 1
        if logy:
            y0, y1 = y0 / 2, y1 * 2
        else:
            pad = (y1 - y0) * 0.08 or 1.0
            y0, y1 = min(0.0, y0 - pad), y1 + pad
        self.x0, self.x1, self.y0, self.y1, self.logx, self.logy = x0, x1, y0, y1, logx, logy

    def _f(self, v: float, log: bool) -> float:
        return math.log10(v) if log else v

    def px(self, v: float) -> float:
        f = lambda u: self._f(u, self.logx)  # noqa: E731
        return LEFT + (f(v) - f(self.x0)) / ((f(self.x1) - f(self.x0)) or 1) * (W - LEFT - RIGHT)

    def py(self, v: float) -> float:
        f = lambda u: self._f(u, self.logy)  # noqa: E731
        return TOP + (1 - (f(v) - f(self.y0)) / ((f(self.y1) - f(self.y0)) or 1)) * (H - TOP - BOTTOM)


def _frame(ax: _Axes, xlabel: str, ylabel: str, y_floor: float | None) -> list[str]:
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" class="frame"/>']
    for t in _ticks(ax.x0, ax.x1, ax.logx):
        if ax.x0 <= t <= ax.x1:
            out.append(f'<line x1="{ax.px(t):.1f}" x2="{ax.px(t):.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="grid"/>'
                       f'<text x="{ax.px(t):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{_fmt(t)}</text>')
    for t in _ticks(ax.y0, ax.y1, ax.logy):
        if ax.y0 <= t <= ax.y1:
            label = _fmt(t) + ("↓0" if y_floor is not None and abs(t - y_floor) < 1e-12 else "")
            out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{ax.py(t):.1f}" y2="{ax.py(t):.1f}" class="grid"/>'
                       f'<text x="{LEFT - 4}" y="{ax.py(t) + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
               f'text-anchor="middle">{escape(ylabel)}</text>')
    return out


def _draw_series(ax: _Axes, i: int, s: dict, xlabel: str, ylabel: str, y_floor: float | None) -> list[str]:
    color = s.get("color") or PALETTE[i % len(PALETTE)]
    spts = [(x, max(y, y_floor) if y_floor is not None else y, bool(flag and flag[0]))
            for x, y, *flag in s["points"]]
    spts = sorted(p for p in spts if (p[0] > 0 or not ax.logx) and (p[1] > 0 or not ax.logy))
    if not spts:
        return []
    out = []
    dash = ' stroke-dasharray="6 4"' if s.get("dashed") else ""
    if len(spts) > 1 and s.get("line", True):
        path = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y, _ in spts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
    if s.get("markers", True):
        for x, y, bad in spts:
            # a ring marks a point where some case did not conform
            ring = f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="6" class="badpt"/>' if bad else ""
            out.append(f'{ring}<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{color}">'
                       f'<title>{escape(s["name"])}: {escape(xlabel)}={_fmt(x)}, {escape(ylabel)}={_fmt(y)}'
                       f'{" (not conforming)" if bad else ""}</title></circle>')
    lx, ly = 10 + (i % 3) * 196, H + 4 + (i // 3) * 16
    sample = (f'<line x1="{lx}" x2="{lx + 18}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>'
              if s.get("line", True) else f'<circle cx="{lx + 9}" cy="{ly}" r="3.5" fill="{color}"/>')
    out.append(f'{sample}<text x="{lx + 22}" y="{ly + 4}" class="legend">{escape(s["name"][:40])}</text>')
    return out


def svg_plot(title: str, series: list[dict], *, xlabel: str, ylabel: str, logx: bool = True,
             logy: bool = True, y_floor: float | None = None, note: str = "") -> Markup:
    """series: [{"name", "points": [(x, y[, bad])], "color", "line", "dashed", "markers"}] -> <svg>.

    Points with x <= 0 (log x) or y <= 0 (log y) cannot be drawn and are left out; with `y_floor`,
    smaller y values (e.g. exact zeros) are drawn at the floor instead."""
    pts = [(x, max(y, y_floor) if y_floor is not None else y) for s in series for x, y, *_ in s["points"]]
    pts = [(x, y) for x, y in pts if (x > 0 or not logx) and (y > 0 or not logy)]
    if not pts:
        return Markup("")
    ax = _Axes(pts, logx, logy)
    total_h = H + 16 * ((len(series) + 2) // 3) + 8
    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {total_h}" '
           f'width="{W}" height="{total_h}" role="img" aria-label="{escape(title)}">',
           f'<text x="{W / 2}" y="16" text-anchor="middle" class="ptitle">{escape(title)}</text>']
    out += _frame(ax, xlabel, ylabel, y_floor)
    for i, s in enumerate(series):
        out += _draw_series(ax, i, s, xlabel, ylabel, y_floor)
    if note:
        out.append(f'<text x="{W - RIGHT}" y="{TOP - 6}" text-anchor="end" class="pnote">{escape(note)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


# --- accuracy plots ---------------------------------------------------------------------------

def _dim(shapes: dict, names: tuple[str, ...], axis: int) -> float | None:
    for n in names:
        shape = shapes.get(n)
        if isinstance(shape, list) and len(shape) > abs(axis) - (1 if axis < 0 else 0):
            try:
                return float(shape[axis])
            except (TypeError, ValueError, IndexError):
                return None
    return None


def _ulp(rec: dict) -> float | None:
    v = number(rec["metrics"].get("max_ulp_error"))
    return v if v is not None and math.isfinite(v) else None


def _in_plot(plot: str, ops: dict) -> dict[str, dict]:
    """{operation: its `report` hints} for the operations the results files' metadata (`ops`,
    model.operations_of) draws in `plot`; an operation the files do not describe is drawn in none."""
    out = {}
    for name, meta in ops.items():
        hints = meta.get("report") if isinstance(meta, dict) else None
        if isinstance(hints, dict) and hints.get("plot") == plot:
            if plot == "attention":
                length = hints.get("length")
                if not (isinstance(length, (list, tuple)) and len(length) == 2 and isinstance(length[0], str)
                        and isinstance(length[1], int) and not isinstance(length[1], bool)):
                    continue   # a malformed hint draws nothing rather than breaking the page
            out[name] = hints
    return out


def attention_error_plots(records: list[dict], ops: dict) -> list[Markup]:
    """Max error (ulps of natural scale) vs L, one plot per dtype, one series per implementation
    (and operation: a series' name carries the entry's label, "impl (vjp)")."""
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    entries = _in_plot("attention", ops)
    for rec in records:
        entry = entries.get(rec["operation"]) if rec["check"] == "agreement" else None
        if entry is None:
            continue
        err = _ulp(rec)
        length, axis = entry["length"]
        L = _dim(rec["shapes"], (length,), axis)
        if err is None or L is None:
            continue
        name = rec["impl"] + (f" ({text(entry['label'])})" if entry.get("label") else "")
        groups[rec["dtype"]][name].append((L, err, is_bad(rec["status"])))
    return [svg_plot(f"Attention: max error vs L — {dtype}", _series(by_name, line=False), xlabel="L (queries)",
                     ylabel="max error (ulp of natural scale)", y_floor=ERROR_FLOOR_ULP)
            for dtype, by_name in sorted(groups.items())]


def encoding_error_plots(records: list[dict], ops: dict) -> list[Markup]:
    """Max error vs the largest position of the case (offset + num_positions − 1), per dtype.

    A record may carry `metrics.error_by_position` ([[position, ulp], …]); those points are used
    instead of the one summary point when present.
    """
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    entries = _in_plot("encoding", ops)
    for rec in records:
        if rec["check"] != "agreement" or rec["operation"] not in entries:
            continue
        per_pos = rec["metrics"].get("error_by_position")
        name = rec["impl"]
        if isinstance(per_pos, list):
            for item in per_pos:
                if isinstance(item, (list, tuple)) and len(item) == 2 and number(item[0]) is not None and number(item[1]) is not None:
                    groups[rec["dtype"]][name].append((number(item[0]) + 1, number(item[1])))
            continue
        err = _ulp(rec)
        opts = rec["options"]
        offset = number(opts.get("offset")) or 0.0
        n = number(opts.get("num_positions")) or _dim(rec["shapes"], ("output",), -2)
        if err is None or n is None:
            continue
        groups[rec["dtype"]][name].append((offset + n, err, is_bad(rec["status"])))  # +1 on the largest position so p=0 shows on a log axis
    return [svg_plot(f"Encodings: max error vs position — {dtype}", _series(by_name, line=False),
                     xlabel="largest position + 1", ylabel="max error (ulp of natural scale)",
                     y_floor=ERROR_FLOOR_ULP)
            for dtype, by_name in sorted(groups.items())]


def _series(by_name: dict[str, list], *, line: bool = True) -> list[dict]:
    """One series per name; several points at one x keep the worst y (what a reader must see),
    flagged bad when any of them did not conform."""
    out = []
    for name, pts in sorted(by_name.items()):
        best: dict[float, float] = {}
        bad: dict[float, bool] = {}
        for x, y, *flag in pts:
            best[x] = max(y, best.get(x, y))
            bad[x] = bad.get(x, False) or bool(flag and flag[0])
        out.append({"name": name, "points": [(x, best[x], bad[x]) for x in sorted(best)], "line": line})
    return out


# --- speed plots --------------------------------------------------------------------------------

def benchmark_points(runs: list[Run]) -> list[dict]:
    out = []
    for run in runs:
        bench = run.benchmarks
        if not bench:
            continue
        for p in bench.get("points") or []:
            if isinstance(p, dict) and number(p.get("L")):
                out.append({**p, "_run": run.label})
    return out


def _series_name(p: dict, several_runs: bool) -> str:
    name = f"{text(p.get('adapter'), '?')} {text(p.get('operation'), '')}".strip()
    if p.get("causal"):
        name += " causal"
    if several_runs:
        name += f" [{p['_run']}]"
    return name


def scaling_key(run_label: str, item: dict) -> tuple:
    """(run, adapter, dtype, operation, causal): scaling fits may or may not name the last two."""
    op = text(item.get("operation")) or None
    causal = bool(item["causal"]) if isinstance(item.get("causal"), bool) else None
    return (run_label, text(item.get("adapter")), text(item.get("dtype")), op, causal)


def scaling_exponents(runs: list[Run]) -> dict[tuple, float]:
    out = {}
    for run in runs:
        for s in (run.benchmarks or {}).get("scaling") or []:
            if isinstance(s, dict) and number(s.get("exponent")) is not None:
                out[scaling_key(run.label, s)] = number(s["exponent"])
    return out


def lookup_exponent(scaling: dict[tuple, float], key: tuple) -> float | None:
    """The most specific fit for a series: by operation and causality when the fit says them."""
    run, adapter, dtype, op, causal = key
    for k in ((run, adapter, dtype, op, causal), (run, adapter, dtype, op, None), (run, adapter, dtype, None, None)):
        if k in scaling:
            return scaling[k]
    return None


def speed_plots(runs: list[Run]) -> list[Markup]:
    """Per dtype: GFLOP/s vs L, % of peak vs L, and time vs L with the fitted scaling line."""
    pts = benchmark_points(runs)
    if not pts:
        return []
    several = len({p["_run"] for p in pts}) > 1
    scaling = scaling_exponents(runs)
    plots = []
    for dtype in sorted({text(p.get("dtype")) for p in pts}):
        sel = [p for p in pts if text(p.get("dtype")) == dtype]
        for key, label, logy in (("gflops", "GFLOP/s", True), ("pct_peak", "% of peak", False)):
            by = defaultdict(list)
            for p in sel:
                v = number(p.get(key))
                if v is not None and math.isfinite(v):
                    by[_series_name(p, several)].append((number(p["L"]), v))
            if by:
                plots.append(svg_plot(f"{label} vs L — {dtype}", _series(by), xlabel="L = S", ylabel=label,
                                      logy=logy))
        series = []
        by = defaultdict(list)
        for p in sel:
            t = number(p.get("time_s"))
            if t and t > 0:
                by[(_series_name(p, several), scaling_key(p["_run"], p))].append((number(p["L"]), t))
        for n, ((name, skey), xy) in enumerate(sorted(by.items())):
            color = PALETTE[n % len(PALETTE)]
            # measured times as markers, so that the fitted line through them stays visible
            series.append({"name": name, "points": sorted(xy), "color": color, "line": False})
            k = lookup_exponent(scaling, skey)
            if k is not None and len(xy) >= 1:
                # intercept by least squares with the reported slope fixed: log t = k log L + c
                c = sum(math.log(t) - k * math.log(L) for L, t in xy) / len(xy)
                lo, hi = min(L for L, _ in xy), max(L for L, _ in xy)
                series.append({"name": f"{name}: fit L^{k:.2f}", "dashed": True, "markers": False, "color": color,
                               "points": [(lo, math.exp(c) * lo ** k), (hi, math.exp(c) * hi ** k)]})
        if series:
            plots.append(svg_plot(f"Time vs L with fitted scaling — {dtype}", series, xlabel="L = S",
                                  ylabel="time (s)"))
    return plots
