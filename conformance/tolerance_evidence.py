"""The measurements behind tolerance.TABLE: `python -m attnconf.conformance.tolerance_evidence`.

Prints, per adapter, operation and dtype, the worst error of a real kernel on random cases (in ulp
of natural scale), the worst same-precision baseline error, the worst ratio error/baseline and the
floor a given k would need; then the encoding comparison of baseline envelopes (per case, running
max, position-scaled) on float32 tables that compute angles in float32, and on a phase bug.
Options: --adapters a,b --ops sdpa,sdpa_vjp,multi_head_attention --trials N --seed S.

For what: justifying and re-tuning the table. Must not change the table or judge anything for a
run (the engine does); imports frameworks only through the adapters named.
"""
from __future__ import annotations

import argparse
import collections
import warnings

import numpy as np

from attnconf import reference
from attnconf.conformance.judging import compare
from attnconf.conformance.judging import tolerance
from attnconf.reference.cases import Case


def _random_case(rng, op: str, t: int) -> Case:
    """A random case of operation `op`: one of its registry families (the ones calibration
    draws), chosen by `rng`, with exact expected values and natural scales."""
    from attnconf.conformance import calibration

    mine = [f for f, (entry, _) in calibration.families().items() if entry.name == op]
    if not mine:
        raise SystemExit(f"--ops: operation {op!r} should have random-case families (Operation.families), but has none")
    return calibration.random_case(mine[int(rng.integers(len(mine)))], t)


def kernels(adapters, ops, trials: int, seed: int) -> None:
    from attnconf.adapters import registry
    from attnconf.conformance.judging import engine
    from attnconf.conformance import plan
    from attnconf.conformance.execution import runner

    ex = runner.InProcessExecutor()
    specs = registry.resolve(adapters)
    rng = np.random.default_rng(seed)
    stats = collections.defaultdict(list)
    for t in range(trials):
        for op in ops:
            case = _random_case(rng, op, t)
            for spec in specs:
                adapter = ex.adapter(spec)
                if plan.implements(adapter, case.operation):
                    continue
                for dtype in ("float64", "float32", "float16", "bfloat16"):
                    out = ex.run(spec, case, dtype)
                    if out.status != "ok":
                        continue
                    rec = engine.judge(case, dtype, out.outputs, adapter_name=adapter.name)
                    for m in rec["metrics"].get("outputs", {"output": rec["metrics"]}).values():
                        stats[(adapter.name, op, dtype)].append((float(m["max_ulp_error"]),
                                                                 float(m["baseline_ulp_error"]),
                                                                 float(m["tolerance_ulps"])))
    print("kernel  operation  dtype  n  err_max  base_max  ratio_max  floor_needed(k=table)  verdict  "
          "[non-finite errors (a documented divergence: NaN/−∞ where finite, or the reverse) are counted "
          "apart; of_tolerance: the worst finite error / its tolerance, arg term included]")
    for (name, op, dtype), every in sorted(stats.items()):
        nonfinite = sum(1 for e, _, _ in every if not np.isfinite(e))
        rows = [(e, b) for e, b, _ in every if np.isfinite(e)]
        worst = max((e / t for e, _, t in every if np.isfinite(e) and t > 0), default=0.0)
        if not rows:
            print(f"{name} {op} {dtype} {len(every)} non-finite={nonfinite}")
            continue
        a = np.array(rows)
        rule = tolerance.rule_for(op, dtype)
        ratio = a[:, 0] / np.maximum(a[:, 1], 1e-12)
        need = max([e for e, b in rows if e > rule.k * b], default=0.0)
        fails = int(np.sum(a[:, 0] > np.maximum(rule.k * a[:, 1], rule.floor_ulps)))
        print(f"{name} {op} {dtype} {len(a)} {a[:, 0].max():.3g} {a[:, 1].max():.3g} {ratio.max():.3g} "
              f"{need:.3g} (k={rule.k:g}, floor={rule.floor_ulps:g}) false_failures={fails} "
              f"non-finite={nonfinite} of_tolerance={worst:.3g}")


def _pytorch_tutorial(n, d, offset):
    pos = np.arange(offset, offset + n, dtype=np.float32)[:, None]
    div = np.exp(np.arange(0, d, 2, dtype=np.float32) * np.float32(-np.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * div), np.cos(pos * div)
    return pe


def _phase_bug(n, d, offset):
    i = np.arange(d // 2)
    ang = (offset + np.arange(n))[:, None] * 10000.0 ** (-2 * i / d) + 3e-5
    pe = np.zeros((n, d))
    pe[:, 0::2], pe[:, 1::2] = np.sin(ang), np.cos(ang)
    return pe.astype(np.float32)


def encodings() -> None:
    rule = tolerance.rule_for("sinusoidal_encoding", "float32")
    print("\nencoding float32: max err/tolerance per envelope (<= 1 passes)")
    for n, d, offset in [(64, 16, 0), (2048, 64, 0), (256, 16, 10_000), (64, 8, 1_000_000)]:
        opts = dict(num_positions=n, dim=d, base=10000.0, offset=offset, layout="interleaved", frequencies="vaswani")
        exact = reference.compute("sinusoidal_encoding", {}, opts, exact=True)["output"]
        base = reference.compute("sinusoidal_encoding", {}, opts, precision="float32")["output"]
        ones = np.ones_like(exact)
        b = tolerance.ulp_errors(base, exact, ones, "float32")
        pos = offset + np.arange(n, dtype=float)
        envs = {"case": np.full((n, 1), b.max()),
                "running_max": np.maximum.accumulate(b.max(1))[:, None],
                "position (TABLE)": tolerance.baseline_envelope(rule, b, "sinusoidal_encoding", pos)}
        for label, table in (("pytorch-tutorial", _pytorch_tutorial(n, d, offset)), ("BUG phase 3e-5", _phase_bug(n, d, offset))):
            e = tolerance.ulp_errors(table, exact, ones, "float32")
            cells = "  ".join(f"{k}={np.max(e / np.maximum(rule.k * v, rule.floor_ulps)):.3g}" for k, v in envs.items())
            strict = compare.compare(table, exact, ones, "float32", operation="sinusoidal_encoding",
                                     baseline=base, positions=pos).strict_pass
            print(f"  n={n} d={d} offset={offset} {label}: {cells}  strict_pass={strict}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapters", default="torch-math,torch-flash,torch-nn-mha")
    p.add_argument("--ops", default="sdpa,sdpa_vjp,multi_head_attention")
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    encodings()
    print()
    kernels(args.adapters.split(","), args.ops.split(","), args.trials, args.seed)


if __name__ == "__main__":
    main()
