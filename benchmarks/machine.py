"""What the benchmarks record about the machine they ran on, from /proc."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo (else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def mem_total_kib() -> int | None:
    """MemTotal of /proc/meminfo in KiB, or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
