"""Property-based invariant checks of spec/invariants.md (clauses inv.*), run through an adapter:
the core. Each operation's properties live in a module its registry entry names
(`Operation.invariants`: checks/invariants/sdpa.py, mha.py, encoding.py, rope.py, or a third
party's), holding INVARIANTS and optionally DETERMINISM; `invariants()` collects them in
registry order, and nothing here names an operation. Size (~450 lines): most of it is the
docstring's tolerance rationale and the hypothesis driver (run_property), which belong together.

`check(adapter, dtype, seed=0)` returns one results record per invariant (check="invariant",
status pass / fail / error / skip). Each property is run by hypothesis with a fixed seed, no
example database and a fixed number of examples (EXAMPLES x the invariant's factor, fewer where
a framework compiles per shape: draws_for), never a time budget, so the same command gives the
same records on any machine under any load. Examples where documented framework bugs show are
fixed ones (Invariant.explicit), run first whatever the count. A failing example is shrunk
(within a call budget) and the record's message prints the shrunk example and a repro command
(conformance/results/repro.py) that draws the same examples again.

Tolerances (why the numbers are what they are). An invariant compares two results computed by
the *same* implementation, each of which the default level allows to be
`max(k * baseline, floor)` ulps of natural scale from the exact value (tolerance.TABLE). So the
difference of two results may reach twice that: we use

    INV_ULPS(op, dtype) = 2 * max(k * INV_BASELINE_ULPS, floor)       (TABLE's k and floor)

with INV_BASELINE_ULPS = 4, the largest same-precision baseline error measured on the small
shapes drawn here (`attnconf calibrate` re-measures: the control and every bundled adapter pass).
The natural scale of an attention output column is bounded by max_j |v[j, c]| (weights sum to
1), and that bound is what we use, so no reference call is needed. The structural bugs the
invariants are for (order, masking, head grouping, layout) give errors of order 1, i.e. 1e2 ulp
even at bfloat16; small numeric bugs (a 1e-5 scale error) are the agreement checks' job.
Encodings: an element at position p may err by F ulps of 1 plus the angle error
A * p * ω * eps_angle (eps_angle = float32's for tables below float64: the spec lets them compute
p·ω in float32); F = 4, A = 8 cover rounding of ω, of p·ω and of sin/cos (measured).
Rotary embeddings (inv.rope.*): each compared result may err, per element, by
    (max(k * INV_BASELINE_ULPS, floor) + arg_ulps * |θ|) ulps of the pair's norm (times m)
with k, floor, arg_ulps from TABLE[rotary_embedding, dtype] and θ = p·base^(−2i/r) the channel's
unscaled angle (a bound of every rule's), and a comparison allows twice the sum over its results:
inv_ulps plus the row's angle term, since a correct kernel's error grows with the angle as the
agreement rule admits. Measured: numpy-reference and the zoo's control <= 0.14 of it (2 x 100
draws per invariant and dtype); the zoo's RoPE bugs are O(1) or 2^8 ulp and more.

Must not import any framework; must not compute golden values (properties compare an
implementation with itself, or with NumPy float64 arithmetic on its own outputs).
Shape legend: B batch, H query heads, Hkv kv heads, L queries, S keys, E head dim, Ev value dim,
D model dim.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from attnconf.conformance.results import repro as repro_cmd
from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.results.record import Record
from attnconf.dtypes import EPS
from attnconf.errors import Unsupported, declined_message, declined_reason

INV_BASELINE_ULPS = 4.0
SHRINK_BUDGET = 40          # adapter calls spent shrinking a failure (keeps failing runs fast)
# Random draws per invariant and adapter-dtype, times the invariant's factor (`attnconf run`'s
# default, and check's): a fixed number, so verdicts never depend on how fast the machine is.
EXAMPLES = 6
# Frameworks that compile a kernel for every new shape and dtype (XLA: 0.1-0.5 s per shape on
# CPU, most of a run's time) draw at most this many, also a fixed number; the explicit examples
# (documented framework bugs, edge shapes) run on every adapter whatever its count.
PER_SHAPE_COMPILING = {"jax": 2}
_TINY = {"float64": 2.0 ** -1022, "float32": 2.0 ** -126, "float16": 2.0 ** -14, "bfloat16": 2.0 ** -126}


class Violation(AssertionError):
    """An invariant does not hold; the message says by how much and where."""


@dataclasses.dataclass(frozen=True)
class Invariant:
    clause: str
    operation: str
    strategy: Callable          # (caps, dtype) -> hypothesis strategy
    prop: Callable              # (ctx, example) -> None, raises Violation
    requires: Callable = lambda caps, dtype: ""     # reason it cannot run here, "" if it can
    factor: int = 1             # examples = factor * max_examples (cheap encoding properties get more)
    explicit: Callable = lambda caps: ()            # examples always tried first, before random draws
    metrics: Callable | None = None                 # (inv, dtype) -> the tolerance metrics of its records (None: _table_metrics)


@dataclasses.dataclass
class Context:
    adapter: object
    dtype: str

    @property
    def caps(self):
        return self.adapter.capabilities


# ---------------------------------------------------------------------------------------------
# Tolerances
# ---------------------------------------------------------------------------------------------
def inv_ulps(operation: str, dtype: str) -> float:
    """Allowed difference between two results of one implementation, in ulps of natural scale."""
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for(operation, dtype)
    return 2.0 * max(rule.k * INV_BASELINE_ULPS, rule.floor_ulps)


def assert_close(actual, expected, scale, ulps: float, dtype: str, what: str) -> None:
    """|actual - expected| <= ulps * eps * scale elementwise; NaN matches NaN only."""
    a = np.asarray(actual, np.float64)
    x = np.asarray(expected, np.float64)
    if a.shape != x.shape:
        raise Violation(f"{what}: shapes differ, {a.shape} vs {x.shape}")
    limit = ulps * EPS[dtype] * np.maximum(np.abs(np.broadcast_to(scale, x.shape)), _TINY[dtype])
    _assert_within(a, x, limit, what, f"{ulps:g} ulp of natural scale at {dtype}")


def _assert_within(a, x, limit, what: str, rule: str) -> None:
    both_nan = np.isnan(a) & np.isnan(x)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs(a - x))
    bad = ~(diff <= limit)
    if bad.any():
        ratio = np.where(np.isnan(diff), np.inf, diff / np.maximum(limit, 1e-300))
        idx = np.unravel_index(int(np.argmax(np.where(bad, ratio, -1))), a.shape)
        raise Violation(f"{what}: {int(bad.sum())} of {a.size} elements differ; worst at "
                        f"{tuple(int(i) for i in idx)}: {float(a[idx])!r} vs {float(x[idx])!r} "
                        f"(|Δ| {diff[idx]:.3g} > {np.broadcast_to(limit, a.shape)[idx]:.3g} = {rule})")


# ---------------------------------------------------------------------------------------------
# Helpers the operations' modules share, and the collection of their invariants
# ---------------------------------------------------------------------------------------------
def _needs(flag: str, reason: str):
    return lambda caps, dtype: "" if getattr(caps, flag) else reason


def invariants() -> tuple[Invariant, ...]:
    """Every registered operation's INVARIANTS, in registry order (Operation.invariants modules)."""
    from attnconf import operations

    return tuple(inv for op in operations.operations() for m in op.modules("invariants")
                 for inv in getattr(m, "INVARIANTS", ()))


def determinism_probes() -> tuple:
    """Every registered operation's DETERMINISM probe, in registry order."""
    from attnconf import operations

    return tuple(m.DETERMINISM for op in operations.operations() for m in op.modules("invariants")
                 if getattr(m, "DETERMINISM", None) is not None)


def _table_metrics(inv: Invariant, dtype: str) -> dict:
    """The tolerance of an invariant judged by its operation's row of tolerance.TABLE."""
    return {"tolerance_ulps": inv_ulps(inv.operation, dtype),
            "rule": f"2 x max(k x {INV_BASELINE_ULPS:g}, floor) from TABLE[{inv.operation}, "
                    f"{dtype}], in ulps of the max|v| bound of the natural scale"}


# ---------------------------------------------------------------------------------------------
# Running a property with hypothesis
# ---------------------------------------------------------------------------------------------
class _Skip(Exception):
    pass


def run_property(inv: Invariant, ctx: Context, *, seed: int, max_examples: int, shrink: bool = True,
                 budget_s: float | None = None):
    """(status, message, examples_run, failing_example) for one invariant on one adapter/dtype.

    Hypothesis draws examples from a fixed seed without a database (reproducible); a failure is
    shrunk, but after SHRINK_BUDGET further adapter calls new candidates are treated as passing
    (the best failure so far is kept and replayed from a cache), so a broken implementation
    costs a bounded time. An example the plug-in declines (NotImplementedError) is declined alone,
    like a fixed example outside the adapter's range: the other draws still run; when every
    example is declined the status is skip, "declined: <reason>".
    """
    import hypothesis
    from hypothesis import HealthCheck, Phase, settings

    failures: dict = {}
    passed: set = set()
    declined: dict = {}      # example key -> the reason the plug-in gave (NotImplementedError)
    state = {"budget": SHRINK_BUDGET, "ran": 0, "last": None, "skip": None}
    start = time.perf_counter()

    def key(ex):
        return tuple(sorted(ex.items()))

    def test(ex):
        k = key(ex)
        if k in failures:
            state["last"] = (ex, failures[k])
            raise failures[k]
        if state["skip"] is not None:
            raise state["skip"]
        if k in passed:          # hypothesis repeats examples at small max_examples
            return
        if (not failures and budget_s is not None and state["ran"] >= 1
                and time.perf_counter() - start > budget_s):
            return               # time share spent (slow, e.g. per-shape-compiling, adapters)
        if failures:
            if state["budget"] <= 0:
                return
            state["budget"] -= 1
        try:
            inv.prop(ctx, ex)
            state["ran"] += 1
            passed.add(k)
        except Unsupported as exc:
            if k in explicit:    # a fixed example outside this adapter's range: the draws still run
                passed.add(k)
                return
            state["skip"] = _Skip(exc.reason)
            raise state["skip"]
        except NotImplementedError as exc:   # the plug-in declines this example only: the draws go on
            declined[k] = declined_reason(exc)
            passed.add(k)
            return
        except Violation as exc:
            failures[k] = exc
            state["last"] = (ex, exc)
            raise
        except Exception as exc:  # the implementation raised: a non-conformance, reported as error
            err = _Raised(f"{type(exc).__name__}: {exc}")
            failures[k] = err
            state["last"] = (ex, err)
            raise err

    strategy = inv.strategy(ctx.caps, ctx.dtype)
    explicit = {key(ex) for ex in inv.explicit(ctx.caps)}
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)
    given = hypothesis.given(strategy)(test)
    for ex in reversed(tuple(inv.explicit(ctx.caps))):    # hypothesis runs explicit examples first
        given = hypothesis.example(ex)(given)
    runner = settings(max_examples=max_examples * inv.factor, database=None, deadline=None,
                      derandomize=False, phases=phases, report_multiple_bugs=False,
                      suppress_health_check=list(HealthCheck), print_blob=False,
                      verbosity=hypothesis.Verbosity.quiet)(
        hypothesis.seed(seed)(given))
    try:
        runner()
    except _Skip as exc:
        return "skip", f"unsupported: {exc}", state["ran"], None
    except (Violation, _Raised) as exc:
        ex, err = state["last"] if state["last"] else (None, exc)
        status = "error" if isinstance(err, _Raised) else "fail"
        return status, str(err), state["ran"], ex
    except hypothesis.errors.Unsatisfiable:
        return "skip", "no example of this property fits the adapter's capabilities", 0, None
    if declined:             # every example declined: skip; some: a pass that says what it lacks
        distinct = list(dict.fromkeys(declined.values()))
        reasons = "; ".join(distinct[:3]) + (f"; and {len(distinct) - 3} other reasons" if len(distinct) > 3 else "")
        if not state["ran"]:
            return "skip", declined_message(reasons), 0, None
        return "pass", declined_message(f"{len(declined)} of {len(declined) + state['ran']} examples "
                                        f"({reasons}); the others passed"), state["ran"], None
    return "pass", "", state["ran"], None


class _Raised(Exception):
    """The implementation raised an exception on valid input."""


def repro(adapter, clause: str, dtype: str, seed: int) -> str:
    """The command that reruns an invariant record (adapter: an instance or its name)."""
    return repro_cmd.command(repro_cmd.adapter_args(adapter), f"invariant/{clause}", dtype, seed=seed,
                             known=record_ids())


def _record(ctx: Context, inv: Invariant, *, status, message, duration, seed, max_examples,
            examples=0, example=None, metrics=None) -> dict:
    """An invariant's record (a Record's JSON form). metrics: instead of the examples count and
    the invariant's tolerance metrics (determinism has its own)."""
    name = getattr(ctx.adapter, "name", type(ctx.adapter).__name__)
    if metrics is None:
        metrics = {"examples": examples, **(inv.metrics or _table_metrics)(inv, ctx.dtype)}
        if example is not None:
            metrics["counterexample"] = dict(example)
    return Record(
        adapter=name, framework=getattr(ctx.adapter, "framework", ""),
        operation=inv.operation, case=f"invariant/{inv.clause}", clauses=[inv.clause],
        dtype=ctx.dtype, check="invariant", status=status, metrics=metrics,
        message=message, repro=repro(ctx.adapter, inv.clause, ctx.dtype, seed),
        duration_s=round(duration, 4), options={"seed": seed, "max_examples": max_examples},
        shapes={},
    ).to_json()


def runs_at(inv: Invariant, dtype: str) -> bool:
    """Whether the invariant runs at `dtype`: where its operation's cases run (the operation's
    dtype policy, Operation.runs_at: an integer-valued one once at its fixed dtype)."""
    from attnconf import operations

    return operations.get(inv.operation).runs_at(dtype)


def applicable(inv: Invariant, caps, dtype: str) -> str:
    """"" when the invariant can run on these capabilities, else the reason it is skipped (the
    caller has left out the operations the adapter does not implement: plan.implements)."""
    from attnconf import operations

    op = operations.get(inv.operation)
    if not op.fixed_dtype(dtype) and dtype not in caps.dtypes:
        return f"dtype {dtype} is not supported"
    return inv.requires(caps, dtype)


def check(adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
          select: str | None = None, shrink: bool = True, budget_s: float | None = None,
          repro_args: str | None = None) -> list[dict]:
    """Run every invariant (or those `select` selects) on `adapter` at `dtype`.

    Returns results records (check="invariant"), one per invariant plus determinism. Never
    raises for implementation faults: those are `error` records.
    max_examples: random draws per invariant (times its factor; None: EXAMPLES), capped for
    per-shape-compiling frameworks (draws_for). The count is fixed, never a matter of time, so
    a call draws the same examples and gives the same statuses on any machine under any load;
    each invariant's explicit examples (documented framework bugs) always run first.
    select: as `attnconf run --select` (conformance/repro.selects), on the case id
    `invariant/<clause>`; a bare clause like "inv.convex_hull" selects as a substring.
    budget_s: an opt-in wall-time cap shared by the invariants (a property past its share stops
    drawing): its records depend on machine load, so `attnconf run` never passes one.
    repro_args: the run's repro.run_args for this adapter (default: its name or remembered spec).
    """
    ctx = Context(adapter, dtype)
    records = []
    max_examples = draws_for(adapter, max_examples)
    from attnconf.conformance import plan

    # an operation the adapter does not implement: no record at all (the run's coverage entry says so)
    chosen = [inv for inv in invariants() if plan.runs(adapter, inv.operation, dtype)
              and repro_cmd.selects(select, f"invariant/{inv.clause}")]
    runnable = [inv for inv in chosen if not applicable(inv, adapter.capabilities, dtype)]
    share = None if budget_s is None else budget_s / max(len(runnable), 1)
    for inv in chosen:
        t0 = time.perf_counter()
        reason = applicable(inv, adapter.capabilities, dtype)
        if reason:
            records.append(_record(ctx, inv, status="skip", message=f"unsupported: {reason}",
                                   duration=0.0, seed=seed, max_examples=max_examples))
            continue
        status, message, ran, ex = run_property(inv, ctx, seed=seed, max_examples=max_examples,
                                                shrink=shrink, budget_s=share)
        if ex is not None:
            message = (f"{inv.clause} does not hold; shrunk counterexample: {gen.describe(ex)}\n"
                       f"{message}")
        records.append(_record(ctx, inv, status=status, message=message, seed=seed, examples=ran,
                               duration=time.perf_counter() - t0, max_examples=max_examples, example=ex))
    probe = _determinism_probe(adapter)
    if (probe is not None and plan.runs(adapter, probe.operation, dtype)
            and repro_cmd.selects(select, "invariant/inv.determinism")):
        records.append(check_determinism(adapter, dtype, seed=seed))
    if repro_args is not None:
        known = record_ids()
        records = [dict(r, repro=repro_cmd.command(repro_args, r["case"], dtype, seed=seed, known=known))
                   for r in records]
    return records


def clauses_for(adapter, dtype: str) -> list[str]:
    """The clauses of the records `check(adapter, dtype)` makes (without running anything): the
    invariants of the operations it implements that run at `dtype`, then determinism."""
    from attnconf.conformance import plan

    probe = _determinism_probe(adapter)
    return [inv.clause for inv in invariants() if plan.runs(adapter, inv.operation, dtype)] + (
        ["inv.determinism"] if probe is not None and plan.runs(adapter, probe.operation, dtype) else [])


def record_ids(adapter=None) -> list[str]:
    """The case ids of check's records (the same for every adapter): what --select can select."""
    return [f"invariant/{inv.clause}" for inv in invariants()] + ["invariant/inv.determinism"]


def draws_for(adapter, max_examples: int | None = None) -> int:
    """Random draws per invariant (before its factor) for this adapter: max_examples (None:
    EXAMPLES), at most PER_SHAPE_COMPILING[framework] where the framework compiles per shape.
    A declared number, not a measured time, so the examples drawn depend on nothing else."""
    n = EXAMPLES if max_examples is None else int(max_examples)
    cap = PER_SHAPE_COMPILING.get(getattr(adapter, "framework", ""))
    return max(1, n if cap is None else min(n, cap))


# ---------------------------------------------------------------------------------------------
# Determinism: its own record, not a property (one fixed, moderately sized input, run twice)
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DeterminismProbe:
    """One operation's determinism input: the first probe whose operation the adapter offers
    runs (it belongs to its operation, as an invariant does)."""
    operation: str
    call: Callable                  # (ctx, seed) -> a no-argument call returning a NumPy array
    metrics: Callable | None = None  # as Invariant.metrics, for the probe's skip and error records


def _determinism_probe(adapter):
    """The first probe whose operation the adapter implements (plan.implements), or None."""
    from attnconf.conformance import plan

    return next((p for p in determinism_probes() if not plan.implements(adapter, p.operation)), None)


def _determinism_call(ctx: Context, seed: int):
    """(probe, call) of the first probe whose operation the adapter offers, or (None, None)."""
    probe = _determinism_probe(ctx.adapter)
    return (probe, probe.call(ctx, seed)) if probe is not None else (None, None)


def check_determinism(adapter, dtype: str, *, seed: int = 0) -> dict:
    from attnconf.conformance import plan

    ctx = Context(adapter, dtype)
    # the record belongs to the probe's operation (its tolerance row names the dtype: an
    # integer-valued operation's probe runs at its own int64, never at a float dtype)
    probe = _determinism_probe(adapter) or determinism_probes()[0]
    inv = Invariant("inv.determinism", probe.operation, None, None, metrics=probe.metrics)
    t0 = time.perf_counter()
    found = _determinism_probe(adapter) is not None
    why = "" if not found else plan.dtype_claim(adapter, probe.operation, dtype) or (
        "" if plan.runs(adapter, probe.operation, dtype) else f"{probe.operation} does not run at {dtype}")
    probe, fn = _determinism_call(ctx, seed) if found and not why else (None, None)
    if fn is None:
        reason = "no operation to run" if not found else why
        return _record(ctx, inv, status="skip", message=f"unsupported: {reason}", duration=0.0,
                       seed=seed, max_examples=1)
    op = probe.operation
    inv = dataclasses.replace(inv, operation=op, metrics=probe.metrics)
    try:
        a, b = fn(), fn()
    except Unsupported as exc:
        return _record(ctx, inv, status="skip", message=f"unsupported: {exc.reason}", duration=0.0,
                       seed=seed, max_examples=1)
    except NotImplementedError as exc:   # the plug-in declines: a skip, not an error
        return _record(ctx, inv, status="skip", message=declined_message(declined_reason(exc)),
                       duration=time.perf_counter() - t0, seed=seed, max_examples=1)
    except Exception as exc:
        return _record(ctx, inv, status="error", message=f"{type(exc).__name__}: {exc}",
                       duration=time.perf_counter() - t0, seed=seed, max_examples=1)
    same = a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if same:
        status, message = "pass", ""
    else:
        diff = float(np.nanmax(np.abs(a - b))) if a.shape == b.shape else float("nan")
        claimed = adapter.capabilities.deterministic
        status = "fail" if claimed else "pass"
        message = (f"two calls on identical {op} inputs differ (max |Δ| {diff:.3g}); "
                   + ("the adapter claims determinism" if claimed else "the adapter declares itself nondeterministic"))
    return _record(ctx, inv, status=status, message=message, duration=time.perf_counter() - t0,
                   seed=seed, max_examples=1, metrics={"identical": bool(same), "examples": 1})
