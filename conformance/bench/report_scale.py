"""How the HTML report scales: page size, `attnconf report` time and peak memory, and the page's
responsiveness in headless Chromium, on a real results file and a large synthetic one.

    python -m attnconf.conformance.bench.report_scale [--records 200000] [--results reports/run.json]

For what: the report's targets (issue "a report that scales"): the default run's page ≤ 3 MB,
answering a filter ≤ 1 s after navigation and each filter ≤ 200 ms; 200 000 records: `attnconf
report` ≤ 60 s and ≤ 1.5 GiB peak, page ≤ 60 MB, usable ≤ 5 s. Printed, never judged (machine
load changes every figure; the load average is printed with them).
`synthetic_results(n)` writes a results document shaped like a merged matrix: many adapters and
frameworks, every spec clause, four float dtypes, all statuses, realistic messages and metrics,
repro commands; the browser test uses it too.
Must not: import a framework; the browser part needs Playwright and Chromium (skipped, said so,
when either is missing).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = os.environ.get("ATTNCONF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                 "--disable-default-apps"]

_FRAMEWORKS = ("torch", "jax", "tensorflow", "keras", "onnxruntime", "transformers", "numpy", "mlx")
_DTYPES = ("float32", "float64", "float16", "bfloat16")
_STATUSES = (("pass", 70), ("skip", 14), ("fail", 6), ("xfail", 5), ("error", 3), ("crash", 1), ("timeout", 1))
_SKIP_REASONS = ("declined: no float64 kernel", "declined: only L == S", "unsupported: GQA (Hkv < H)",
                 "declined: float masks are not supported", "unsupported: dtype bfloat16 not declared",
                 "declined: window must be symmetric")
_ERRORS = ("RuntimeError: expected scalar type Float but found Half",
           "ValueError: Shapes (2, 4, 17, 16) and (2, 4, 33, 16) are incompatible",
           "TypeError: sdpa() got an unexpected keyword argument 'softcap'",
           "XlaRuntimeError: INVALID_ARGUMENT: dot_general requires contracting dimensions to have the same shape")


def _clauses() -> list[str]:
    from attnconf import spec

    try:
        return [str(c["id"]) for c in spec.load_index().get("clauses", []) if isinstance(c, dict) and c.get("id")]
    except Exception:
        return ["sdpa.scale.default", "sdpa.causal.bottom_right", "sdpa.mask.bool", "enc.sin.formula"]


def synthetic_results(n_records: int, *, n_adapters: int = 30, seed: int = 0) -> dict:
    """A schema-valid results document of `n_records` records (deterministic for a seed)."""
    from attnconf.conformance.results.files import new_document

    rng = random.Random(seed)
    clauses = _clauses()
    prefixes = sorted({c.split(".")[0] for c in clauses})
    adapters = [(f"{_FRAMEWORKS[i % len(_FRAMEWORKS)]}-impl-{i:02d}", _FRAMEWORKS[i % len(_FRAMEWORKS)])
                for i in range(n_adapters)]
    doc = new_document(command=["attnconf", "run", "--json", "synthetic.json"])
    doc["adapters"] = [{"name": a, "framework": f, "version": "1.0"} for a, f in adapters]
    weights = [w for _, w in _STATUSES]
    names = [s for s, _ in _STATUSES]
    records = []
    per_adapter = max(1, n_records // n_adapters)
    n_cases = max(1, per_adapter // (len(_DTYPES) * 2))
    for k in range(n_records):
        a = min(k // per_adapter, n_adapters - 1)
        adapter, fw = adapters[a]
        j = k - a * per_adapter
        dtype = _DTYPES[j % len(_DTYPES)]
        case_no = (j // len(_DTYPES)) % n_cases
        op = prefixes[case_no % len(prefixes)]
        cls = [c for c in clauses if c.startswith(op + ".")] or clauses
        cl = [cls[case_no % len(cls)], cls[(case_no * 7 + 3) % len(cls)]]
        check = "agreement" if (j // (len(_DTYPES) * n_cases)) % 2 == 0 else "invariant"
        L, S, E = 1 + case_no % 257, 1 + (case_no * 3) % 129, (8, 16, 64, 128)[case_no % 4]
        block = j // (len(_DTYPES) * n_cases)   # (case, dtype, check) stays unique per adapter
        case = f"{op}/{'_'.join(cl[0].split('.')[1:])}_{case_no}_l{L}_s{S}_e{E}" + (f"_k{block}" if block else "")
        status = rng.choices(names, weights)[0]
        ulp = round(rng.lognormvariate(0, 2), 3)
        metrics: dict = {"max_abs_error": ulp * 1e-7, "max_ulp_error": ulp, "baseline_ulp_error": round(ulp / 2, 3),
                         "tolerance_ulps": 8.0, "rule": "max(8 ulp, 2 × baseline)", "strict_pass": ulp < 1}
        if status == "pass":
            msg = f"max error {ulp} ulp within tolerance 8"
        elif status == "fail":
            metrics["worst_index"] = [0, case_no % 4, L - 1, E - 1]
            metrics["worst_actual"], metrics["worst_expected"] = 0.25 + ulp, 0.25
            msg = f"max error {ulp + 8} ulp exceeds the tolerance 8 at {metrics['worst_index']}"
        elif status == "skip":
            metrics = {}
            msg = rng.choice(_SKIP_REASONS)
        elif status == "xfail":
            msg = f"expected failure: {cl[0]} differs (documented in {fw}.json)"
        elif status == "error":
            metrics = {}
            msg = rng.choice(_ERRORS) + "\nTraceback (most recent call last):\n  File \"adapter.py\", line 42, in sdpa\n    return impl(q, k, v)"
        elif status == "crash":
            metrics = {}
            msg = "worker died with signal 11 (SIGSEGV)"
        else:
            metrics = {}
            msg = "over the time budget of 60 s"
        records.append({
            "adapter": adapter, "framework": fw, "operation": op, "case": case, "clauses": cl, "dtype": dtype,
            "check": check, "status": status, "metrics": metrics, "message": msg,
            "repro": f"attnconf run --adapter {adapter} --select '{case}' --dtype {dtype}",
            "duration_s": round(rng.random() / 10, 4),
            "options": {"is_causal": case_no % 2 == 0, "scale": None if case_no % 3 else 0.125},
            "shapes": {"query": [2, 4, L, E], "key": [2, 4, S, E], "value": [2, 4, S, E]},
        })
    doc["results"] = records
    doc["complete"] = True
    doc["finished_at"] = doc["started_at"]
    doc["coverage"] = [{"adapter": a, "operation": op, "implemented": (i + p) % 5 != 0,
                        "reason": "" if (i + p) % 5 else f"{a} has no {op} method"}
                       for i, (a, _) in enumerate(adapters) for p, op in enumerate(prefixes)]
    doc["not_run"] = [{"adapter": "flash-attn", "reason": "GPU only (no CUDA device)",
                       "command": "attnconf run --adapter flash-attn"}]
    return doc


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _probe() -> float:
    """How slow this machine is right now: one pure-Python loop (load shows in every figure)."""
    t = time.perf_counter()
    s = 0
    for i in range(1_000_000):
        s += i
    return time.perf_counter() - t


def time_report(results: list[Path], out: Path, python: str = sys.executable) -> dict:
    """`attnconf report` in a fresh process of `python` (another checkout's interpreter measures
    that checkout: before and after): wall and CPU time, peak RSS of that process, page size."""
    code = ("import resource,sys,time;from attnconf.cli import main;t=time.perf_counter();"
            f"rc=main(['report',*{[str(r) for r in results]!r},'--html',{str(out)!r}]);"
            "u=resource.getrusage(resource.RUSAGE_SELF);"
            "print(time.perf_counter()-t, u.ru_maxrss, rc, u.ru_utime+u.ru_stime, file=sys.stderr)")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1].split() if proc.stderr.strip() else []
    if len(last) != 4:
        raise RuntimeError(f"attnconf report failed: {proc.stderr[-2000:]}")
    return {"seconds": float(last[0]), "peak_mib": int(last[1]) / 1024, "rc": int(last[2]), "cpu_s": float(last[3]),
            "page_mb": out.stat().st_size / 1e6}


# the status filter has answered: "showing X of N" with X < N
_ANSWERED = ("() => { const e = document.getElementById('shown-count'); if (!e) return false;"
             " const m = e.parentNode.textContent.match(/showing ([0-9]+) of ([0-9]+)/); return !!m && +m[1] < +m[2]; }")
# one filter change as a reader makes it, timed by the page's clock until the next frame is
# drawn (script, style, layout and paint; without the driver's own round trips)
_CHANGE = """(a) => new Promise(done => {
  const t0 = performance.now(), el = document.querySelector(a.sel);
  if (el.tagName === 'SELECT') {
    if (typeof a.value === 'number') el.selectedIndex = a.value; else el.value = a.value;
    el.dispatchEvent(new Event('change'));
  } else { el.value = a.value; el.dispatchEvent(new Event('input')); }
  requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
})"""
_SEARCHES = (("#f-search", "bottom_right"), ("#f-search", ""))
_FILTERS = (("#f-status", "!ok"), ("#f-dtype", 1), ("#f-status", ""), ("#f-dtype", ""), ("#f-impl", 1), ("#f-impl", ""))


def time_browser(page_path: Path) -> dict | str:
    """Navigation → first filter answered, and each filter's time, in headless Chromium; a reason
    string when no browser can run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "Playwright for Python is not installed"
    if not os.path.exists(CHROMIUM):
        return f"Chromium not found at {CHROMIUM}"
    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        t0 = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="commit", timeout=300_000)
        # usable: the filters answer (the status filter narrows the shown count)
        page.wait_for_selector("#f-status", state="attached", timeout=300_000)
        page.select_option("#f-status", "!pass", timeout=300_000)
        page.wait_for_function(_ANSWERED, timeout=300_000)
        out["first_filter_s"] = time.perf_counter() - t0
        out["first_filter_page_s"] = page.evaluate("performance.now()") / 1000   # since navigation start
        page.wait_for_load_state("load", timeout=300_000)
        out["load_s"] = time.perf_counter() - t0
        page.select_option("#f-status", "")
        times, inpage = [], []
        for sel, value in _FILTERS + _SEARCHES:
            times.append(page.evaluate(_CHANGE, {"sel": sel, "value": value}) / 1000)
            inpage.append(int(page.evaluate("document.getElementById('shown-count').dataset.ms || -1")))
        out["filter_max_s"] = max(times)
        out["filter_inpage_max_ms"] = max(inpage)
        out["filters"] = ", ".join(f"{sel[3:]}={value!r}: {1000 * t:.0f}/{ms} ms"
                                   for (sel, value), t, ms in zip(_FILTERS + _SEARCHES, times, inpage))
        out["dom_nodes"] = page.evaluate("document.getElementsByTagName('*').length")
        browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attnconf.conformance.bench.report_scale", description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="records in the synthetic results file")
    ap.add_argument("--results", action="append", default=[],
                    help="a real results file (e.g. the default run's) to measure too; repeatable")
    ap.add_argument("--out", default="reports/bench-report", help="folder for the files it writes")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter whose attnconf renders (default this one); e.g. another checkout's "
                         "virtual environment, to measure the report before a change")
    ap.add_argument("--tag", default="", help="a suffix for the pages it writes (e.g. 'before')")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores · load average {_load()} (1, 5, 15 min) · "
          f"a pure-Python loop of 10^6 additions takes {_probe():.2f} s here (a quiet machine: ~0.03–0.06 s)")
    cases = [(f"results {r}", [Path(r)]) for r in args.results]
    if args.records:
        synth = out / f"synthetic-{args.records}.json"
        if not synth.exists():
            t = time.perf_counter()
            synth.write_text(json.dumps(synthetic_results(args.records)), encoding="utf-8")
            print(f"wrote {synth} ({synth.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")
        cases.append((f"synthetic {args.records} records", [synth]))
    for label, files in cases:
        page = out / (files[0].stem + (f"-{args.tag}" if args.tag else "") + ".html")
        r = time_report(files, page, args.python)
        print(f"{label}: attnconf report {r['seconds']:.1f} s wall ({r['cpu_s']:.1f} s CPU), peak {r['peak_mib']:.0f} MiB, "
              f"page {r['page_mb']:.2f} MB (exit {r['rc']})  [load {_load()}]")
        if not args.no_browser:
            b = time_browser(page)
            if isinstance(b, str):
                print(f"{label}: browser not measured: {b}")
            else:
                print(f"{label}: Chromium: first filter answered {b['first_filter_s']:.2f} s after navigation "
                      f"({b['first_filter_page_s']:.2f} s by the page's clock), "
                      f"load event {b['load_s']:.2f} s, slowest filter {b['filter_max_s'] * 1000:.0f} ms to the next frame "
                      f"({b['filter_inpage_max_ms']} ms of it in the page's script), "
                      f"{b['dom_nodes']} DOM nodes  [load {_load()}]")
                print(f"{label}: each filter, to the next frame / in the page's script: {b['filters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
