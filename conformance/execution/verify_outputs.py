"""Score outputs computed outside Python against the golden cases (`attnconf verify-outputs`).

An implementation in C, Rust, CUDA … reads the exported golden inputs (`attnconf golden export
DIR`, docs/golden-format.md), computes its outputs and saves them in one of two layouts
(docs/non-python.md):

  OUTPUTS.npz            a zip of .npy arrays keyed "<case id>/<output name>",
                         e.g. "sdpa/gqa_h4_hkv2/output", "sdpa_vjp/basic/dq"
  OUTPUTS/ (a folder)    the same keys as files: OUTPUTS/sdpa/gqa_h4_hkv2/output.npy

Each case's outputs are judged by the engine's `judge` — the same shape/dtype checks and the same
tolerance rule as `attnconf run` — and become records of the same results JSON. The precision of
a case is the dtype of its arrays (or `--dtype`). Cases the file has no outputs for are `skip`.

Arrays are read with allow_pickle=False: an outputs file is untrusted input. Must not import any
framework and must not run implementation code.
"""
from __future__ import annotations

import dataclasses
import shlex
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from attnconf import selection
from attnconf.conformance.results.record import Status
from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import SetupError, UsageError

DEFAULT_NAME = "external"


def read_outputs(path: str | Path) -> dict[str, np.ndarray]:
    """{key: array} from an .npz file or a folder of .npy files; UsageError naming the file."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.exists():
        raise UsageError(f"outputs file {path} should exist (an .npz, or a folder of .npy files), but it does not")
    _check_magic(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise UsageError(f"outputs file {path} should be an .npz archive of arrays keyed "
                             f"'<case id>/<output name>', but it holds a single array")
        with data:
            return {key: _checked(data, key, path) for key in data.files}
    except UsageError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise UsageError(f"outputs file {path} should be an .npz archive of .npy arrays, but reading it "
                         f"failed: {type(exc).__name__}: {_first_line(exc)}") from None


def _check_magic(path: Path) -> None:
    """Say what the file is before NumPy guesses: np.load takes any other file for a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise UsageError(f"outputs file {path} should be readable, but {exc.strerror or exc}") from None
    if head.startswith(b"\x93NUMPY"):
        raise UsageError(f"outputs file {path} should be an .npz archive of arrays keyed "
                         f"'<case id>/<output name>', but it holds a single array")
    if not head.startswith(b"PK"):
        raise UsageError(f"outputs file {path} should be an .npz (zip) archive of .npy arrays or a folder, "
                         f"but it is neither (starts with {head!r})")


def _checked(data, key: str, path: Path) -> np.ndarray:
    try:
        return data[key]
    except ValueError as exc:   # object arrays need pickle, which is refused
        raise UsageError(f"outputs file {path}: array {key!r} should be numeric, but it is an object-dtype "
                         f"array (Python objects, not numbers: {_first_line(exc)})") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UsageError(f"outputs file {path}: array {key!r} is truncated or corrupt "
                         f"({type(exc).__name__}: {_first_line(exc)})") from None


def _read_folder(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for file in sorted(root.rglob("*.npy")):
        key = file.relative_to(root).with_suffix("").as_posix()
        try:
            out[key] = np.load(file, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            what = "it is an object-dtype array (Python objects, not numbers)" if "Object arrays" in str(exc) \
                else "reading it failed"
            raise UsageError(f"outputs file {file} should be a numeric .npy array, but {what}: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    return out


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def group_by_case(arrays: dict[str, np.ndarray], case_ids: Iterable[str]) -> tuple[dict, list[str]]:
    """({case id: {output name: array}}, keys matching no case). A key is "<case id>/<name>"."""
    known = set(case_ids)
    grouped: dict[str, dict[str, np.ndarray]] = {}
    unknown = []
    for key, array in arrays.items():
        case_id, _, name = key.rpartition("/")
        if case_id in known and name:
            grouped.setdefault(case_id, {})[name] = array
        else:
            unknown.append(key)
    return grouped, unknown


def _as_dtype(array: np.ndarray, dtype: str | None) -> np.ndarray:
    # bfloat16 has no standard .npy type: C writers store its bits as uint16 (or 2-byte void).
    if dtype == "bfloat16" and array.dtype in (np.dtype(np.uint16), np.dtype("V2")):
        import ml_dtypes

        return array.view(ml_dtypes.bfloat16)
    return array


def infer_dtype(outputs: dict[str, np.ndarray], op=None) -> str | None:
    """The precision of a case: the dtype name shared by its arrays (None when not one of ours);
    an integer-valued output of `op` (its Operation.exact_outputs) says nothing about it, and for
    an operation whose outputs have dtypes of their own (Operation.output_dtypes: an LSE is
    float32 beside a float16 output), the one precision every array's dtype fits."""
    if op is not None and op.output_dtypes is not None:
        fits = [d for d in DTYPE_NAMES
                if all(str(a.dtype) == op.output_dtype(n, d) for n, a in outputs.items())]
        return fits[0] if len(fits) == 1 else None
    exact = tuple(getattr(op, "exact_outputs", ()) or ())
    names = {str(a.dtype) for n, a in outputs.items() if n not in exact} or {str(a.dtype) for a in outputs.values()}
    if len(names) == 1 and (name := names.pop()) in DTYPE_NAMES:
        return name
    return None


def verify(cases, arrays: dict[str, np.ndarray], *, name: str = DEFAULT_NAME, dtype: str | None = None,
           outputs_label: str = "OUTPUTS.npz") -> tuple[list[dict], list[str]]:
    """(records, unknown keys): one record per golden case in `cases`.

    dtype: the precision the outputs claim; None infers it per case from the arrays' dtype.
    """
    from attnconf.conformance import plan
    from attnconf.conformance.judging import engine

    grouped, unknown = group_by_case(arrays, [c.id for c in cases])
    # A case without outputs is a skip at the precision the file is about.
    by_id = {c.id: c for c in cases}
    inferred = [d for cid, outs in grouped.items() if (d := infer_dtype(outs, engine.operation_of(by_id[cid])))]
    skip_dtype = dtype or (max(set(inferred), key=inferred.count) if inferred else "float64")
    records = []
    for case in cases:
        outputs = grouped.get(case.id)
        op = engine.operation_of(case)
        # the operation's dtype policy (plan.dtypes): a fixed-dtype operation at its own, always
        fixed = plan.dtypes(op, ())
        if outputs is None:
            rec = engine.judge(case, fixed[0] if fixed else skip_dtype, None, adapter_name=name, framework="external",
                                      status="unsupported", error=f"no outputs for this case in {outputs_label}")
        else:
            outputs = {k: _as_dtype(v, dtype) for k, v in outputs.items()}
            case_dtype = fixed[0] if fixed else dtype or infer_dtype(outputs, op)
            if case_dtype is None:
                found = ", ".join(f"{k}: {v.dtype}" for k, v in sorted(outputs.items()))
                rec = engine.judge(case, "float64", outputs, adapter_name=name, framework="external")
                rec = dataclasses.replace(rec, status=Status.FAIL, metrics={}, message=(
                    f"outputs should share one dtype of {', '.join(DTYPE_NAMES)} (or pass --dtype), "
                    f"but got {found}"))
            else:
                rec = engine.judge(case, case_dtype, outputs, adapter_name=name, framework="external")
        repro = (f"attnconf verify-outputs {shlex.quote(outputs_label)} --select {shlex.quote(case.id)}"
                 + (f" --dtype {rec.dtype}" if dtype else ""))
        records.append(dataclasses.replace(rec, repro=repro).to_json())
    return records, unknown


def select_cases(cases, select: str | None):
    """The cases whose id `select` selects (attnconf.selection, as every --select)."""
    return selection.select(cases, select, key=lambda c: c.id)


def check_name(name: str) -> str:
    if not name or not name.strip() or any(ch in name for ch in "\n\r\t"):
        raise UsageError(f"--name should be a non-empty one-line name for the implementation, but got {name!r}")
    return name


def no_cases_error(golden_dir, select) -> SetupError:
    where = f" in {golden_dir}" if golden_dir else ""
    sel = f" matching --select {select!r}" if select else ""
    return SetupError(f"there should be golden cases{where}{sel} to verify against, but none were found")
