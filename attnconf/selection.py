"""What `--select` means, for every command that takes it (run, golden verify/export/list,
verify-outputs) and every kind of record (golden cases, invariant/<clause>, profile/<aspect>).

    EXPR := ALTERNATIVE ("," ALTERNATIVE)*
    an alternative with * ? or [ is a glob (fnmatch, case-sensitive) on the whole case id;
    any other alternative selects the ids that contain it (a substring);
    an id is selected when any alternative selects it; no EXPR (None or "") selects everything.

`sdpa-causal*,mha-` selects the ids starting `sdpa-causal` and those containing `mha-`.
Must not import anything of attnconf (every layer imports it).
"""
from __future__ import annotations

import fnmatch
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
GLOB_CHARS = "*?["
HELP = "only cases whose id matches: a glob (* ? [) or a substring, commas joining alternatives"


def alternatives(select: str | None) -> list[str]:
    """The comma-separated alternatives of `select`, stripped, empty ones dropped."""
    return [p.strip() for p in (select or "").split(",") if p.strip()]


def selects(select: str | None, case_id: str) -> bool:
    """Whether `--select select` selects the record with this case id (no select: all)."""
    patterns = alternatives(select)
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(case_id, p) if any(ch in p for ch in GLOB_CHARS) else p in case_id
               for p in patterns)


def select(items: Iterable[T], expr: str | None, *, key: Callable[[T], str]) -> list[T]:
    """The items whose key(item) `expr` selects, in their order."""
    return [item for item in items if selects(expr, key(item))]
