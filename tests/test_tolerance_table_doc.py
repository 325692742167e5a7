"""spec/tolerance.md's table states tolerance.TABLE (STYLE 11: one table): every (operation,
dtype) row of TABLE appears in the Markdown with the same k, floor, strict and arg numbers.
Must not test the rule's numerics (tests/test_tolerance_rule.py does).
"""
from __future__ import annotations

import re

import pytest

from attnconf import spec
from attnconf.conformance.judging.tolerance import TABLE

_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def _number(text: str) -> float:
    text = text.strip()
    if text.startswith("2") and len(text) > 1 and text[1] in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻":
        return 2.0 ** int(text[1:].translate(_SUP))
    return float(text)


def _rows() -> dict:
    """{(operation, dtype): (k, floor, strict, arg)} from the Markdown table."""
    out = {}
    for line in spec.text("tolerance.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7 or cells[0] in ("operation", "---"):
            continue
        dtypes = [d.strip() for d in cells[1].split(",")]
        args = [a.strip() for a in cells[5].split(",")]
        for i, dtype in enumerate(dtypes):
            arg = args[i] if len(args) == len(dtypes) else args[0]
            out[(cells[0], dtype)] = tuple(_number(c) for c in cells[2:5]) + (_number(arg),)
    return out


ROWS = _rows()


@pytest.mark.parametrize("key", sorted(TABLE), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_table_rule_is_stated_in_the_spec(key):
    rule = TABLE[key]
    assert key in ROWS, f"spec/tolerance.md has no row for {key}"
    assert ROWS[key] == (rule.k, rule.floor_ulps, rule.strict_ulps, rule.arg_ulps)


def test_the_spec_states_no_row_the_table_lacks():
    assert not set(ROWS) - set(TABLE)
    assert re.search(r"\| rotary_embedding \| float64 \|.*2²⁹·θ", spec.text("tolerance.md"))
