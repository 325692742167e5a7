"""The conformance run: adapters x golden cases x dtypes -> records, written as the run goes.

Size (~400 lines): the one check loop, its configuration, progress lines, resume and summary.

`run(config)` drives everything `attnconf run` does: it iterates the planner's items
(conformance/plan.py: what each adapter implements, at which dtypes, which case its claims
exclude; one coverage entry per adapter and operation), asks an Executor to compute each case
(`InProcessExecutor` here; `attnconf.conformance.execution.isolation.WorkerExecutor` runs implementations in
worker processes), judges outcomes with `engine.judge`, calls the SUITE-CHECKS hooks
(`invariants.check`, `profile.detect`), applies expectations, streams records to the results file, and returns
the exit code (0 conform or expected, 1 non-conformance). Must not import a framework itself, nor
decide tolerances or statuses (engine and tolerance do), nor render (`attnconf run --html` renders
the results after the run).
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time
from pathlib import Path
from typing import Any

from attnconf.adapters import registry
from attnconf.adapters.registry import AdapterSpec
from attnconf.conformance import plan
from attnconf.conformance.execution.executor import DEFAULT_TIMEOUT_S, Executor, InProcessExecutor
from attnconf.conformance.judging import engine
from attnconf.conformance.results import repro
from attnconf.conformance.results.record import FAILING, Record
from attnconf.errors import Unsupported

DEFAULT_JSON = Path("reports") / "results.json"
# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunConfig:
    specs: list                         # AdapterSpec list (registry.resolve) or Adapter instances
    dtypes: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
    select: str | None = None
    level: str = "default"
    timeout: float = DEFAULT_TIMEOUT_S
    json_path: Path | None = DEFAULT_JSON
    html_path: Path | None = None
    golden_dir: str | None = None
    device: str = "cpu"
    checks: bool = True                 # invariants and profiles after agreement
    invariant_examples: int | None = None   # None: invariants.EXAMPLES (fixed counts, never timed)
    seed: int = 0
    command: list[str] | None = None
    expectations: Any = None            # None: shipped files; list of paths; False: none
    strict: bool = False                # stale expectation entries fail the run
    resume: bool = False                # keep json_path's records and skip what they measured
    jobs: int = 1                       # adapters run at once (with an executor factory)
    not_run: list = dataclasses.field(default_factory=list)   # registry.not_run rows: results "not_run"


def load_cases(select=None, golden_dir=None) -> list:
    """The golden cases `select` selects (attnconf.selection), from golden_dir or the shipped files."""
    from attnconf.reference.golden import load_cases as load

    return load(select, golden_dir=golden_dir)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunResult:
    doc: dict
    exit_code: int
    elapsed_s: float


class Progress:
    """A rewritten status line on a terminal; one line per adapter otherwise."""

    def __init__(self, stream=None, *, status_line: bool = True):
        self.stream = stream or sys.stderr
        # Concurrent adapters would fight over one status line: then only the per-adapter lines.
        self.tty = status_line and bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def update(self, adapter: str, done: int, total: int, counts: dict) -> None:
        if not self.tty or time.perf_counter() - self._last < 0.1:
            return
        self._last = time.perf_counter()
        tally = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        self.stream.write(f"\r\x1b[2K{adapter}: {done}/{total} {tally}")
        self.stream.flush()

    def adapter_done(self, adapter: str, counts: dict, seconds: float) -> None:
        tally = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        prefix = "\r\x1b[2K" if self.tty else ""
        self.stream.write(f"{prefix}{adapter}: {tally} ({seconds:.1f} s)\n")
        self.stream.flush()


def _expectations(config):
    """Expectations (shipped files unless config.expectations names files; False: none)."""
    if config.expectations is False:
        return None
    from attnconf.conformance.judging.expectations import Expectations

    return Expectations.load(config.expectations)


def run(config: RunConfig, *, executor=None, stream=None, cases=None, executor_factory=None) -> RunResult:
    """Run every adapter of `config`; records are streamed to the results file as they come.

    executor_factory: a callable making a fresh Executor. With it and config.jobs > 1, adapters
    run concurrently, each driven by its own executor (their implementations run in separate
    worker processes, so two cores work at once: JAX's per-shape compilation overlaps the others).
    """
    started = time.perf_counter()
    executor = executor or (executor_factory() if executor_factory else InProcessExecutor())
    local = executor if isinstance(executor, InProcessExecutor) else InProcessExecutor()
    expect = _expectations(config)
    writer, done = _writer(config, expect)
    cases = load_cases(config.select, config.golden_dir) if cases is None else cases
    parallel = (executor_factory is not None and config.jobs > 1 and len(config.specs) > 1
                and not isinstance(executor, InProcessExecutor))
    progress = Progress(stream, status_line=not parallel)
    lock = threading.RLock()

    def emit(rec):
        # Expectations apply before the record is written: the file never holds a stale status.
        with lock:
            rec = expect.apply(rec) if expect is not None else rec
            writer.add(rec)
        return rec

    # Adapters are instantiated (and described) here, in order, before any case runs.
    adapters = [local.adapter(spec) for spec in config.specs]
    for adapter in adapters:
        writer.add_adapter(adapter.describe())
        _add_coverage(writer, adapter)
    writer.doc["not_run"] = list(config.not_run)   # bundled adapters left out, why, and how to run them
    writer.flush()           # a run killed while an adapter hangs still lists it

    def one(spec, adapter, ex) -> None:
        t0 = time.perf_counter()
        recs = _run_adapter(config, ex, spec, adapter, cases, progress, emit=emit, done=done)
        recs += [emit(r) for r in _run_checks(config, adapter, executor=ex, spec=spec, done=done)]
        profile = _profile(config, adapter, executor=ex, spec=spec)
        recs += [emit(r) for r in _profile_records(config, adapter, profile, spec, done)]
        with lock:
            if profile is not None:
                writer.set_profile(adapter.name, profile)
            writer.flush()
            progress.adapter_done(adapter.name, _counts(recs), time.perf_counter() - t0)

    try:
        if parallel:
            _run_parallel(config, list(zip(config.specs, adapters)), one, executor, executor_factory)
        else:
            for spec, adapter in zip(config.specs, adapters):
                one(spec, adapter, executor)
    finally:
        executor.close()
        if local is not executor:
            local.close()
    found = []
    if expect is not None:
        found = expect.findings(adapters=[a["name"] for a in writer.doc["adapters"]],
                                dtypes=config.dtypes, partial=bool(config.select),
                                known_adapters=registry.BUNDLED)
        writer.doc["expectation_findings"] = [_finding_json(f) for f in found]
    doc = writer.finish()
    elapsed = time.perf_counter() - started
    failing = any(r["status"] in FAILING for r in doc["results"])
    failing = failing or (config.strict and any(f.kind != "not_exercised" for f in found))
    return RunResult(doc, 1 if failing else 0, elapsed)


def _add_coverage(writer, adapter) -> None:
    """One coverage entry per (adapter, operation) (plan.coverage), once (a resumed run keeps
    the entries it read back)."""
    entries = writer.doc.setdefault("coverage", [])
    have = {(e.get("adapter"), e.get("operation")) for e in entries}
    entries.extend(e for e in plan.coverage(adapter) if (e["adapter"], e["operation"]) not in have)


def _run_parallel(config, work, one, first_executor, factory) -> None:
    """`config.jobs` threads, each with its own executor, take adapters from a queue; the
    slowest (JAX: a compilation per shape) are queued first so they overlap the rest."""
    import queue

    # Adapters that share a worker (bundled ones of one framework: isolation._worker_key) form one
    # queue item, run one after the other by one thread: the framework is imported once a run.
    groups: dict = {}
    for spec, adapter in work:
        groups.setdefault(_share_key(spec, adapter), []).append((spec, adapter))
    todo: "queue.Queue" = queue.Queue()
    for group in sorted(groups.values(), key=lambda g: getattr(g[0][1], "framework", "") != "jax"):
        todo.put(group)
    errors: list[BaseException] = []

    def worker(ex) -> None:
        try:
            while not errors:
                try:
                    group = todo.get_nowait()
                except queue.Empty:
                    return
                for spec, adapter in group:
                    one(spec, adapter, ex)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            if ex is not first_executor:
                ex.close()

    threads = [threading.Thread(target=worker, args=(first_executor if i == 0 else factory(),), daemon=True)
               for i in range(min(config.jobs, len(groups)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _share_key(spec, adapter) -> str:
    """Adapters with one key share a worker process (the executor's own rule when it has one)."""
    from attnconf.conformance.execution.isolation import _spec_to_dict, _worker_key

    try:
        return _worker_key(_spec_to_dict(spec))
    except TypeError:       # an Adapter instance (in-process runs): its own group
        return f"instance:{id(adapter)}"


def _writer(config, expect):
    """(ResultsWriter, keys already measured). With config.resume, the existing results file is
    read back (schema-checked) and kept; its records count for expectations as if just run."""
    from attnconf.conformance.results.files import ResultsWriter, read_results

    path = config.json_path
    if not (config.resume and path is not None and Path(path).exists()):
        return ResultsWriter(path, command=config.command, device=config.device, level=config.level), set()
    doc = read_results(path)
    doc.update(complete=False, finished_at=None)
    done = {_record_key(r) for r in doc["results"]}
    if expect is not None:
        for r in doc["results"]:
            original = (r.get("expected") or {}).get("status", r["status"]) if r["status"] == "xfail" else r["status"]
            expect.apply({**r, "status": original})
    return ResultsWriter(path, doc=doc), done


def _record_key(rec: dict) -> tuple:
    return (rec.get("adapter"), rec.get("case"), rec.get("dtype"), rec.get("check"))


def _finding_json(f) -> dict:
    entry = f.entry
    return {"kind": f.kind, "detail": getattr(f, "detail", str(f)),
            "entry": dataclasses.asdict(entry) if dataclasses.is_dataclass(entry) else str(entry)}


def _counts(records) -> dict:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def _repro_args(config: RunConfig, adapter, spec) -> str:
    """What every record of this adapter's repro needs besides --seed/--select/--dtype."""
    return repro.run_args(repro.adapter_args(adapter, spec if isinstance(spec, AdapterSpec) else None),
                          level=config.level, golden_dir=config.golden_dir,
                          expectations=config.expectations, timeout=config.timeout)


def check_case(executor, spec, adapter, case, dtype: str, *, level: str = "default",
               timeout: float = DEFAULT_TIMEOUT_S, expectations=None, repro_args: str | None = None) -> Record:
    """The agreement record of one case at one dtype: the one check loop's body, which
    `attnconf run` (_run_adapter), the pytest plugin (plugin.Session.check) and calibration
    (calibration.judge_one) all call, so the front ends judge the same way.

    A dtype the adapter does not declare is a skip without a call; otherwise `executor` runs the
    case (spec: what the executor is given; adapter: its instance, for its name and capabilities)
    and engine.judge judges the outcome at `level`; `expectations` (an Expectations) is applied
    last. repro_args: the record's repro options (None: `--adapter NAME`)."""
    common = dict(adapter_name=adapter.name, framework=adapter.framework, level=level, repro_args=repro_args)
    reason = plan.skip_reason(adapter, case, dtype)
    if reason:
        rec = engine.judge(case, dtype, None, error=Unsupported(reason), **common)
    else:
        out = executor.run(spec, case, dtype, timeout)
        if out.status == "ok":
            rec = engine.judge(case, dtype, out.outputs, duration_s=out.duration_s, **common)
        else:
            rec = engine.judge(case, dtype, None, status=out.status, error=out.message or out.status,
                               duration_s=out.duration_s, **common)
    return expectations.apply(rec) if expectations is not None else rec


def _run_adapter(config, executor, spec, adapter, cases, progress, *, emit=lambda r: r, done=frozenset()) -> list:
    recs: list[Record] = []
    todo = [(item.case, item.dtype) for item in plan.agreement(adapter, cases, config.dtypes, done=done)]
    counts: dict[str, int] = {}
    args = _repro_args(config, adapter, spec)
    for i, (case, dtype) in enumerate(todo):
        # expectations: applied by `emit` (run's, under its lock, as the record is written)
        rec = emit(check_case(executor, spec, adapter, case, dtype, level=config.level, timeout=config.timeout,
                              repro_args=args))
        recs.append(rec)
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        progress.update(adapter.name, i + 1, len(todo), counts)
    return recs


def _run_checks(config, adapter, *, executor: Executor, spec, done=frozenset()) -> list[dict]:
    if not config.checks:
        return []
    from attnconf.conformance.checks import invariants

    if not _selected(config, invariants.record_ids, adapter):
        return []               # --select names no invariant: none runs
    recs = []
    measured = {(a, d) for a, _c, d, k in done if k == "invariant"}
    common = dict(seed=config.seed, max_examples=config.invariant_examples, select=config.select,
                  repro_args=_repro_args(config, adapter, spec))
    for dtype in plan.check_dtypes(adapter, config.dtypes):
        if (adapter.name, dtype) in measured:
            continue
        # in a worker (WorkerExecutor), a crash costs this batch only
        recs.extend(executor.run_checks(spec, adapter, dtype, timeout=config.timeout, **common))
    return recs


def _selected(config, record_ids, adapter) -> bool:
    """Whether config.select (none: everything) selects any record id of record_ids(adapter)."""
    if not config.select:
        return True
    return any(repro.selects(config.select, c) for c in record_ids(adapter))


def checks_selected(config) -> bool:
    """Whether config.select selects any invariant or profile record (of any adapter)."""
    if not config.checks:
        return False
    from attnconf.conformance.checks import invariants
    from attnconf.conformance.checks import profile

    ids = [invariants.record_ids(), profile.record_ids()]
    return any(repro.selects(config.select, c) for group in ids for c in group)


def _profile(config, adapter, *, executor: Executor, spec):
    from attnconf.conformance.checks import profile

    if not config.checks or not _selected(config, profile.record_ids, adapter):
        return None
    return executor.detect_profile(spec, timeout=config.timeout)


def _profile_records(config, adapter, profile, spec, done=frozenset()) -> list[dict]:
    """The profile's records (check="profile": each aspect with a canonical choice passes,
    fails or skips), the ones --select selects: the same records the pytest plugin's profile
    module judges, so the two front ends judge the same things. The profile itself is also kept
    as a description (results "profiles")."""
    from attnconf.conformance.checks.profile import profile_records

    if profile is None:
        return []
    return [r for r in profile_records(adapter, profile, repro_args=_repro_args(config, adapter, spec))
            if repro.selects(config.select, r["case"]) and r["dtype"] in config.dtypes
            and _record_key(r) not in done]


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
def skip_reasons(records, adapter: str = "") -> list[tuple[str, int]]:
    """[(reason, count)] of the skip records, most frequent first: the message without its
    "unsupported: " / "declined: " head, the adapter's name and what the case needs (", the case …")."""
    import re

    counts: dict[str, int] = {}
    for r in records:
        if r["status"] != "skip":
            continue
        text = re.sub(r"^(unsupported|declined): ", "", str(r.get("message") or ""))
        text = text.replace(f"{adapter} ", "", 1) if adapter and text.startswith(adapter) else text
        reason = re.split(r", the case | \(", text, maxsplit=1)[0].strip()[:80] or "(no reason given)"
        counts[reason] = counts.get(reason, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def summary(doc: dict, elapsed_s: float) -> str:
    """Per adapter: counts and the clauses of its failing records; then the time."""
    lines = []
    # In the order adapters were asked for, whatever order concurrent adapters finished in.
    by_adapter: dict[str, list[dict]] = {a["name"]: [] for a in doc.get("adapters", [])}
    for r in doc["results"]:
        by_adapter.setdefault(r["adapter"], []).append(r)
    for name, recs in by_adapter.items():
        if not recs:
            continue
        counts = _counts(recs)
        tally = ", ".join(f"{counts[k]} {k}" for k in ("pass", "fail", "error", "crash", "timeout", "xfail", "skip")
                          if counts.get(k))
        bad = [r for r in recs if r["status"] in FAILING]
        clauses = sorted({c for r in bad for c in (r.get("clauses") or ["(no clause)"])})
        line = f"  {name}: {tally}"
        if clauses:
            line += "\n    non-conforming clauses: " + ", ".join(clauses)
        reasons = skip_reasons(recs, name)
        if reasons:
            shown = "; ".join(f"{n} {reason}" for reason, n in reasons[:4])
            line += f"\n    skipped by reason: {shown}" + (f"; {len(reasons) - 4} other reasons" if len(reasons) > 4 else "")
        missing = [e["operation"] for e in doc.get("coverage", []) if e.get("adapter") == name and not e.get("implemented")]
        if missing:
            line += f"\n    not implemented (coverage, no records): {', '.join(missing)}"
        lines.append(line)
    findings = doc.get("expectation_findings") or []
    if findings:   # stale expectation entries: reported always, fatal under --strict
        lines.append(f"  expectation entries that no longer hold ({len(findings)}; --strict fails the run for "
                     "all but 'not_exercised'):")
        for f in findings[:10]:
            e = f.get("entry") or {}
            lines.append(f"    {f.get('kind')}: {e.get('adapter')} {e.get('case')} [{e.get('dtype')}] "
                         f"({e.get('source')}) {f.get('detail')}")
        if len(findings) > 10:
            lines.append(f"    … and {len(findings) - 10} more (results JSON: expectation_findings)")
    left_out = doc.get("not_run") or []
    named = [n for n in left_out if n.get("reason") == "not named with --adapter"]
    others = [n for n in left_out if n not in named]
    if others:
        lines.append(f"  not run ({len(others)} bundled adapters):")
        lines += [f"    {n['adapter']}: {n['reason']}; run it: {n['command']}" for n in others]
    if named:
        lines.append(f"  {len(named)} other bundled adapters were not named with --adapter "
                     "(`attnconf adapters` lists them)")
    verdict = ("non-conformance found" if any(r["status"] in FAILING for r in doc["results"])
               else "all conform or are expected")
    return "\n".join(["attnconf run summary:"] + lines + [f"{verdict}; {len(doc['results'])} records in "
                                                           f"{elapsed_s:.1f} s"])
