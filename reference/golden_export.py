"""Export the golden cases as a language-neutral copy: one .npy per array plus index JSON
(docs/golden-format.md), for implementations outside Python. Reads what reference/golden.py stores."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from attnconf.errors import UsageError
from attnconf.reference.golden import load_cases, read_manifest, _reason, EXPORT_FORMAT_VERSION


def export(dest_dir: str | os.PathLike, *, golden_dir: str | os.PathLike | None = None,
           select: str | None = None) -> Path:
    """Write the golden cases as one .npy per array plus index.json (docs/golden-format.md).

    Layout: DEST/index.json and DEST/<case id>/{inputs,expected,scale}/<name>.npy, every array
    little-endian C-order .npy version 1.0 (float64 '<f8', masks bool '|b1', integer inputs int64 '<i8'). Returns DEST/index.json.
    UsageError when DEST is a file, a non-empty directory that is not a previous export, or unwritable.
    """
    dest = Path(dest_dir)
    cases = load_cases(select, golden_dir=golden_dir)
    manifest = read_manifest(golden_dir)
    _prepare_export_dir(dest)
    entries = []
    try:
        for case in cases:
            entry = {"id": case.id, "operation": case.operation, "clauses": list(case.clauses),
                     "family": case.family, "seed": case.seed, "description": case.description,
                     "options": case.options}
            for kind, arrays in (("inputs", case.inputs), ("expected", case.expected), ("scale", case.scale)):
                entry[kind] = {name: _write_npy(dest, f"{case.id}/{kind}/{name}.npy", arr)
                               for name, arr in arrays.items()}
            entries.append(entry)
        index = {"format": "attnconf-golden-export", "format_version": EXPORT_FORMAT_VERSION,
                 "spec_version": manifest.get("spec_version"), "generator_version": manifest.get("generator_version"),
                 "ulp_unit": "2^-52 times the natural scale (scale arrays)", "cases": entries}
        path = dest / "index.json"
        path.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"export directory {dest} should be writable, but got {_reason(exc)}") from None
    return path


def _prepare_export_dir(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"export destination {dest} should be a directory, but got a file")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / "index.json").is_file():
        raise UsageError(f"export destination {dest} should be empty or a previous export, but got other files")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        _remove_previous_export(dest)
    except OSError as exc:
        raise UsageError(f"export directory {dest} should be writable, but got {_reason(exc)}") from None


def _remove_previous_export(dest: Path) -> None:
    """Delete the files a previous export listed (and nothing else), so no stale case remains."""
    index = dest / "index.json"
    if not index.is_file():
        return
    try:
        old = json.loads(index.read_text(encoding="utf-8"))
        paths = [e["path"] for c in old["cases"] for kind in ("inputs", "expected", "scale")
                 for e in c[kind].values()]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"export destination {dest} holds an index.json that is not an attnconf export") from None
    root = dest.resolve()
    for rel in paths:
        path = (dest / rel).resolve()
        if root in path.parents and path.suffix == ".npy" and path.is_file():
            path.unlink()
            for parent in path.parents:  # prune the directories this left empty
                if parent == root or any(parent.iterdir()):
                    break
                parent.rmdir()
    index.unlink()


def _write_npy(dest: Path, rel: str, arr: np.ndarray) -> dict:
    # integer inputs (block tables, lengths, offsets, positions) stay exact integers: '<i8', so a
    # kernel outside Python reads them as the int64 (or casts to the int32) it takes
    kind = "bool" if arr.dtype == np.bool_ else "int64" if np.issubdtype(arr.dtype, np.integer) else "float64"
    arr = np.ascontiguousarray(arr, dtype={"bool": np.bool_, "int64": np.dtype("<i8")}.get(kind, np.dtype("<f8")))
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)
    return {"path": rel, "shape": list(arr.shape), "dtype": kind, "npy_descr": arr.dtype.str}


# --- helpers -----------------------------------------------------------------------------------
