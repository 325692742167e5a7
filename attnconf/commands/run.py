"""`attnconf run`: check implementations against the golden cases, invariants and profiles.

Parses and validates the command line (mistakes are one-line UsageErrors, exit 2), resolves the
adapters, hands the work to attnconf.conformance.execution.runner and prints the summary and elapsed time.
Exit 0: everything judged conforms or is expected; 1: a non-conformance was found; 2: usage or
setup, or a run that judged nothing (every record a skip); 4: the results could not be written;
130/143: interrupted (attnconf.errors.EXIT_CODES). Every path is made absolute before anything
runs: a plug-in that changes directory in-process cannot move the results, report or goldens.
Must not import any framework at module level (`attnconf --help` stays cheap).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from attnconf.dtypes import DTYPE_NAMES, parse_dtypes
from attnconf.errors import ResultsWriteError, UsageError
from attnconf.validation import finite_number

EXECUTORS = ("in-process", "worker")
DEFAULT_TIMEOUT_S = 60.0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run the conformance suite on implementations",
        description="Check attention kernels and position encodings (SDPA and its kernel options, gradients, "
                    "multi-head attention, sinusoidal encodings, RoPE, ALiBi, T5/Shaw relative positions, "
                    "position ids) against the golden cases, invariants and semantic profiles; write results "
                    "JSON. Without --adapter: every bundled adapter installed here, except the opt-in ones "
                    f"({', '.join(_opt_in())}) and GPU-only ones on the CPU; the summary lists each left out, "
                    "why, and the command that runs it (`attnconf adapters` shows them all).")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME|PKG.MOD:CLASS",
                   help="a bundled/entry-point adapter name or an adapter class (repeatable); "
                        "default: every bundled adapter installed here but the opt-in and GPU-only ones")
    from attnconf.adapters import function

    for op in function.function_operations():    # one option per registered plug-in flag
        p.add_argument(op.plugin_flag, dest=function.option_dest(op), metavar="PKG.MOD:FUNC",
                       help=function.option_help(op))
    p.add_argument("--framework", help=f"framework of {function.flags_text()}: numpy, torch, jax, tensorflow")
    p.add_argument("--device", default="cpu", help="cpu, cuda or gpu (default cpu)")
    p.add_argument("--json", default="reports/results.json", metavar="PATH",
                   help="results file, written as the run goes (default reports/results.json)")
    p.add_argument("--html", metavar="PATH", help="also render the HTML report here")
    p.add_argument("--select", metavar="EXPR",
                   help="only the records whose case id matches this glob (* ? [) or substring, commas "
                        "joining alternatives: golden cases (sdpa/causal_tl), invariants "
                        "(invariant/inv.convex_hull) and profile aspects (profile/fully_masked, recorded "
                        "as records when selected); every record's repro uses it")
    p.add_argument("--dtype", default=",".join(DTYPE_NAMES), metavar="LIST",
                   help="comma-separated dtypes (default all: float64,float32,float16,bfloat16)")
    p.add_argument("--level", default="default", help="tolerance level: default or strict")
    p.add_argument("--timeout", type=finite_number, default=None, metavar="S",
                   help="per-case time budget in seconds, framework import included (default 60): "
                        "a case still running is killed and recorded as timeout (worker processes "
                        "only: refused with --no-isolation, which cannot stop a running case)")
    p.add_argument("--golden-dir", metavar="DIR", help="read golden files from DIR")
    p.add_argument("--executor", default=None,
                   help="worker (default: implementations run in worker processes, one per framework for the "
                        "bundled adapters and one per third-party adapter; a crash or hang replaces the "
                        "worker and costs only the case in flight) or in-process")
    p.add_argument("--no-isolation", action="store_true",
                   help="run implementations in this process (same as --executor in-process): a crash or "
                        "hang ends the run")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="address-space limit per worker process, e.g. 4G or 512M (exhaustion -> crash)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="adapters checked at once, each group of adapters sharing a worker (the bundled "
                        "ones of one framework) in one thread (default: 2 on 2+ cores; 1 with --no-isolation)")
    p.add_argument("--resume", action="store_true",
                   help="keep the records of an earlier, interrupted run in --json and run only what is missing")
    p.add_argument("--no-checks", action="store_true", help="agreement only: skip invariants and profiles")
    p.add_argument("--seed", type=int, default=0, help="seed of the invariant checks")
    p.add_argument("--expectations", action="append", metavar="PATH",
                   help="expectation file (repeatable; default: the shipped files)")
    p.add_argument("--no-expectations", action="store_true", help="apply no expectation file")
    p.add_argument("--strict", action="store_true",
                   help="fail the run for expectation entries that match nothing or now pass")
    p.set_defaults(func=main)


def _opt_in() -> tuple:
    from attnconf.adapters.registry import OPT_IN

    return OPT_IN


def _choice(what: str, value: str, choices) -> str:
    if value not in choices:
        raise UsageError(f"{what} should be one of {', '.join(choices)}, but got {value!r}")
    return value


def _executor(name: str, timeout: float, memory_limit: int | None = None):
    from attnconf.conformance.execution.isolation import WorkerExecutor
    from attnconf.conformance.execution.runner import InProcessExecutor

    if name == "in-process":
        return InProcessExecutor()
    return WorkerExecutor(memory_limit=memory_limit)


def executor_choice(args) -> str:
    """--executor / --no-isolation, checked against each other and --memory-limit."""
    if args.no_isolation and args.executor == "worker":
        raise UsageError("--no-isolation and --executor worker should not be combined, but both were given")
    name = args.executor or ("in-process" if args.no_isolation else "worker")
    _choice("--executor", name, EXECUTORS)
    if args.memory_limit and name != "worker":
        raise UsageError("--memory-limit applies to worker processes, but the run is in-process "
                         "(drop --no-isolation or --memory-limit)")
    return name


def parse_size(text) -> int | None:
    """'4G', '512M', '100K' or a number of bytes -> bytes."""
    if text is None:
        return None
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = -1
    if not (value >= 64 << 20 and value != float("inf")):
        raise UsageError(f"--memory-limit should be a size of at least 64M like 4G or 512M, but got {text!r}")
    return int(value)


def _specs(args):
    from attnconf.adapters import registry

    from attnconf.adapters import function

    functions = function.parsed_targets(args)
    if not functions and args.framework:
        raise UsageError(f"--framework should come with {function.flags_text()}, but got neither")
    names = [a for a in args.adapter if ":" not in a]
    classes = [a for a in args.adapter if ":" in a]
    kwargs = dict(names=names, functions=functions, framework=args.framework,
                  adapter_classes=classes, device=args.device)
    if executor_choice(args) != "worker":
        kwargs["isolated"] = False      # in this process: availability means importing it here
    third_party = functions or classes or any(n not in registry.BUNDLED for n in names)
    if executor_choice(args) == "worker" and third_party:
        # a third-party module is imported in a worker first: a crash at import is one line, exit 2
        from attnconf.conformance.execution.isolation import resolve_isolated

        return resolve_isolated(timeout=args.timeout, **kwargs)
    return registry.resolve(**kwargs)


def build_config(args):
    from attnconf.conformance.results import files as results
    from attnconf.conformance.execution.runner import RunConfig

    _choice("--device", args.device, ("cpu", "cuda", "gpu"))
    _choice("--level", args.level, ("default", "strict"))
    if executor_choice(args) == "in-process" and args.timeout is not None:
        # no way to stop a Python call from the same thread that holds it: refuse, never ignore
        raise UsageError("--timeout applies to worker processes, but the run is in-process "
                         "(drop --no-isolation or --timeout)")
    if args.timeout is None:
        args.timeout = DEFAULT_TIMEOUT_S
    parse_size(args.memory_limit)
    if not args.timeout > 0:
        raise UsageError(f"--timeout should be a positive number of seconds, but got {args.timeout:g}")
    if args.no_expectations and args.expectations:
        raise UsageError("--expectations and --no-expectations should not be combined, but both were given")
    dtypes = parse_dtypes(args.dtype)
    json_path = results.check_writable(args.json)
    html = results.check_writable(args.html, option="--html") if args.html else None
    if args.golden_dir and not Path(args.golden_dir).is_dir():
        raise UsageError(f"--golden-dir should be a directory, but {args.golden_dir} is not")
    check_select(args)          # before any adapter is resolved: usage errors come first, fast
    if args.golden_dir:
        args.golden_dir = str(Path(args.golden_dir).absolute())
    if args.expectations:
        args.expectations = [str(Path(p).absolute()) for p in args.expectations]
    specs = _specs(args)
    if not specs:
        raise UsageError("no adapter is available to run: install torch, jax or tensorflow, or pass --sdpa")
    from attnconf.adapters import registry

    not_run = registry.not_run(specs, args.device, default_run=not args.adapter and not function_args(args))
    return RunConfig(
        specs=specs, dtypes=dtypes, select=args.select, level=args.level, timeout=args.timeout,
        json_path=json_path, html_path=html, golden_dir=args.golden_dir, device=args.device,
        checks=not args.no_checks, seed=args.seed, command=["attnconf"] + sys.argv[1:],
        expectations=False if args.no_expectations else args.expectations, strict=args.strict,
        resume=args.resume, jobs=_jobs(args), not_run=not_run)


def function_args(args) -> bool:
    from attnconf.adapters import function

    return bool(function.parsed_targets(args))


def check_select(args) -> list:
    """The golden cases --select selects; a UsageError when it selects no record at all."""
    import types

    from attnconf.conformance.execution import runner

    cases = runner.load_cases(args.select, args.golden_dir)
    probe = types.SimpleNamespace(select=args.select, checks=not args.no_checks)
    if not cases and not runner.checks_selected(probe):
        kinds = "a golden case" + (", invariant/<clause> or profile/<aspect>" if not args.no_checks else
                                   " (--no-checks: no invariant or profile)")
        raise UsageError(f"--select should match at least one case id ({kinds}), but {args.select!r} matches none")
    return cases


def _jobs(args) -> int:
    import os

    if args.jobs is None:
        return min(2, os.cpu_count() or 1)
    if args.jobs < 1:
        raise UsageError(f"--jobs should be a positive number of adapters, but got {args.jobs}")
    return args.jobs


# Conformance cases are small: a framework's thread pool only spins against other processes on
# a shared machine (measured: torch sdpa on (1, 2, 8, 8) 7 ms with 2 threads under load, 0.1 ms
# with 1). Set before any framework is imported; a user's own settings win.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


# Framework C++ logging (TensorFlow/XLA: oneDNN notices, "supports DT_HALF only …") is not for the
# user of a long command; 3 = FATAL only. A user's own setting wins.
QUIET_LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}
# Python warnings that frameworks raise from their own code (einsum, dtype promotion notices).
QUIET_WARNING_MODULES = r"(tensorflow|keras|jax|jaxlib|torch|transformers|keras_hub|onnxruntime)(\.|$)"
# The known-bad zoo computes with NaN and overflow on purpose (NaN padding leaking, a merge
# without max subtraction): NumPy's RuntimeWarnings from it are the bugs being caught, not news.
QUIET_WARNING_ZOO = r"attnconf\.conformance\.known_bad(\.|$)"
# Framework loggers that print once per process through Python logging, not C++: torch's fx
# notice "is_fx_tracing will return true for both …", which torch.nested's jagged SDPA triggers.
QUIET_LOGGERS = ("torch.fx._symbolic_trace",)


def quiet_framework_logs() -> None:
    """Keep framework log noise out of what `calibrate` and `bench` print (set before importing)."""
    import logging
    import os
    import warnings

    for key, value in QUIET_LOG_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=QUIET_WARNING_MODULES)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=QUIET_WARNING_ZOO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def single_thread_frameworks() -> None:
    import os

    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    # JAX compiles once per shape and dtype, most of a full run's time; its persistent cache
    # reuses the very same executables on the next run (measured: jax-xla on the sdpa/size_*
    # cases 12.1 s -> 2.5 s). Under ~/.cache/attnconf/jax; a user's JAX_COMPILATION_CACHE_DIR wins.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "attnconf" / "jax"
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


def main(args) -> int:
    from attnconf.conformance.execution import runner

    started = time.perf_counter()
    single_thread_frameworks()
    config = build_config(args)
    cases = runner.load_cases(config.select, config.golden_dir)
    choice, memory = executor_choice(args), parse_size(args.memory_limit)
    try:
        result = runner.run(config, cases=cases,
                            executor_factory=lambda: _executor(choice, args.timeout, memory))
        if config.html_path is not None:      # the runner writes results; the report renders them
            from attnconf.conformance.report import render

            render([result.doc], config.html_path)
    except OSError as exc:   # the results or the report could not be written (the results file says so itself)
        if exc.errno not in _WRITE_ERRNOS:
            raise
        raise ResultsWriteError(f"{exc.filename or config.html_path} could not be written "
                                f"({exc.strerror or exc}); results: {config.json_path}") from None
    elapsed = time.perf_counter() - started
    nothing = judged_nothing(result.doc)
    try:   # the verdict is the exit status: a reader that left (`| head`) changes nothing
        print(runner.summary(result.doc, elapsed))
        print(f"results: {config.json_path}" + (f", report: {config.html_path}" if config.html_path else "")
              + f"; wall time {elapsed:.1f} s")
        sys.stdout.flush()
    except BrokenPipeError:
        from attnconf.streams import stdout_gone

        stdout_gone()
    if nothing and result.exit_code == 0:
        sys.stderr.write(f"attnconf: the run should judge at least one record, but {nothing}; "
                         "widen --select/--dtype or check the adapter's claims (exit 2)\n")
        return 2
    return result.exit_code


# disk full, quota, file too large, read-only file system, no permission
_WRITE_ERRNOS = (28, 122, 27, 30, 13)


def judged_nothing(doc: dict) -> str:
    """Why the run judged nothing ("" when it judged something): no record at all, or only skips
    (declined, unsupported). Such a run is not a pass."""
    records = doc.get("results") or []
    if any(r.get("status") != "skip" for r in records):
        return ""
    if not records:
        return "no case, invariant or profile applies to the adapters at the dtypes selected"
    first = records[0].get("message") or ""
    return f"all {len(records)} records are skips (first: {first[:120]})"

