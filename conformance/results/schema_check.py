"""The results schema (spec/results.schema.json) and the one-line check against it.

    schema()                      # the parsed schema (cached)
    check_schema(doc, schema(), source="reports/x.json")          # doc, or UsageError (one line)
    check_schema(rec, record_schema(), source="record 3")

For what: `Record.from_json`, the results writer's `validate`/`read_results` and the report all
check against the same file. Kept apart from the writer (files.py), which imports the operation
registry for the file's "operations" metadata: the records and the report need the schema, not
the registry.
Must not: import the writer, the registry or a framework.
"""
from __future__ import annotations

import functools
import json
from importlib import resources

from attnconf.errors import UsageError


@functools.lru_cache(maxsize=None)
def schema() -> dict:
    text = resources.files("attnconf.spec").joinpath("results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def record_schema() -> dict:
    """The schema of one results record: $defs/record, with the $defs its $refs name."""
    full = schema()
    return {"$schema": full["$schema"], "$defs": full["$defs"], "$ref": "#/$defs/record"}


def check_schema(instance, against: dict, *, source: str):
    """`instance` if it matches `against` (the results schema or a part of it, record_schema());
    else UsageError with one line naming the problem and where it is."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(against).iter_errors(instance))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{source} does not match the results schema at {where}: {error.message[:200]}")
    return instance
