"""The known-bad zoo: implementations the conformance suite must fail, one bug each.

Each class subclasses `_base.ZooAdapter` (a correct NumPy implementation) and overrides one
step; its docstring names the bug class (docs/findings.md, which cites the upstream sources) and the
real-world issue it mirrors. `all_known_bad()` lists them; `control()` is the correct base, which must pass.
It ships with the package (`attnconf.conformance.known_bad`) because `attnconf calibrate` runs
it by default, from any directory; tests/test_known_bad_*.py use it too. Only calibration may
import it: no conformance check, adapter or report depends on these bugs.
"""
from __future__ import annotations

import importlib

MODULES = ("scale", "softmax", "precision", "mask", "causal", "gqa", "grads", "grads_options", "mha", "encoding", "rope",
           "rope_cache", "sdpa_options", "positions", "lse", "varlen", "paged")


def all_known_bad() -> list[type]:
    """Every known-bad class, in module order then definition order."""
    from ._base import ZooAdapter

    found = []
    for name in MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, ZooAdapter) and obj is not ZooAdapter
                    and obj.__module__ == module.__name__ and not obj.__name__.startswith("_")):
                found.append(obj)
    return found


def control() -> type:
    from ._base import ZooAdapter

    return ZooAdapter
