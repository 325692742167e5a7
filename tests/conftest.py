"""The tests' own pytest configuration, for running them in parallel (pytest-xdist, the README's
test command): a pytest session that a test starts in a subprocess is a session of its own, so a
worker's PYTEST_XDIST_* variables are not passed on to it (pytest-benchmark, for one, disables
itself in a process that has PYTEST_XDIST_WORKER set, and tests/test_bench_pytest_module.py needs
its figures)."""
from __future__ import annotations

import os

XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def pytest_configure(config):
    if hasattr(config, "workerinput"):       # an xdist worker: its identity stays in config.workerinput
        for name in XDIST_VARIABLES:
            os.environ.pop(name, None)
