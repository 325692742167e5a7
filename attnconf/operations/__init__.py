"""The operation registry: one declaration per operation, read by every layer (STYLE 14).

What an operation *is* — its inputs, outputs and options, its reference function, its natural
scale, its golden cases and file, how an adapter is called for it, its clauses, its work count,
its plug-in flag and bare-function signature — is one `Operation` object. The engine, runner,
golden files, verify-outputs, bench, calibration, report and the pytest plugin iterate
`operations()` or look one up with `get(name)`; none of them names an operation. Adding an
operation means: its spec file, its reference module, its cases, its adapter methods, and one
`Operation` (here for the bundled ones, or through the entry-point group `attnconf.operations`
for a third party's: docs/plugins.md).

Functions are named by dotted path ("attnconf.reference.sdpa:compute") where importing them here
would import the reference (or NumPy work) just to list operations; `Operation.resolve(attr)`
imports them once. Call hooks (`call`, `bench_call`, …) are plain callables.

Must not import any framework, nor the conformance layer.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Callable

from attnconf.errors import UsageError

ENTRY_POINT_GROUP = "attnconf.operations"
BUILTIN = ("sdpa", "sdpa_vjp", "mha", "encoding", "rope", "rope_cache",
           "alibi_slopes", "alibi_bias", "relative_position_bucket", "relative_position_bias",
           "relative_position_index", "position_ids", "position_embedding",
           "sdpa_lse", "merge_attention_states", "sdpa_paged",
           "sdpa_varlen")   # modules of this package, in catalogue order


def _load(path: str):
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclasses.dataclass(frozen=True)
class Operation:
    """One operation of the spec. Field groups: what it is; the reference and judging; golden
    files and cases; adapters, plug-ins and benchmarks. Paths are "module:attribute"."""

    # --- what it is --------------------------------------------------------------------------
    name: str                                   # "sdpa": records' "operation", case ids' owner
    title: str                                  # "scaled dot-product attention"
    inputs: tuple[str, ...]                     # required array inputs of a case
    optional_inputs: tuple[str, ...] = ()       # array inputs a case may have
    mask_inputs: tuple[str, ...] = ()           # inputs converted with adapter.mask_from_numpy
    index_inputs: tuple[str, ...] = ()          # integer inputs converted with adapter.index_from_numpy (never cast to the dtype)
    options: tuple[str, ...] = ()               # keyword options the reference accepts
    outputs: tuple[str, ...] = ("output",)      # output names, in the order an adapter returns them
    optional_outputs: tuple[str, ...] = ()      # outputs an implementation may not have (it returns None
                                                # there): not judged, the record names them (a packed
                                                # kernel without an LSE, PyTorch's jagged SDPA)
    output_dtypes: Callable | None = None       # (output name, case dtype) -> the dtype it must have (an LSE:
                                                # float32 for half inputs); None: every output in the case dtype
    clauses: tuple[str, ...] = ()               # clauses every case of the operation exercises
    defines_clauses: tuple[str, ...] = ()       # clause ids it adds to spec/index.json's (a plug-in's own spec)
    dtype_clause: str = ""                      # the clause a wrong output dtype violates
    spec_file: str = ""                         # spec/<file>.md that defines it

    # --- the reference and judging -----------------------------------------------------------
    reference: str = ""                         # (inputs, options, *, precision, exact) -> {output: array}
    natural_scale: str = ""                     # (inputs, options) -> {output: array}
    tolerance: dict = dataclasses.field(default_factory=dict)   # dtype -> tolerance.Rule (bundled: tolerance.TABLE)
    positions: Callable | None = None           # case -> per-row positions (per-position baseline) or None
    argument_scale: Callable | None = None      # (case, positions) -> magnitude of rounded arguments, or None

    # --- golden files and cases --------------------------------------------------------------
    case_prefix: str = ""                       # "sdpa": case ids are "<prefix>/<name>"
    cases: str = ""                             # () -> [Case]: the golden catalogue of this operation
    golden_file: str = ""                       # "sdpa.npz": the archive holding its golden cases
    families: str = ""                          # {family: (rng, i, case_id) -> Case} random cases for calibration
    dtypes: tuple[str, ...] = ()                # () : runs at the run's float dtypes; ("int64",): an integer-valued
                                                # operation whose output dtype is fixed, run once and judged bit-exact
    exact_outputs: tuple[str, ...] = ()         # outputs that are integer-valued at every dtype (any integer dtype,
                                                # judged bit-exactly by the operation's int64 tolerance row)
    case_claims: Callable | None = None         # (capabilities, case) -> "" or the claim the case needs that the
                                                # capabilities do not make: the planner skips it before any call

    # --- checks beyond agreement (modules, "package.module") ---------------------------------
    invariants: tuple[str, ...] = ()            # modules with INVARIANTS (checks.invariants.Invariant, ...) and,
                                                # optionally, DETERMINISM (a checks.invariants.DeterminismProbe)
    profile: tuple[str, ...] = ()               # modules with ASPECTS (checks.profile.Aspect, ...) and, optionally,
                                                # OUTPUT_DTYPE (adapter, dtype) -> native output of a tiny call

    # --- adapters, plug-ins and benchmarks ---------------------------------------------------
    adapter_method: str = ""                    # Adapter method name ("sdpa")
    call: Callable | None = None                # (adapter, native inputs, options, dtype) -> result
    needs: Callable | None = None               # capabilities -> "" or why the adapter cannot run it at all
    plugin_flag: str = ""                       # "--sdpa": `attnconf run` / pytest (--attnconf-sdpa) option
    function_keywords: tuple[str, ...] = ()     # keywords a bare function may accept
    function_signature: str = ""                # documented bare-function signature
    function_gradient: str = ""                 # operation a bare function also gives by the framework's autodiff
    work: Callable | None = None                # (shape dict, causal) -> flops (or entries)
    work_unit: str = "flop"                     # "flop" | "entry" | "byte"
    bench_call: Callable | None = None          # (adapter, point, seed) -> no-argument callable on native inputs
    bench_grid: Callable | None = None          # (quick, Ls, dtypes, max_L, max_positions) -> [(dtype, B, H, L, S, E, causal)]
    # the report's use of its records: "plot": "attention" (max error vs L, L = shape[axis] of
    # "length": (input, axis)) or "encoding" (max error vs position); "label": its series read
    # "impl (label)"; "headline": its float32 speed heads the at-a-glance row. {}: none of these
    report: dict = dataclasses.field(default_factory=dict)

    def resolve(self, attr: str):
        """The object a path field names (imported once), or None when the field is empty."""
        value = getattr(self, attr)
        if not value:
            return None
        return _resolve(value)

    def modules(self, attr: str) -> tuple:
        """The modules a module field ("invariants", "profile") names, imported, in order."""
        value = getattr(self, attr)
        return tuple(importlib.import_module(m) for m in ((value,) if isinstance(value, str) else value) if m)

    def compute(self, inputs, options, *, precision=None, exact=False) -> dict:
        return self.resolve("reference")(dict(inputs or {}), dict(options or {}),
                                         precision=precision, exact=exact)

    def scales(self, inputs, options) -> dict:
        return self.resolve("natural_scale")(dict(inputs or {}), dict(options or {}))

    def output_dtype(self, output: str, dtype: str) -> str:
        """The dtype `output` must have in a case run at `dtype` (output_dtypes, else `dtype`)."""
        return self.output_dtypes(output, dtype) if self.output_dtypes is not None else dtype

    # --- the dtype policy: the one place that says at which dtypes and how exactly it is judged -
    def case_dtypes(self, run_dtypes) -> tuple[str, ...]:
        """The dtypes its cases run at in a run asking for `run_dtypes`: its fixed `dtypes` (an
        integer-valued operation: once, whatever float dtypes are asked for), else the run's
        float dtypes (a run asking only for int64 runs no float operation)."""
        from attnconf.dtypes import DTYPE_NAMES

        return tuple(self.dtypes) or tuple(d for d in run_dtypes if d in DTYPE_NAMES)

    def runs_at(self, dtype: str) -> bool:
        """Whether its cases and checks run at `dtype` (case_dtypes of a run asking for it)."""
        return dtype in self.case_dtypes((dtype,))

    def fixed_dtype(self, dtype: str) -> bool:
        """Whether `dtype` is one of its fixed dtypes: not a precision an adapter declares, but
        the operation's own (every adapter implementing it runs it there)."""
        return dtype in self.dtypes

    def exact(self, output: str, dtype: str) -> bool:
        """Whether `output` at `dtype` is integer-valued and judged bit-exactly (any integer
        dtype is accepted): every output at a fixed dtype, and its `exact_outputs` always."""
        return dtype in self.dtypes or output in self.exact_outputs

    def judging_dtype(self, output: str, dtype: str) -> str:
        """The dtype whose tolerance row and ulp judge `output` of a case run at `dtype`."""
        return (self.dtypes[0] if dtype in self.dtypes else "int64") if self.exact(output, dtype) else dtype

    def reference_precision(self, dtype: str):
        """The `precision` of its same-precision baseline at `dtype` (None: the float64 path,
        also for a fixed dtype, whose integer values are exact)."""
        return None if dtype == "float64" or dtype in self.dtypes else dtype


@functools.lru_cache(maxsize=None)
def _resolve(path: str):
    return _load(path)


_REGISTRY: dict[str, Operation] = {}
_LOADED = False


def register(op: Operation, *, replace: bool = False) -> Operation:
    """Add `op` to the registry (a name already taken is a UsageError unless replace=True)."""
    if not isinstance(op, Operation):
        raise UsageError(f"an operation should be an attnconf.operations.Operation, but got {type(op).__name__}")
    if op.name in _REGISTRY and not replace and _REGISTRY[op.name] is not op:
        raise UsageError(f"operation name {op.name!r} should be unique, but it is registered already")
    _REGISTRY[op.name] = op
    return op


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN:
        register(importlib.import_module(f"{__name__}.{module}").OPERATION)
    _load_entry_points()


def _load_entry_points() -> None:
    from importlib import metadata

    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 signature
        eps = metadata.entry_points().get(ENTRY_POINT_GROUP, ())
    for ep in eps:
        try:
            obj = ep.load()
        except Exception as exc:
            raise UsageError(f"entry point {ep.name!r} of group {ENTRY_POINT_GROUP} should import, "
                             f"but raised {type(exc).__name__}: {exc}") from None
        for op in (obj() if callable(obj) and not isinstance(obj, Operation) else obj,):
            for one in (op if isinstance(op, (list, tuple)) else (op,)):
                register(one)


def operations() -> tuple[Operation, ...]:
    """Every registered operation: the bundled ones in catalogue order, then the others."""
    _ensure_loaded()
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    return tuple(op.name for op in operations())


def get(name: str) -> Operation:
    """The operation called `name`; a UsageError naming the known ones otherwise."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UsageError(f"operation should be one of {', '.join(_REGISTRY)}, but got {name!r}") from None


def with_flag(flag: str) -> Operation | None:
    """The operation whose bare-function plug-in flag is `flag` ("--sdpa"), or None."""
    return next((op for op in operations() if op.plugin_flag == flag), None)
