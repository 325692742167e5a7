"""pytest11 plugin: points the conformance suite at an implementation and parametrises it.

`pytest --pyargs attnconf.conformance [--attnconf-adapter NAME|PKG.MOD:CLASS ...]
[--attnconf-sdpa PKG.MOD:FUNC --attnconf-framework F] [--attnconf-encoding ...] (one
--attnconf-<flag> per registered operation with a plug-in flag, attnconf.operations)
[--attnconf-dtype LIST] [--attnconf-device D] [--attnconf-select EXPR] [--attnconf-json PATH]`

The conformance modules (conformance/test_*.py) ask for the `attnconf_item` argument; this plugin
parametrises it over adapter x case x dtype with ids like `torch-math-float32-sdpa/causal_tl`,
for the operations of the registry (attnconf.operations): a module naming one by `OPERATION`
(test_sdpa.py …) holds its cases, test_agreement.py those of every other registered operation
(a plug-in's), and runner.check_case judges each as `attnconf run` does. Each combination
passes or fails on its own (also under pytest-xdist: every worker builds the same list). With --attnconf-json each worker writes its records to a part file, and the
controlling process merges them into PATH at the end.

The plugin is loaded in every pytest session of the environment: at import and for test
functions that do not ask for `attnconf_item` it must do nothing costly (no framework, no
golden files), and it must never change other projects' tests.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

ARG = "attnconf_item"
HERE = Path(__file__).resolve().parent
# The agreement module of every registered operation that no module here names by OPERATION
# (a plug-in's operation: attnconf.operations); test_sdpa.py & co. keep their operation's test ids.
AGREEMENT_MODULE = HERE / "test_agreement.py"


def pytest_addoption(parser) -> None:
    g = parser.getgroup("attnconf", "attnconf conformance suite")
    g.addoption("--attnconf-adapter", action="append", default=[], metavar="NAME|PKG.MOD:CLASS",
                help="adapter to check (repeatable); default: every available bundled adapter")
    from attnconf.adapters import function

    for op in function.function_operations():   # --attnconf-<flag>: one per registered plug-in flag
        g.addoption(f"--attnconf-{op.plugin_flag.lstrip('-')}", dest=f"attnconf_{function.option_dest(op)}",
                    metavar="PKG.MOD:FUNC", help=function.option_help(op))
    g.addoption("--attnconf-framework", help="framework of the bare function: numpy, torch, jax, tensorflow")
    g.addoption("--attnconf-dtype", default="float64,float32,float16,bfloat16", metavar="LIST",
                help="comma-separated dtypes")
    g.addoption("--attnconf-device", default="cpu", help="cpu, cuda or gpu")
    g.addoption("--attnconf-select", metavar="EXPR", help="only case ids matching this glob/substring")
    g.addoption("--attnconf-golden-dir", metavar="DIR", help="golden directory")
    g.addoption("--attnconf-level", default="default", help="tolerance level: default or strict")
    g.addoption("--attnconf-json", metavar="PATH", help="write a results JSON of the checks run")


class Item:
    """One parameter: an adapter spec, a case and a dtype (repr is the test id)."""

    def __init__(self, spec, adapter_name: str, case, dtype: str, repro_args: str):
        self.spec, self.adapter_name, self.case, self.dtype = spec, adapter_name, case, dtype
        self.repro_args = repro_args

    @property
    def id(self) -> str:
        return f"{self.adapter_name}-{self.dtype}-{self.case.id}"

    def __repr__(self) -> str:
        return self.id


class Session:
    """Per pytest process: resolved adapters, cases, an executor, collected records."""

    def __init__(self, config):
        self.config = config
        self._specs = None
        self._cases = None
        self._executor = None
        self._expect = None
        self.records: list[dict] = []
        self.adapters: dict[str, dict] = {}

    def opt(self, name):
        value = self.config.getoption(f"--attnconf-{name.replace('_', '-')}")
        if name == "golden_dir" and value:   # as `attnconf run` does: resolved where pytest started, so
            value = str(Path(self.config.invocation_params.dir, value).absolute())   # a chdir moves nothing
        return value

    def specs(self):
        """[(spec, adapter instance, repro args)] — resolved once per process."""
        if self._specs is None:
            from attnconf.adapters import function, registry
            from attnconf.conformance.results import repro
            from attnconf.conformance.execution import runner

            adapters = self.opt("adapter") or []
            names = [a for a in adapters if ":" not in a]
            classes = [a for a in adapters if ":" in a]
            specs = registry.resolve(names, functions=function.parsed_targets(self.config.option, "attnconf_"),
                                     framework=self.opt("framework"), adapter_classes=classes,
                                     device=self.opt("device"), isolated=False)  # run in this process
            self._executor = runner.InProcessExecutor()
            rows = []
            for spec in specs:
                adapter = self._executor.adapter(spec)
                # the records' repro: the `attnconf run` options that judge as this session does
                args = repro.run_args(repro.adapter_args(adapter, spec), level=self.opt("level"),
                                      golden_dir=self.opt("golden_dir"))
                rows.append((spec, adapter, args))
            self._specs = rows
        return self._specs

    def cases(self):
        if self._cases is None:
            from attnconf.conformance.execution import runner

            self._cases = runner.load_cases(self.opt("select"), self.opt("golden_dir"))
        return self._cases

    def dtypes(self) -> tuple[str, ...]:
        from attnconf.dtypes import parse_dtypes

        return parse_dtypes(self.opt("dtype"), option="--attnconf-dtype")

    def items(self, operation: str) -> list[Item]:
        """adapter x case x dtype for the selected cases of `operation` (a registered name)."""
        from attnconf.conformance import plan

        cases = [c for c in self.cases() if c.operation == operation]
        # the planner's items, as `attnconf run` runs them (a claim-gated one becomes a pytest skip)
        return [Item(spec, adapter.name, item.case, item.dtype, repro)
                for spec, adapter, repro in self.specs() for item in plan.agreement(adapter, cases, self.dtypes())]

    def expectations(self):
        """The shipped expectation files (what `attnconf run` applies without --expectations)."""
        if self._expect is None:
            from attnconf.conformance.judging.expectations import Expectations

            self._expect = Expectations.load(None)
        return self._expect

    def adapter(self, spec):
        """The (cached) adapter instance of a spec, noted for the results file's adapter list."""
        self.specs()
        adapter = self._executor.adapter(spec)
        self.adapters.setdefault(adapter.name, adapter.describe())
        return adapter

    def check(self, item: Item) -> dict:
        """Run and judge one item; record it; pytest outcome from its status."""
        __tracebackhide__ = True
        from attnconf.conformance.execution import runner

        adapter = self.adapter(item.spec)
        rec = runner.check_case(self._executor, item.spec, adapter, item.case, item.dtype, level=self.opt("level"),
                                timeout=runner.DEFAULT_TIMEOUT_S, expectations=self.expectations(),
                                repro_args=item.repro_args)
        self.records.append(rec)
        status = rec["status"]
        if status == "skip":
            pytest.skip(rec["message"])
        if status == "xfail":
            pytest.xfail(rec["message"])
        if status != "pass":
            raise AssertionError(f"[{status}] {rec['case']} @ {rec['dtype']} clauses "
                                 f"{', '.join(rec['clauses'])}: {rec['message']}\nrerun: {rec['repro']}")
        return rec

    def write(self, path: Path) -> None:
        from attnconf.conformance.results.files import ResultsWriter

        w = ResultsWriter(path, command=["pytest"] + list(self.config.invocation_params.args),
                          device=self.opt("device"), level=self.opt("level"))
        for desc in self.adapters.values():
            w.add_adapter(desc)
        w.doc["coverage"] = self.coverage()
        w.extend(self.records)
        w.finish()

    def coverage(self) -> list[dict]:
        """One coverage entry per (adapter, operation) of the adapters this session ran, as
        `attnconf run` writes them (conformance/plan.py)."""
        from attnconf.conformance import plan

        if not self.adapters:
            return []
        return [e for _, adapter, _ in self.specs() if adapter.name in self.adapters for e in plan.coverage(adapter)]


_KEY = pytest.StashKey[Session]()


def _session(config) -> Session:
    s = config.stash.get(_KEY, None)
    if s is None:
        s = Session(config)
        config.stash[_KEY] = s
    return s


@functools.lru_cache(maxsize=None)
def named_operations() -> dict[str, str]:
    """{operation: module} for the modules here that name one by `OPERATION = "..."` (read from
    their source, not imported: pytest imports them under a name of its own)."""
    import ast

    out: dict[str, str] = {}
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and any(isinstance(t, ast.Name) and t.id == "OPERATION" for t in node.targets)):
                out[node.value.value] = path.name
    return out


def module_operations(module) -> tuple[str, ...]:
    """The operations whose agreement tests `module` holds: its OPERATION, else every registered
    operation that no module here names (attnconf.operations.operations(), in registry order)."""
    from attnconf import operations

    named = getattr(module, "OPERATION", None)
    if named is not None:
        return (operations.get(named).name,)
    return tuple(op.name for op in operations.operations() if op.name not in named_operations())


def pytest_ignore_collect(collection_path, config):
    """The agreement module is collected only when one of its operations has an item to check
    (the bundled operations have modules of their own, each with its `no-<operation>` skip), so
    a run whose adapters offer none of them lists no test for it."""
    if Path(collection_path) != AGREEMENT_MODULE:
        return None     # cheap for every other path: other projects' tests are left alone
    from attnconf.errors import AttnconfError

    try:
        session = _session(config)
        return None if any(session.items(op) for op in module_operations(None)) else True
    except AttnconfError as exc:
        raise pytest.UsageError(f"attnconf: {exc}") from None


def pytest_generate_tests(metafunc) -> None:
    if ARG not in metafunc.fixturenames:
        return  # not an attnconf conformance test: leave it alone
    from attnconf.errors import AttnconfError

    try:
        ops = module_operations(metafunc.module)
        items = [i for op in ops for i in _session(metafunc.config).items(op)]
    except AttnconfError as exc:
        raise pytest.UsageError(f"attnconf: {exc}") from None
    if not items:   # one operation's module (or the agreement module, asked for by its path)
        what = " or ".join(ops) or "an operation without a module of its own"
        metafunc.parametrize(ARG, [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no selected adapter implements {what}"))], ids=[f"no-{'-'.join(ops) or 'operation'}"])
        return
    metafunc.parametrize(ARG, items, ids=[i.id for i in items])


@pytest.fixture
def attnconf_session(request) -> Session:
    return _session(request.config)


def _worker_id(config) -> str | None:
    inp = getattr(config, "workerinput", None)
    return inp.get("workerid") if inp else None


def pytest_sessionfinish(session, exitstatus) -> None:
    path = session.config.getoption("--attnconf-json", None)
    if not path:
        return
    # relative to where pytest was started: a plug-in that chdirs in-process must not move it
    path = Path(session.config.invocation_params.dir, path)
    s = session.config.stash.get(_KEY, None)
    worker = _worker_id(session.config)
    if worker is not None:  # an xdist worker: a part file the controller merges
        if s is not None and s.records:
            s.write(path.with_name(f"{path.name}.{worker}.part"))
        return
    _merge(session.config, s, path)


def _merge(config, s: Session | None, path: Path) -> None:
    import json

    from attnconf.conformance.results.files import ResultsWriter

    parts = sorted(path.parent.glob(f"{path.name}.*.part")) if path.parent.exists() else []
    s = s or Session(config)
    w = ResultsWriter(path, command=["pytest"] + list(config.invocation_params.args),
                      device=s.opt("device"), level=s.opt("level"))
    for desc in s.adapters.values():
        w.add_adapter(desc)
    w.extend(s.records)
    coverage = {(e["adapter"], e["operation"]): e for e in s.coverage()}
    for part in parts:
        doc = json.loads(part.read_text(encoding="utf-8"))
        for desc in doc.get("adapters", []):
            w.add_adapter(desc)
        w.extend(doc.get("results", []))
        coverage.update({(e["adapter"], e["operation"]): e for e in doc.get("coverage", [])})
        os.unlink(part)
    w.doc["coverage"] = list(coverage.values())
    w.finish()
