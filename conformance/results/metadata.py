"""The operation metadata a results file carries, so that the report renders it from the file alone.

    doc["operations"] = operations_metadata()
    # {"sdpa": {"title": "scaled dot-product attention", "section": "sdpa", "order": 0,
    #           "clauses": ["sdpa.scale.default", ...], "report": {"plot": "attention", ...}}, ...}

For what: the report (conformance/report) must not read the live registry (attnconf.operations):
a results file opened on a machine with other plug-ins installed renders the same. Written from
the registry once, when a results document is created (results/files.py `new_document`).
"section" is the spec section of the operation's first clause (spec/index.json), "order" its
place in the registry (bundled operations in catalogue order), "report" its registry entry's
plot hints (tuples become lists: JSON).
Must not: import a framework, or fail a run (an operation whose metadata cannot be read is left
out; the report then falls back to what the records say).
"""
from __future__ import annotations


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def operations_metadata() -> dict:
    """{name: {"title", "section", "order", "clauses", "report"}} for every registered operation."""
    from attnconf import operations, spec

    try:
        sections = {str(c["id"]): str(c.get("section") or "") for c in spec.load_index().get("clauses", [])
                    if isinstance(c, dict) and c.get("id")}
    except Exception:   # an unreadable index costs the sections, not the run
        sections = {}
    out: dict = {}
    try:
        ops = operations.operations()
    except Exception:   # a broken plug-in entry point is reported where the run uses it
        return out
    for order, op in enumerate(ops):
        clauses = [str(c) for c in op.clauses]
        first = clauses[0] if clauses else ""
        out[op.name] = {"title": str(op.title), "section": sections.get(first) or first.split(".")[0],
                        "order": order, "clauses": clauses, "report": _jsonable(dict(op.report))}
    return out
