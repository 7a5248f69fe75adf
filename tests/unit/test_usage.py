"""``ops.usage``: peak memory and load average, as the benchmarks and smoke steps report them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ops import usage


def status_mib(field: str) -> float:
    """A figure of Linux's /proc/self/status (in kB there), in MiB."""
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def test_peak_memory_is_this_process_high_water_mark_in_mib():
    assert abs(usage.peak_rss_mb() - status_mib("VmHWM")) < 8  # Linux's own name for the same figure
    now = status_mib("VmRSS")
    ballast = bytearray(64 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    assert usage.peak_rss_mb() >= now + 60


def test_load_average_is_the_one_minute_figure():
    assert abs(usage.load_average() - os.getloadavg()[0]) < 0.5
