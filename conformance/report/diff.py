"""The difference between this report's runs and a baseline: status, profile and speed changes.

Records match on (adapter, case, dtype, check, clauses); the run label joins the key only when
every current run has a namesake in the baseline (e.g. the same tox envs before and after), so a
single old results file still diffs against a merged report. Where one key occurs in several runs,
the worst status stands for it, so a regression on any machine shows.

Speed changes count only beyond the noise: when both benchmark points carry a spread (standard
deviation or IQR), a change must exceed 3 × the combined spread; without statistics a fixed 10 %
threshold applies and the report says so.

Must not read files or render HTML.
"""
from __future__ import annotations

import math

from .model import SEVERITY, Run, is_bad, number, status_class, text

NOISE_SIGMAS = 3.0
FALLBACK_RELATIVE = 0.10  # used only when a benchmark point carries no spread statistics
_SPREAD_KEYS = ("time_stddev_s", "stddev_s", "time_iqr_s", "iqr_s")


def _status_index(runs: list[Run], with_run: bool) -> dict[tuple, dict]:
    rank = {s: i for i, s in enumerate(SEVERITY)}
    out: dict[tuple, dict] = {}
    for run in runs:
        for rec in run.records:
            key = (rec["adapter"], rec["case"], rec["dtype"], rec["check"], tuple(rec["clauses"]))
            if with_run:
                key = (run.label,) + key
            old = out.get(key)
            if old is None or rank.get(status_class(rec["status"]), 0) < rank.get(status_class(old["status"]), 0):
                out[key] = rec
    return out


def _status_changes(current: list[Run], baseline: list[Run]) -> dict:
    base_labels = {r.label for r in baseline}
    with_run = bool(current) and all(r.label in base_labels for r in current)
    cur = _status_index(current, with_run)
    base = _status_index(baseline, with_run)
    # Adapters the baseline never measured are not "new failures"; they are listed apart.
    a = 1 if with_run else 0
    base_adapters = {k[a] for k in base}
    not_in_baseline = sorted({k[a] for k in cur} - base_adapters)
    cur = {k: v for k, v in cur.items() if k[a] in base_adapters}
    newly_failing, newly_passing, other = [], [], []
    for key, rec in cur.items():
        old = base.get(key)
        old_status = old["status"] if old else None
        new_status = rec["status"]
        row = {"record": rec, "old": old_status or "(absent)", "new": new_status}
        if old_status == new_status:
            continue
        if is_bad(new_status) and (old_status is None or not is_bad(old_status)):
            newly_failing.append(row)
        elif new_status == "pass" and old_status is not None:
            newly_passing.append(row)
        elif old_status is not None and not (is_bad(new_status) and is_bad(old_status)):
            other.append(row)  # e.g. pass -> skip (coverage lost), fail -> xfail (now expected)
    removed = [base[k] for k in base.keys() - cur.keys()]
    added = len(cur.keys() - base.keys())
    return {"newly_failing": newly_failing, "newly_passing": newly_passing, "other_changes": other,
            "removed": removed, "added": added, "keyed_by_run": with_run,
            "adapters_not_in_baseline": not_in_baseline}


def _profiles(runs: list[Run]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for run in runs:
        for adapter, aspects in run.profiles.items():
            if isinstance(aspects, dict):
                out.setdefault(text(adapter), {}).update(aspects)
    return out


def profile_value(entry) -> str:
    """A profile value as display text; a mapping (e.g. output dtype per input dtype) becomes one
    line per entry, with the entries that map a key to itself folded into one line."""
    value = entry.get("value") if isinstance(entry, dict) else entry
    if isinstance(value, dict) and value:
        same = [text(k) for k, v in value.items() if text(v) == text(k)]
        lines = [f"{text(k)} → {text(v)}" for k, v in value.items() if text(v) != text(k)]
        if same:
            lines.append("each as itself: " + ", ".join(same))
        return "\n".join(lines)
    if value in ({}, []):   # an empty mapping or list: nothing to show, not a literal "{}"
        return "none"
    return text(value, "—")


def _profile_changes(current: list[Run], baseline: list[Run]) -> list[dict]:
    cur, base = _profiles(current), _profiles(baseline)
    changes = []
    for adapter in sorted(cur.keys() & base.keys()):
        for aspect in sorted(cur[adapter].keys() | base[adapter].keys()):
            old = profile_value(base[adapter][aspect]) if aspect in base[adapter] else "(absent)"
            new = profile_value(cur[adapter][aspect]) if aspect in cur[adapter] else "(absent)"
            if old != new:
                changes.append({"adapter": adapter, "aspect": text(aspect), "old": old, "new": new})
    return changes


def point_key(p: dict) -> tuple:
    return tuple(text(p.get(k)) for k in ("adapter", "operation", "dtype", "L", "S", "H", "E", "B", "causal"))


def spread(p: dict) -> float | None:
    for k in _SPREAD_KEYS:
        v = number(p.get(k))
        if v is not None and math.isfinite(v):
            return v
    stats = p.get("stats")
    if isinstance(stats, dict):
        for k in ("stddev", "iqr"):
            v = number(stats.get(k))
            if v is not None and math.isfinite(v):
                return v
    return None


def _points(runs: list[Run]) -> dict[tuple, dict]:
    out = {}
    for run in runs:
        bench = run.benchmarks or {}
        for p in bench.get("points") or []:
            if isinstance(p, dict) and number(p.get("time_s")):
                out[point_key(p)] = p
    return out


def _speed_changes(current: list[Run], baseline: list[Run]) -> list[dict]:
    cur, base = _points(current), _points(baseline)
    changes = []
    for key in sorted(cur.keys() & base.keys()):
        new_t, old_t = number(cur[key]["time_s"]), number(base[key]["time_s"])
        if not old_t or not new_t or old_t <= 0:
            continue
        s_new, s_old = spread(cur[key]), spread(base[key])
        if s_new is not None and s_old is not None:
            threshold = NOISE_SIGMAS * math.hypot(s_new, s_old)
            basis = f"> {NOISE_SIGMAS:g} × combined spread ({threshold:.3g} s)"
        else:
            threshold = FALLBACK_RELATIVE * old_t
            basis = f"> {FALLBACK_RELATIVE:.0%} (no spread statistics in the results)"
        if abs(new_t - old_t) > threshold:
            changes.append({"point": cur[key], "old_s": old_t, "new_s": new_t, "ratio": new_t / old_t,
                            "basis": basis, "slower": new_t > old_t})
    return changes


def diff(current: list[Run], baseline: list[Run]) -> dict:
    """Everything the report's diff section shows; `baseline` may hold several runs."""
    out = _status_changes(current, baseline)
    out["profile_changes"] = _profile_changes(current, baseline)
    out["speed_changes"] = _speed_changes(current, baseline)
    out["baseline_labels"] = [r.label for r in baseline]
    out["baseline_sources"] = [r.source for r in baseline]
    return out
