"""What the benchmarks and smoke steps report of the machine: this process's peak memory, the load average.

Every platform answers: ``ru_maxrss`` is POSIX-only (KiB on Linux, bytes on macOS), Windows keeps
the peak working set instead; ``os.getloadavg`` is POSIX-only, ``psutil.getloadavg`` emulates it
on Windows (from its first call on: it reads 0 for the first few seconds there).
"""

from __future__ import annotations

import sys

import psutil

MIB = 1024 * 1024

#: What :func:`peak_rss_mb` measures on this platform, for reports.
if sys.platform == "win32":
    PEAK_MEMORY = "peak working set"
else:
    PEAK_MEMORY = "ru_maxrss (peak resident set)"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    if sys.platform == "win32":
        return psutil.Process().memory_info().peak_wset / MIB
    else:  # an else, not code after the return: mypy then skips it when checking for Windows
        import resource  # POSIX only: imported where it is used, so this module imports anywhere

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / MIB if sys.platform == "darwin" else peak / 1024


def load_average() -> float:
    """The one-minute load average (runnable processes, averaged; not divided by the CPUs)."""
    return psutil.getloadavg()[0]
