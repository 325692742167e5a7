"""Repro commands: the one place that spells the command which reruns one results record.

Every record carries `repro`, an `attnconf run` command that reruns just that record: the same
adapter, case, dtype and check, with the same status (tests/test_repro_commands.py runs one of
each kind). It is built here, and only here, from everything that affects a record:

- how the implementation was named: a bundled or entry-point name (`--adapter NAME`), an adapter
  class (`--adapter PKG.MOD:CLASS`) or a bare function (its operation's plugin_flag,
  `--sdpa|--encoding PKG.MOD:FUNC --framework F`), and `--device`;
- how it was judged: `--level`, `--golden-dir`, `--expectations PATH` / `--no-expectations`,
  and `--timeout` (it decides `timeout` records);
- for invariant records `--seed`: which examples are drawn depends on the seed, the invariant
  and the adapter only (invariants.example_count: a fixed number, never a time budget), so the
  same seed draws the same examples and shrinks to the same counterexample;
- `--select CASE --dtype D`, CASE being the record's case id.

`selects(select, case_id)` is what `--select` means for every kind of record alike: golden
cases, `invariant/<clause>` and `profile/<aspect>` (attnconf.selection states the language once;
golden files, verify-outputs and this module all call it).

Must not import any framework.
"""
from __future__ import annotations

import functools
import glob
import shlex

from attnconf import selection

DEFAULT_TIMEOUT_S = 60.0        # `attnconf run --timeout`'s default: left out of commands
SPEC_ATTR = "attnconf_spec"     # the AdapterSpec an adapter instance was built from (when known)


def selects(select: str | None, case_id: str) -> bool:
    """Whether `--select select` selects the record with this case id (no select: all)."""
    return selection.selects(select, case_id)


def _is_spec(spec) -> bool:
    """Whether `spec` is an adapters.registry.AdapterSpec (a dataclass with kind and target),
    told by its form: results must not import the adapters layer (docs/architecture.md)."""
    import dataclasses

    return dataclasses.is_dataclass(spec) and not isinstance(spec, type) and all(
        hasattr(spec, f) for f in ("kind", "target", "framework"))


def remember_spec(adapter, spec) -> None:
    """Note on `adapter` the spec it was built from, so records made from the instance alone
    (pytest's invariant and profile modules) still name a bare function by --sdpa/--framework."""
    if _is_spec(spec):
        try:
            setattr(adapter, SPEC_ATTR, spec)
        except (AttributeError, TypeError):   # __slots__ or a frozen instance: name it by its name
            pass


def adapter_args(adapter, spec=None) -> str:
    """The part of a command that names the implementation (and its device, when not cpu).

    adapter: an Adapter instance or just its name; spec: the registry.AdapterSpec it came from
    (default: the one remember_spec noted on the instance, else `--adapter NAME`).
    """
    name = adapter if isinstance(adapter, str) else getattr(adapter, "name", type(adapter).__name__)
    spec = spec if spec is not None else getattr(adapter, SPEC_ATTR, None)
    if not _is_spec(spec):    # an adapter's own attributes are not a spec (hf-eager has a `kind`)
        spec = None
    kind, target = getattr(spec, "kind", "bundled"), getattr(spec, "target", name)
    if kind == "function":
        from attnconf import operations

        named = getattr(spec, "operation", "")   # none named: the first operation a bare function can be
        opt = (operations.get(named) if named else next(op for op in operations.operations() if op.plugin_flag)).plugin_flag
        args = f"{opt} {shlex.quote(target)} --framework {shlex.quote(spec.framework)}"
    elif kind == "class" and not getattr(spec, "name", ""):
        args = f"--adapter {shlex.quote(target)}"
    else:
        args = f"--adapter {shlex.quote(name)}"
    device = getattr(spec, "device", "cpu") or "cpu"
    return args + (f" --device {shlex.quote(device)}" if device != "cpu" else "")


def run_args(adapter_part: str, *, level: str = "default", golden_dir=None, expectations=None,
             timeout: float | None = None) -> str:
    """adapter_args(...) plus the run options that change records (defaults left out).

    expectations: None the shipped files, False none (--no-expectations), else a list of paths.
    """
    parts = [adapter_part]
    if level and level != "default":
        parts.append(f"--level {shlex.quote(level)}")
    if golden_dir:
        parts.append(f"--golden-dir {shlex.quote(str(golden_dir))}")
    if expectations is False:
        parts.append("--no-expectations")
    elif expectations:
        parts.extend(f"--expectations {shlex.quote(str(p))}" for p in expectations)
    if timeout is not None and float(timeout) != DEFAULT_TIMEOUT_S:
        parts.append(f"--timeout {float(timeout):g}")
    return " ".join(parts)


def command(args: str, case_id: str, dtype: str, *, seed: int | None = None, known=None) -> str:
    """`attnconf run ARGS [--seed N] --select CASE --dtype D`: reruns the record of CASE at D.

    args: run_args(...) (or adapter_args(...) alone); seed: for invariant records; known: the
    case ids of the record's kind (select_for; None: the shipped golden cases').
    """
    seed_part = f" --seed {int(seed)}" if seed is not None else ""
    return (f"attnconf run {args}{seed_part} --select {shlex.quote(select_for(case_id, known))} "
            f"--dtype {shlex.quote(dtype)}")


def select_for(case_id: str, known=None) -> str:
    """The --select that selects this case id and no other known one: the id itself, or, where
    it is part of another id (sdpa/gqa_h4_hkv2 of sdpa/gqa_h4_hkv2_causal_tl), the id as a glob,
    which matches whole ids only (its last character bracketed: sdpa/gqa_h4_hkv[2]). An id that
    is a pattern already (a batch record's invariant/*) is used as it is.

    known: the ids of the record's kind, which its builder passes (invariants.record_ids,
    profile.record_ids); None: the shipped golden cases (known_ids). An id of one kind is never
    part of an id of another ("invariant/…", "profile/…", "<operation>/…"), so that suffices."""
    if any(ch in case_id for ch in "*?[") or not case_id:
        return case_id
    if not any(case_id in other for other in (known_ids() if known is None else known) if other != case_id):
        return case_id
    return glob.escape(case_id[:-1]) + "[" + case_id[-1] + "]"


@functools.lru_cache(maxsize=1)
def known_ids() -> tuple[str, ...]:
    """The case ids of the shipped golden cases (the invariant and profile ids are their
    modules' record_ids: results must not import the checks)."""
    from attnconf.errors import AttnconfError
    from attnconf.reference import golden

    try:
        cases = [c["id"] for c in golden.read_manifest(golden.resolve_dir(None))["cases"]]
    except (AttnconfError, OSError, KeyError, TypeError):   # no readable goldens: the others only
        cases = []
    return tuple(cases)
