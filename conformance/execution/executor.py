"""The executor protocol and the in-process executor: where an adapter's implementation runs.

`Executor` is the one protocol (run a case, run the invariant checks, detect the profile, close);
`InProcessExecutor` implements it here, `isolation.WorkerExecutor` in worker processes. `Outcome`
is what either reports for one case or task.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from typing import Any, Protocol

from attnconf.conformance.judging import engine
from attnconf.conformance.results import repro
from attnconf.errors import Unsupported, declined_reason, one_line

DEFAULT_TIMEOUT_S = 60.0


@dataclasses.dataclass
class Outcome:
    """What an Executor reports for one case, and what a worker reports for any task
    (isolation.Worker.call): status "ok" | "crash" | "timeout" | "error" | "unsupported" |
    "declined" (NotImplementedError), the outputs (status "ok": a case's outputs, or whatever the
    worker's task returned), a one-line message, and the time it took. For status "error", the
    exception's class name and full message (a worker's UsageError is raised again in the parent)."""

    status: str
    outputs: Any = None
    message: str = ""
    duration_s: float = 0.0
    error_type: str = ""
    error_text: str = ""


class Executor(Protocol):
    """Where an adapter's implementation runs (InProcessExecutor, isolation.WorkerExecutor)."""

    def run(self, adapter_spec, case, dtype: str, timeout: float) -> Outcome:
        """One case's outputs, or why there are none."""

    def run_checks(self, adapter_spec, adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, select: str | None = None,
                   repro_args: str | None = None) -> list[dict]:
        """invariants.check's records for one dtype ([] when the adapter does not support it)."""

    def detect_profile(self, adapter_spec, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict | None:
        """profile.detect's profile; None when it could not be had."""

    def close(self) -> None: ...


def _escaped(exc: BaseException) -> str:
    """The message of a BaseException that escaped an implementation in-process (sys.exit(0) …)."""
    return f"{one_line(exc)} (a BaseException escaped the implementation; in a worker it would end the worker)"


def _spec_key(spec) -> str:
    data = spec.to_json() if hasattr(spec, "to_json") else (
        dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else spec)
    return json.dumps(data, sort_keys=True, default=str)


class InProcessExecutor:
    """Runs implementations in this process: fastest, but a crash or hang takes the run with it
    (the `timeout` is not enforced here; use the worker executor for untrusted code)."""

    name = "in-process"

    def __init__(self):
        self._adapters: dict[str, Any] = {}

    def adapter(self, spec):
        """The (cached) adapter instance for a spec; an Adapter instance passes through."""
        from attnconf.adapters.registry import AdapterSpec

        if not isinstance(spec, AdapterSpec) and hasattr(spec, "capabilities"):   # an Adapter instance
            return spec                # (its own `kind`, if it has one, is not a spec's: hf-eager's is)
        key = _spec_key(spec)
        if key not in self._adapters:
            from attnconf.adapters import registry

            self._adapters[key] = registry.instantiate(spec)
            repro.remember_spec(self._adapters[key], spec)
        return self._adapters[key]

    def run(self, adapter_spec, case, dtype: str, timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # Frameworks warn about kernel choices on stderr; the record carries what matters.
                warnings.simplefilter("ignore")
                outputs = engine.compute_outputs(self.adapter(adapter_spec), case, dtype)
        except Unsupported as exc:
            return Outcome("unsupported", None, exc.reason, time.perf_counter() - started)
        except NotImplementedError as exc:   # the plug-in declines this case: skip, not error
            return Outcome("declined", None, declined_reason(exc), time.perf_counter() - started)
        except MemoryError:
            return Outcome("crash", None, "MemoryError: out of memory", time.perf_counter() - started)
        except Exception as exc:  # the implementation raised: its record says so
            return Outcome("error", None, one_line(exc), time.perf_counter() - started)
        except KeyboardInterrupt:   # Ctrl-C / SIGTERM (errors.Interrupted): the run stops
            raise
        except BaseException as exc:  # sys.exit() or a BaseException subclass: this case's error, as in a worker
            return Outcome("error", None, _escaped(exc), time.perf_counter() - started)
        return Outcome("ok", outputs, "", time.perf_counter() - started)

    def run_checks(self, adapter_spec, adapter, dtype: str, *, seed: int = 0, max_examples: int | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, select: str | None = None,
                   repro_args: str | None = None) -> list[dict]:
        """invariants.check(adapter, dtype, …) here (timeout not enforced); [] on Unsupported."""
        from attnconf.conformance.checks import invariants

        try:
            return invariants.check(adapter, dtype, seed=seed, max_examples=max_examples, select=select,
                                    repro_args=repro_args)
        except Unsupported:
            return []
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() in a plug-in: one error record for the batch, as a worker's
            from attnconf.conformance.execution.isolation import _batch_record

            return [_batch_record(adapter, dtype, Outcome("error", message=_escaped(exc)), "invariant/*",
                                  "invariant", seed=seed, select=select, repro_args=repro_args)]

    def detect_profile(self, adapter_spec, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict | None:
        """profile.detect of the spec's adapter, here (timeout not enforced)."""
        from attnconf.conformance.checks import profile

        try:
            return profile.detect(self.adapter(adapter_spec))
        except KeyboardInterrupt:
            raise
        except BaseException:   # a profile is a description: none, as when a worker cannot answer
            return None

    def close(self) -> None:
        self._adapters.clear()


