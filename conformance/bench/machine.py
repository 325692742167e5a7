"""What machine the figures come from (clause perf.scaling: reports MUST name it).

Must not: import a framework (framework versions are recorded by the adapters' describe()).
"""
from __future__ import annotations

import os
import platform
import sys

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
        "framework threads": framework_threads(),
    }


def framework_threads() -> dict:
    """Intra-op threads of the frameworks already imported (never imports one itself)."""
    out = {}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "tensorflow" in sys.modules:
        try:
            n = sys.modules["tensorflow"].config.threading.get_intra_op_parallelism_threads()
            out["tensorflow"] = n or f"all cores ({os.cpu_count()})"
        except Exception:  # an old or partial TensorFlow: say nothing rather than fail the run
            pass
    if "jax" in sys.modules:
        out["jax"] = f"XLA CPU default: all cores ({os.cpu_count()})"
    return out


def load_average() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
