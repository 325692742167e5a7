"""The spec's clause index and Markdown text, prepared for the report (rendered simply, escaped).

The report embeds the normative text so that each clause in the matrix links to what it says.
Markdown is turned into plain blocks (heading with anchor, paragraph, list, preformatted) that the
template escapes; no Markdown library, no HTML passed through. Missing spec files are tolerated:
the report then says the text is unavailable.

Must not render HTML itself.
"""
from __future__ import annotations

import re

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{#([A-Za-z0-9_.:-]+)\})?\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


def markdown_blocks(md: str) -> list[dict]:
    """[{"kind": "h"|"p"|"ul"|"pre", "level", "text"|"items", "anchor"}] from Markdown text."""
    blocks: list[dict] = []
    para: list[str] = []
    items: list[str] = []
    lines = md.splitlines()
    i = 0

    def flush():
        if para:
            blocks.append({"kind": "p", "text": " ".join(s.strip() for s in para)})
            para.clear()
        if items:
            blocks.append({"kind": "ul", "items": list(items)})
            items.clear()

    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            blocks.append({"kind": "pre", "text": "\n".join(code)})
        elif line.lstrip().startswith("|"):
            flush()
            table = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.append(lines[i])
                i += 1
            blocks.append({"kind": "pre", "text": "\n".join(table)})
            continue
        elif (m := _HEADING.match(line)):
            flush()
            blocks.append({"kind": "h", "level": min(len(m.group(1)) + 2, 6), "text": m.group(2),
                           "anchor": m.group(3) or ""})
        elif not line.strip():
            flush()
        elif (m := _LIST.match(line)):
            if para:
                flush()
            items.append(m.group(1))
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # continuation of a list item
        else:
            if items:
                flush()
            para.append(line)
        i += 1
    flush()
    return blocks


def load_spec() -> dict:
    """{"version", "sections": [{"id","title","file","blocks","missing"}], "clauses": [...],
    "anchors": set of clause ids with a heading in the text, "problems": [...]}."""
    from attnconf import spec

    out = {"version": "", "sections": [], "clauses": [], "anchors": set(), "problems": []}
    try:
        index = spec.load_index()
    except Exception as exc:  # an unreadable index costs the page its spec text, not the report
        out["problems"].append(f"spec index unavailable ({type(exc).__name__}: {exc})")
        return out
    if not isinstance(index, dict):
        out["problems"].append("spec index should be a JSON object, but is not")
        return out
    out["version"] = str(index.get("spec_version", ""))
    clauses = [c for c in index.get("clauses") or [] if isinstance(c, dict) and c.get("id")]
    out["clauses"] = clauses
    sections = index.get("sections") or []
    seen_files = []
    for sec in sections:
        if isinstance(sec, str):
            sec = {"id": sec}
        if not isinstance(sec, dict):
            continue
        sid = str(sec.get("id", ""))
        fname = str(sec.get("file") or (f"{sid}.md" if sid else ""))
        seen_files.append(fname)
        out["sections"].append(_section(spec, sid, str(sec.get("title") or sid), fname, out))
    # clause records may name files that no section lists
    for c in clauses:
        fname = c.get("file")
        if isinstance(fname, str) and fname and fname not in seen_files:
            seen_files.append(fname)
            out["sections"].append(_section(spec, str(c.get("section", "")), fname, fname, out))
    return out


def _section(spec, sid: str, title: str, fname: str, out: dict) -> dict:
    try:
        blocks = markdown_blocks(spec.text(fname))
        missing = False
    except Exception as exc:
        blocks, missing = [], True
        out["problems"].append(f"spec text {fname!r} unavailable ({type(exc).__name__})")
    for b in blocks:
        if b["kind"] == "h" and b.get("anchor"):
            out["anchors"].add(b["anchor"])
    return {"id": sid, "title": title, "file": fname, "blocks": blocks, "missing": missing}
