"""The packed reference's speed target (issue: "the reference stays fast enough to generate goldens
and judge"): `attnconf.reference.varlen.sdpa_varlen` on a packed batch takes at most
TARGET_RATIO times the contiguous reference (`attnconf.reference.lse.sdpa_lse`, the same two
outputs) on the same work, printed by `attnconf bench --reference-targets`.

Two measurements, the least CPU time of `rounds` calls each, float64 default path:
  * equal lengths: B sequences of L queries and S keys packed, against one (B, H, L, E) call —
    the target (packing must not cost more than the layout change);
  * ragged lengths: B sequences of different lengths (Σ L_b·S_b the same work), against the
    contiguous reference called once per sequence — reported, not judged.
Must not import any framework.
"""
from __future__ import annotations

import time

import numpy as np

TARGET_RATIO = 1.5


def _best(fn, rounds: int) -> float:
    """The least CPU time (time.process_time, all threads) of `rounds` calls: the ratio of two
    CPU times is what the target is about, and unlike wall time it does not move with other
    processes' load on a shared machine."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def varlen_target(rounds: int = 5, *, shape=None) -> dict:
    """{"equal": {...}, "ragged": {...}, "ratio", "target_ratio", "status"} for `shape` (B, H, L, E)."""
    from attnconf.reference.lse import sdpa_lse
    from attnconf.reference.varlen import sdpa_varlen

    shape = dict(shape or dict(B=4, H=4, L=512, E=64))
    b, h, l, e = shape["B"], shape["H"], shape["L"], shape["E"]
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((b * l, h, e)) for _ in range(3))
    cu = (np.arange(b + 1) * l).astype(np.int32)
    q4, k4, v4 = (x.reshape(b, l, h, e).transpose(0, 2, 1, 3).copy() for x in (q, k, v))
    packed = _best(lambda: sdpa_varlen(q, k, v, cu, cu, is_causal=True), rounds)
    contiguous = _best(lambda: sdpa_lse(q4, k4, v4, is_causal=True, causal_alignment="bottom_right"), rounds)
    # ragged: lengths l/2 … 3l/2 around l (the same total rows), each sequence alone as the contiguous twin
    lengths = np.linspace(l // 2, l + l // 2, b).astype(np.int64)
    lengths[-1] += b * l - lengths.sum()
    cur = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    packed_r = _best(lambda: sdpa_varlen(q, k, v, cur, cur, is_causal=True), rounds)
    seqs = [tuple(x[cur[i]:cur[i + 1]].transpose(1, 0, 2)[None] for x in (q, k, v)) for i in range(b)]
    alone_r = _best(lambda: [sdpa_lse(*s, is_causal=True, causal_alignment="bottom_right") for s in seqs], rounds)
    ratio = packed / contiguous
    return {"shape": shape, "causal": True, "rounds": rounds,
            "equal": {"packed_s": packed, "contiguous_s": contiguous, "ratio": ratio},
            "ragged": {"lengths": lengths.tolist(), "packed_s": packed_r, "per_sequence_s": alone_r,
                       "ratio": packed_r / alone_r},
            "ratio": ratio, "target_ratio": TARGET_RATIO, "status": "PASS" if ratio <= TARGET_RATIO else "FAIL"}


def format_report(result: dict) -> list[str]:
    s, eq, rg = result["shape"], result["equal"], result["ragged"]
    where = f"B={s['B']} H={s['H']} L=S={s['L']} E={s['E']} causal, float64"
    return [f"[{result['status']}] packed reference (sdpa_varlen) / contiguous (sdpa_lse), same work, {where}: "
            f"{eq['packed_s'] * 1e3:.1f} / {eq['contiguous_s'] * 1e3:.1f} CPU-ms = {eq['ratio']:.2f}x "
            f"(target <= {result['target_ratio']:g}x)",
            f"       ragged lengths {rg['lengths']}: packed {rg['packed_s'] * 1e3:.1f} / one contiguous call per "
            f"sequence {rg['per_sequence_s'] * 1e3:.1f} CPU-ms = {rg['ratio']:.2f}x"]
