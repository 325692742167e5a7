"""Golden vectors: generate, load, verify and export the expected outputs of the case catalogue.

For what: the catalogue (attnconf.reference.cases) gives inputs; `generate` computes each case's
expected outputs with the reference (`compute(..., exact=True)`, ≤ 1 ulp of natural scale) and
natural scales (`natural_scales`), and stores them as one .npz per operation plus
`manifest.json` (spec and generator versions, seeds, shapes, dtypes, options, clauses, family,
sha256 of every file). `load_cases` gives Case objects back; `verify` checks every sha256 and that
regeneration reproduces the stored outputs; `golden_export.export` writes a language-neutral copy
(.npy + JSON, see docs/golden-format.md).

Must not: import a framework; load anything with pickle (`allow_pickle=False` everywhere); hold
hand-made expected numbers (every expected value comes from the reference).

Golden dir: `golden_dir` argument, else $ATTNCONF_GOLDEN_DIR, else the package's reference/golden.
Problems with golden files (missing, unreadable, truncated, sha256 mismatch) raise SetupError
with a one-line message naming the file.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from attnconf import selection
from attnconf.errors import SetupError, UsageError
from attnconf.reference.cases import Case, catalogue

GENERATOR_VERSION = "1.1"
GENERATOR_NOTE = ("1.1: inputs rounded to bfloat16 by the project's own rule instead of ml_dtypes' cast, "
                  "which rounds float64 through float32 (twice) in ml_dtypes 0.5 and once in 0.7; "
                  "1.0 files hold double-rounded inputs (sdpa/long_s512 key) that no longer regenerate")
INPUT_ROUNDING = ("float64 values exactly representable in float16 and bfloat16: rounded once to "
                  "bfloat16, nearest-even, straight from float64 (reference/rounding.py, spec tol.golden)")
FORMAT_VERSION = 1          # layout of manifest.json + .npz; loaders keep reading every version
EXPORT_FORMAT_VERSION = 1   # layout of `export` (docs/golden-format.md)
MANIFEST = "manifest.json"
ENV_VAR = "ATTNCONF_GOLDEN_DIR"
MAX_TOTAL_BYTES = 20 * 1024 * 1024
_EPS64 = 2.0 ** -52
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: same outputs -> same sha256


# --- where the golden files are --------------------------------------------------------------

def resolve_dir(path: str | os.PathLike | None = None) -> Path:
    """The golden directory: `path`, else $ATTNCONF_GOLDEN_DIR, else the package's golden/."""
    if path is not None:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(os.fspath(resources.files("attnconf.reference").joinpath("golden")))


def file_name(operation: str) -> str:
    """The archive of one operation's cases: its registry entry's `golden_file` (else NAME.npz).

    One archive per operation, so loading one operation's cases reads one file; an operation that
    is not registered is a UsageError naming the registered ones.
    """
    from attnconf import operations

    op = operations.get(operation)
    return op.golden_file or f"{op.name}.npz"


# --- generate --------------------------------------------------------------------------------

def generate(golden_dir: str | os.PathLike | None = None, *, cases: list[Case] | None = None) -> dict:
    """Compute expected outputs and scales of every catalogue case and write the golden files.

    The catalogue holds the cases of every registered operation (a plug-in's too), one archive
    per operation (`file_name`); `cases` replaces it. Returns the manifest written. Files are
    written to temporary names and renamed, the manifest last, so an interrupted run leaves the
    previous goldens readable.
    """
    from attnconf import operations
    from attnconf.reference import compute, natural_scales

    directory = _writable_dir(resolve_dir(golden_dir))
    cases = catalogue() if cases is None else cases
    started = time.perf_counter()
    for operation in {case.operation for case in cases}:
        file_name(operation)   # every operation registered, before any work
    groups: dict[str, list[Case]] = {op: [] for op in operations.names()}   # registry order
    for case in cases:
        case.expected = _as_float64(compute(case.operation, case.inputs, case.options, exact=True))
        case.scale = _as_float64(natural_scales(case.operation, case.inputs, case.options))
        groups[case.operation].append(case)
    manifest = {
        "format_version": FORMAT_VERSION,
        "spec_version": _spec_version(),
        "generator": "attnconf.reference.golden",
        "generator_version": GENERATOR_VERSION,
        "generator_note": GENERATOR_NOTE,
        "suite_version": _suite_version(),
        "numpy_version": np.__version__,
        "exact": True,
        "input_values": INPUT_ROUNDING,
        "files": {},
        "cases": [],
    }
    for operation, members in groups.items():
        if not members:
            continue
        name = file_name(operation)
        arrays = {}
        for n, case in enumerate(members):
            key = f"c{n:03d}"
            arrays.update(_case_arrays(key, case))
            manifest["cases"].append(_case_record(case, name, key))
        data = _npz_bytes(arrays)
        _atomic_write(directory / name, data)
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                        "cases": len(members)}
    total = sum(f["bytes"] for f in manifest["files"].values())
    manifest["total_bytes"] = total
    manifest["generation_seconds"] = round(time.perf_counter() - started, 2)
    if total > MAX_TOTAL_BYTES:
        raise SetupError(f"golden files should take at most {MAX_TOTAL_BYTES} bytes, but got {total}")
    _atomic_write(directory / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    return manifest


def _case_arrays(key: str, case: Case) -> dict[str, np.ndarray]:
    arrays = {f"{key}.input.{n}": a for n, a in case.inputs.items()}
    arrays.update({f"{key}.expected.{n}": a for n, a in case.expected.items()})
    arrays.update({f"{key}.scale.{n}": a for n, a in case.scale.items()})
    return arrays


def _case_record(case: Case, file_name: str, key: str) -> dict:
    def spec_of(arrays):
        return {n: {"shape": list(a.shape), "dtype": str(a.dtype)} for n, a in arrays.items()}

    return {"id": case.id, "operation": case.operation, "file": file_name, "key": key,
            "clauses": list(case.clauses), "family": case.family, "seed": case.seed,
            "description": case.description, "options": case.options,
            "inputs": spec_of(case.inputs), "outputs": spec_of(case.expected)}


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


# --- load --------------------------------------------------------------------------------------

def read_manifest(golden_dir: str | os.PathLike | None = None) -> dict:
    """The parsed manifest.json; SetupError naming it when missing, unreadable or malformed."""
    path = resolve_dir(golden_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"golden manifest {path} is missing (run 'attnconf golden generate')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"golden manifest {path} is unreadable: {_reason(exc)}") from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"golden manifest {path} is not valid JSON (truncated?): {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise SetupError(f"golden manifest {path} should be a manifest, but it nests deeper than Python's JSON "
                         "reader goes") from None
    if not isinstance(manifest, dict) or not {"files", "cases"} <= set(manifest):
        raise SetupError(f"golden manifest {path} should hold 'files' and 'cases', but got {_keys(manifest)}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SetupError(f"golden manifest {path} format_version should be <= {FORMAT_VERSION}, but got {version!r}")
    return manifest


def select_records(records: Iterable[dict], select: str | None) -> list[dict]:
    """Records whose id `select` selects (attnconf.selection: globs, substrings, commas)."""
    return selection.select(records, select, key=lambda r: r["id"])


def load_cases(select: str | None = None, *, golden_dir: str | os.PathLike | None = None) -> list[Case]:
    """Golden cases (inputs, expected, scale) whose id matches `select` (see select_records).

    Every file the selection needs is checked against its sha256 first. Raises SetupError naming
    the file for missing, unreadable, truncated or mismatched golden files.
    """
    directory = resolve_dir(golden_dir)
    manifest = read_manifest(directory)
    try:
        records = select_records(manifest["cases"], select)
        archives = {name: _open_archive(directory, name, manifest) for name in {r["file"] for r in records}}
        return [_case_from(record, archives[record["file"]], directory) for record in records]
    except (KeyError, TypeError, AttributeError) as exc:  # a record without its fields: edited by hand
        raise SetupError(f"golden manifest {directory / MANIFEST} has a malformed case record: {_reason(exc)}") from None


def _open_archive(directory: Path, name: str, manifest: dict) -> dict[str, np.ndarray]:
    """All arrays of one archive, after its sha256 matched the manifest."""
    path = directory / name
    entry = manifest["files"].get(name)
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise SetupError(f"golden file {path} is not listed in {directory / MANIFEST}")
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise SetupError(f"golden file {path} sha256 should be {entry['sha256']}, but got {digest} "
                         f"({len(data)} bytes; modified or truncated)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise SetupError(f"golden file {path} is unreadable: {_reason(exc)}") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SetupError(f"golden file {path} is missing (run 'attnconf golden generate')") from None
    except OSError as exc:
        raise SetupError(f"golden file {path} is unreadable: {_reason(exc)}") from None


def _case_from(record: dict, arrays: dict[str, np.ndarray], directory: Path) -> Case:
    key = record["key"]

    def part(kind: str, names) -> dict[str, np.ndarray]:
        out = {}
        for name in names:
            full = f"{key}.{kind}.{name}"
            if full not in arrays:
                raise SetupError(f"golden file {directory / record['file']} lacks array {full!r} of case {record['id']}")
            out[name] = arrays[full]
        return out

    return Case(id=record["id"], operation=record["operation"], clauses=tuple(record["clauses"]),
                inputs=part("input", record["inputs"]), options=dict(record["options"]),
                expected=part("expected", record["outputs"]), scale=part("scale", record["outputs"]),
                seed=int(record["seed"]), family=record["family"], description=record.get("description", ""))


# --- verify ------------------------------------------------------------------------------------

def verify(golden_dir: str | os.PathLike | None = None, *, select: str | None = None) -> dict:
    """Check every golden file's sha256, then regenerate and compare (spec clause tol.golden).

    The stored files are the truth. Regeneration: the catalogue must give the stored inputs bit
    for bit (inputs are rounded by reference/rounding.py, never a dependency's cast), and the reference
    (exact=True) must reproduce every stored output within 1 ulp of its natural scale:
    |new − stored| ≤ 2^-52 · scale (exact equality where the scale is 0); natural scales must
    agree to a relative 2^-40. Returns a report dict
    with "ok" (bool), "files", "cases", "mismatches" (list of dicts), "max_ulp" and "seconds".
    SetupError (naming the file) for unreadable, missing, truncated or mismatched files.
    """
    from attnconf.reference import compute, natural_scales

    started = time.perf_counter()
    directory = resolve_dir(golden_dir)
    manifest = read_manifest(directory)
    for name in manifest["files"]:
        _open_archive(directory, name, manifest)  # every sha256, even of unselected files
    stored = load_cases(select, golden_dir=directory)
    fresh = {c.id: c for c in catalogue()}
    mismatches: list[dict] = []
    max_ulp = 0.0
    for case in stored:
        new = fresh.get(case.id)
        if new is None:
            mismatches.append({"case": case.id, "what": "case", "message": "no longer in the catalogue"})
            continue
        bad_inputs = sorted(n for n in set(case.inputs) | set(new.inputs)
                            if n not in case.inputs or n not in new.inputs
                            or not np.array_equal(case.inputs[n], new.inputs[n], equal_nan=True))
        if bad_inputs or new.options != case.options:
            mismatches.append({"case": case.id, "what": "inputs",
                               "message": f"catalogue inputs/options differ: {bad_inputs or 'options'}"})
            continue
        outputs = compute(case.operation, case.inputs, case.options, exact=True)
        scales = natural_scales(case.operation, case.inputs, case.options)
        for name, stored_scale in case.scale.items():
            # The scale is a denominator, not a target: agreement to ~1e-12 relative is plenty,
            # and allows a different BLAS summation order on another machine.
            new_scale = np.asarray(scales[name], dtype=np.float64)
            if new_scale.shape != stored_scale.shape or not np.allclose(new_scale, stored_scale, rtol=2.0 ** -40, atol=0.0):
                mismatches.append({"case": case.id, "what": f"scale.{name}",
                                   "message": f"natural scale of {name} differs from the stored one"})
        for name, expected in case.expected.items():
            ulp, index = ulp_error(np.asarray(outputs[name], dtype=np.float64), expected, case.scale[name])
            max_ulp = max(max_ulp, ulp)
            if ulp > 1.0:
                mismatches.append({"case": case.id, "what": name, "max_ulp": ulp, "worst_index": index,
                                   "message": f"{name} differs by {ulp:.3g} ulp of natural scale at {index}"})
    return {"golden_dir": str(directory), "ok": not mismatches, "files": sorted(manifest["files"]),
            "cases": len(stored), "spec_version": manifest.get("spec_version"),
            "spec_version_current": _spec_version(), "mismatches": mismatches, "max_ulp": max_ulp,
            "seconds": round(time.perf_counter() - started, 2)}


def ulp_error(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray) -> tuple[float, list[int] | None]:
    """Largest |actual − expected| in float64 ulps of the natural scale, and where it is.

    Zero scale (e.g. a fully-masked row's zero output) allows no difference: any difference is
    reported as inf. NaN in one array but not the other is inf; equal NaNs are 0.
    """
    if actual.shape != expected.shape:
        return float("inf"), None
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    with np.errstate(divide="ignore", invalid="ignore"):   # −∞ − (−∞) (an LSE's empty row) is `same`
        diff = np.abs(actual - expected)
        ulps = np.where(same, 0.0, diff / (_EPS64 * np.asarray(scale, dtype=np.float64)))
    ulps = np.where(np.isnan(ulps), np.inf, ulps)
    if ulps.size == 0:
        return 0.0, None
    flat = int(np.argmax(ulps))
    return float(ulps.flat[flat]), [int(i) for i in np.unravel_index(flat, ulps.shape)]


# --- export ------------------------------------------------------------------------------------

def _as_float64(outputs: dict) -> dict[str, np.ndarray]:
    return {name: np.asarray(a, dtype=np.float64) for name, a in outputs.items()}


def _writable_dir(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"golden directory {directory} should be creatable, but got {_reason(exc)}") from None
    return directory


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"golden file {path} should be writable, but got {_reason(exc)}") from None


def _spec_version() -> str:
    from attnconf import spec

    return spec.spec_version()


def _suite_version() -> str:
    from attnconf import __version__

    return __version__


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def _keys(obj: Any) -> str:
    return sorted(obj) if isinstance(obj, dict) else type(obj).__name__
