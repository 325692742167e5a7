"""Every source a user can see resolves: shipped files cite docs/findings.md (in the repository),
never notes a user does not have, and every docs/findings.md anchor they cite exists.

Must not test what the findings say (the adapter findings tests pin the behaviour itself).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FINDINGS = ROOT / "docs" / "findings.md"
# What ships or a user reads: the package folders, the docs, the tests, the top-level files.
SHIPPED_DIRS = ("spec", "reference", "adapters", "conformance", "attnconf", "docs", "tests", ".github", ".ci")
SHIPPED_TOP = ("README.md", "pyproject.toml", "tox.ini", "constraints.txt", "constraints-oldest.txt")
TEXT_SUFFIXES = {".py", ".md", ".json", ".toml", ".ini", ".txt", ".yml", ".yaml", ".j2", ".html", ".cfg", ""}
# Spelled in two halves so this file does not match itself.
FORBIDDEN = ("RESEARCH" + ".md", "../" + "shared", "/work/" + "shared")
CITE = re.compile(r"findings\.md#([a-z0-9-]+)((?:,\s*(?:and\s+)?#[a-z0-9-]+)*)")


def shipped_files() -> list[Path]:
    files = [ROOT / name for name in SHIPPED_TOP if (ROOT / name).is_file()]
    for folder in SHIPPED_DIRS:
        base = ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                if path.suffix == "" and path.parent.name != ".ci":
                    continue
                files.append(path)
    return files


def anchors() -> set[str]:
    text = FINDINGS.read_text(encoding="utf-8")
    return set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))


def test_findings_has_the_topics_the_project_cites():
    need = {"sdpa-table", "sdpa-fully-masked-row", "sdpa-low-precision", "sdpa-backends",
            "sinusoidal-variants", "rope", "alibi", "t5-relative-bias", "shaw-relative-positions",
            "position-ids", "kernel-options", "serving-kernels"}
    assert need <= anchors()


def test_findings_anchors_are_unique():
    ids = re.findall(r'<a id="([a-z0-9-]+)"></a>', FINDINGS.read_text(encoding="utf-8"))
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_file_cites_notes_a_user_does_not_have(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    found = [f for f in FORBIDDEN if f in text]
    assert not found, f"{path.relative_to(ROOT)} cites {found}: cite docs/findings.md#<anchor> and the upstream source"


def test_every_cited_findings_anchor_exists():
    known = anchors()
    missing = []
    cited = 0
    for path in shipped_files():
        if path == Path(__file__).resolve():
            continue  # its own negative example below
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITE.finditer(text):
            names = [match.group(1)] + re.findall(r"#([a-z0-9-]+)", match.group(2))
            for name in names:
                cited += 1
                if name not in known:
                    missing.append(f"{path.relative_to(ROOT)}: #{name}")
    # in-page links of findings.md itself
    for name in re.findall(r"\]\(#([a-z0-9-]+)\)", FINDINGS.read_text(encoding="utf-8")):
        cited += 1
        if name not in known:
            missing.append(f"docs/findings.md: #{name}")
    assert cited > 20, "the expectation files cite docs/findings.md; the pattern found too few citations"
    assert not missing, missing


def test_the_pattern_catches_a_wrong_anchor():
    assert [m.group(1) for m in CITE.finditer("see docs/findings.md#no-such-topic.")] == ["no-such-topic"]
    assert "no-such-topic" not in anchors()
