"""Collect the speed benchmarks only when they were asked for.

`pytest --pyargs attnconf.conformance` (the conformance run, e.g. in a third party's CI) walks
into this subpackage too; timing every adapter there would slow every conformance run for
nothing. The benchmarks run when the command names this package or a file in it
(`pytest --pyargs attnconf.conformance.bench …`), or when ATTNCONF_BENCH_ADAPTERS is set.
Must not: affect anything outside this folder.
"""
from __future__ import annotations

import os


def _asked(config) -> bool:
    if os.environ.get("ATTNCONF_BENCH_ADAPTERS"):
        return True
    for arg in config.invocation_params.args:
        target = str(arg).split("::")[0].rstrip("/\\")
        if target.endswith(("attnconf.conformance.bench", "attnconf.conformance.bench.test_speed",
                            os.path.join("conformance", "bench"), "test_speed.py")):
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.name == "test_speed.py" and not _asked(config):
        return True
    return None
