"""The case catalogue: every golden case, generated from the spec index, each citing its clauses.

This module holds the Case type, the rounding of golden inputs and `catalogue()`; each operation's
builders live in a module of their own (sdpa_cases, mha_cases, encoding_cases, rope_cases,
sdpa_option_cases, position_cases), named by its registry entry's `cases=` and `families=`.

Contract used by the golden files, the conformance engine and the reports:

    Case.id         "sdpa/gqa_h4_hkv2_causal_br" — unique, stable, path-like
    Case.operation  a registered operation ("sdpa", "rotary_embedding", …)
    Case.clauses    ("sdpa.gqa", "sdpa.causal.bottom_right")
    Case.inputs     dict name -> np.ndarray (float64, or bool for masks)
    Case.options    dict of keyword options passed to the operation (JSON-serialisable)
    Case.expected   dict name -> np.ndarray float64, computed with exact=True
                    ("output"; "dq","dk","dv" for sdpa_vjp)
    Case.scale      dict name -> np.ndarray float64, the natural scale of each element
                    (Σⱼ pᵢⱼ·|vⱼ| for attention outputs, 1 for encodings; see spec/tolerance.md)
    Case.seed       int
    Case.family     str, the case family used by calibration (e.g. "sdpa-causal")
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np


@dataclasses.dataclass
class Case:
    id: str
    operation: str
    clauses: tuple[str, ...]
    inputs: dict[str, np.ndarray]
    options: dict[str, Any]
    expected: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    scale: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    seed: int = 0
    family: str = ""
    description: str = ""


# ---------------------------------------------------------------------------------------------
# The catalogue. Inputs only: expected values and natural scales are filled in by
# attnconf.reference.golden from the reference (exact=True); nothing here is a hand-made number.
# ---------------------------------------------------------------------------------------------

_TINY = 2.0 ** -14   # smallest normal float16: smaller magnitudes would be subnormal or lost
_HUGE = 65504.0      # largest finite float16
_HUGE_BOTH = 65280.0  # largest bfloat16 value that float16 also holds (65504 itself is not a bfloat16)


def representable(x) -> np.ndarray:
    """`x` rounded to values exactly representable in float16 AND bfloat16, as float64.

    Rounding to bfloat16 (8 significant bits) gives a value float16 (11 bits) also holds when its
    magnitude is 0 or within [2^-14, 65504]; smaller magnitudes go to 0. Infinities stay (masks).
    So casting a golden input to any tested dtype is exact and one float64 golden serves them all.
    The bfloat16 rounding is the project's own (tol.golden: nearest-even, once, straight from
    float64), never a dependency's cast, so the inputs are the same bits with every install.
    """
    from attnconf.reference.rounding import round_to_bfloat16

    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if np.any(np.abs(x[finite]) > _HUGE):
        raise ValueError(f"golden input magnitude should be <= {_HUGE}, but got {np.abs(x[finite]).max()}")
    r = round_to_bfloat16(x)
    r[np.abs(r) < _TINY] = 0.0
    over = np.isfinite(r) & (np.abs(r) > _HUGE_BOTH)  # 65281 … 65504 round up to 65536 in bfloat16
    r[over] = np.sign(r[over]) * _HUGE_BOTH
    return r


def _seed(case_id: str) -> int:
    # crc32 of the id: stable across runs and Python versions (hash() is salted).
    return zlib.crc32(case_id.encode("utf-8"))


def _normal(rng: np.random.Generator, shape, std: float = 1.0) -> np.ndarray:
    return representable(rng.standard_normal(shape) * std)


def _make_case(case_id: str, operation: str, clauses, inputs, options, seed, family, description) -> Case:
    from attnconf import operations

    # Every case cites the clauses every case of its operation exercises (the entry's `clauses`),
    # then those of its own feature.
    cited = tuple(dict.fromkeys(tuple(operations.get(operation).clauses) + tuple(clauses)))
    return Case(id=case_id, operation=operation, clauses=cited, inputs=inputs, options=options,
                seed=seed, family=family, description=description)


# --- the whole catalogue ---------------------------------------------------------------------

def catalogue() -> list[Case]:
    """Every golden case, inputs only (expected/scale empty), in a stable order.

    The cases of every registered operation (attnconf.operations), in registry order, each from
    the builder its entry's `cases` path names (a plug-in's operation included). Deterministic:
    each case's inputs come from its own seed (crc32 of its id). Every cited clause exists in
    spec/index.json or is one a registered operation defines (`defines_clauses`); a case citing
    an unknown id raises ValueError.
    """
    from attnconf import operations

    cases = [case for op in operations.operations() if op.cases for case in op.resolve("cases")()]
    _check(cases)
    return cases


def _check(cases: list[Case]) -> None:
    from attnconf import spec
    from attnconf.validation import fail

    from attnconf import operations

    known = set(spec.clause_ids()).union(*(op.defines_clauses for op in operations.operations()))
    registered = operations.names()
    seen = set()
    for case in cases:
        if case.id in seen:
            fail("case ids", "unique", repr(case.id))
        seen.add(case.id)
        unknown = sorted(set(case.clauses) - known)
        if unknown:
            fail(f"clauses of case {case.id}", "ids from spec/index.json", unknown)
        if case.operation not in registered:
            fail(f"operation of case {case.id}", "one of " + ", ".join(registered), repr(case.operation))
