"""The normative spec as data: clause index, spec version and the text files.

`index.json` (validated by tests against `index.schema.json`) lists every clause with a stable id;
tests, cases and reports cite these ids. The Markdown files hold the normative text, each clause
introduced by a heading that carries its id in braces, e.g. `### Default scale {#sdpa.scale.default}`.
"""
from __future__ import annotations

import functools
import json
import re
from importlib import resources


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def load_index() -> dict:
    """The parsed clause index: {"spec_version", "sections": [...], "clauses": [...]}."""
    return json.loads(_read("index.json"))


def spec_version() -> str:
    return load_index()["spec_version"]


def clauses(section: str | None = None) -> list[dict]:
    """Clause records, optionally only those of one section id (e.g. "sdpa")."""
    return [c for c in load_index()["clauses"] if section is None or c["section"] == section]


def clause(clause_id: str) -> dict:
    for c in load_index()["clauses"]:
        if c["id"] == clause_id:
            return c
    from attnconf.validation import fail

    fail("clause id", "one of the ids in spec/index.json", repr(clause_id), KeyError)


def text(file_name: str) -> str:
    """The Markdown text of one spec file (e.g. "sdpa.md")."""
    return _read(file_name)


# A clause heading: `### Title {#clause.id}` (levels 2-4), as every spec file writes them.
_HEADING = re.compile(r"^#{2,4}[ \t]+(?P<title>.*?)[ \t]*\{#(?P<id>[A-Za-z0-9_.\-]+)\}[ \t]*$", re.M)


def headings(file_name: str) -> dict[str, str]:
    """The clause headings of one spec file: {clause id: title}, in file order."""
    return {m["id"]: m["title"] for m in _HEADING.finditer(text(file_name))}


def has_file(file_name: str) -> bool:
    """Whether a spec file ships with the package (tolerance.md is written by another part)."""
    return resources.files(__name__).joinpath(file_name).is_file()


def load_schema() -> dict:
    """The JSON Schema of index.json."""
    return json.loads(_read("index.schema.json"))


def clause_ids(kind: str | None = None) -> list[str]:
    """All clause ids, optionally only those of one kind ("definition", "invariant", …)."""
    return [c["id"] for c in load_index()["clauses"] if kind is None or c["kind"] == kind]
