"""Peak memory per benchmark point: the process's resident high-water mark, reset before each point.

Linux lets a process reset its own high-water mark (`echo 5 > /proc/self/clear_refs`), so a point's
peak is measured in-process; elsewhere the figure is the monotone ru_maxrss (stated by `method`).
`child_peak_rss_mb` runs code in a fresh interpreter and reads RUSAGE_CHILDREN, which is what the
reference's 64k memory target uses (nothing else in the process can inflate it).
Must not: allocate memory of its own while measuring.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys


def reset_peak() -> bool:
    """Reset the resident high-water mark to the current RSS; False when the OS cannot."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The resident high-water mark in MiB (VmHWM on Linux, else ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_mb() -> float | None:
    """The resident set size now in MiB (VmRSS), None where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def method() -> str:
    return "VmHWM reset per point" if os.path.exists("/proc/self/clear_refs") else "ru_maxrss (monotone)"


def child_peak_rss_mb(code: str, *, timeout: float | None = None) -> tuple[float, str]:
    """(peak RSS in MiB, stdout) of `python -c code` run in a fresh interpreter.

    Raises subprocess.CalledProcessError (with its stderr) when the child fails.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the largest of all waited-for children: an earlier, bigger child would
    # mask this one, so read the child's own figure when it printed one. The child must print
    # its VmHWM (peak_rss_mb()), not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a
    # child of a 2 GiB test process reports at least 2 GiB whatever it used itself.
    for line in done.stdout.splitlines():
        if line.startswith("ATTNCONF_MAXRSS_KB="):
            return _maxrss_mb(int(line.split("=", 1)[1])), done.stdout
    if after <= before and before:
        return float("nan"), done.stdout
    return _maxrss_mb(after), done.stdout


def _maxrss_mb(value: int) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    return value / (1024.0 * 1024.0) if sys.platform == "darwin" else value / 1024.0
