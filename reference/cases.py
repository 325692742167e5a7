"""The case catalogue: every golden case, generated from the spec index, each citing its clauses.

Contract used by the golden files, the conformance engine and the reports:

    Case.id         "sdpa/gqa_h4_hkv2_causal_br" — unique, stable, path-like
    Case.operation  "sdpa" | "sdpa_vjp" | "multi_head_attention" | "sinusoidal_encoding"
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
