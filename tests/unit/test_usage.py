"""``ops.usage``: peak memory and load average, as the benchmarks and smoke steps report them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ops import usage


def test_peak_memory_is_this_process_high_water_mark_in_mib():
    # Linux's own figure for the same thing: VmHWM, in kB.
    vm_hwm_kb = int(re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))
    assert abs(usage.peak_rss_mb() - vm_hwm_kb / 1024) < 8
    ballast = bytearray(64 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    assert usage.peak_rss_mb() >= vm_hwm_kb / 1024 + 60


def test_load_average_is_the_one_minute_figure():
    assert abs(usage.load_average() - os.getloadavg()[0]) < 0.5
