"""What machine the figures come from (clause perf.scaling: reports MUST name it).

Must not: import a framework (framework versions are recorded by the adapters' describe()).
"""
from __future__ import annotations

import os
import platform

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict:
    """{cpu, cores, threads, numpy, numpy blas, blas threads, load average, platform}."""
    from attnconf.reference.blocked import blas_info, default_threads

    blas = blas_info()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads if threads is not None else default_threads(),
        "numpy": np.__version__,
        "numpy blas": blas["name"],
        "blas threads": blas["threads"],
        "load_average": load,
        "platform": platform.platform(),
    }


def load_average() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
