"""What this machine can hold: available RAM, checked before a command allocates something large."""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.units import human_bytes


def available_ram() -> int | None:
    """Bytes of RAM a new allocation can get without swapping: Linux's ``MemAvailable``, lowered to the
    room left under a cgroup (container) memory limit; ``None`` where neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            stat = dict(line.split() for line in Path("/sys/fs/cgroup/memory.stat").read_text().splitlines())
            # page cache the kernel can drop counts as used in memory.current: take it off, as container
            # tools' "working set" does
            found.append(int(limit) - (used - int(stat.get("inactive_file", 0))))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return max(0, min(found))


def require_ram(need: int, what: str, fix: str) -> None:
    """CnnlabError before ``what`` is allocated if it needs more than the RAM available now."""
    free = available_ram()
    if free is not None and need > free:
        raise CnnlabError(f"{what} needs about {human_bytes(need)} but {human_bytes(free)} of RAM is available; {fix}")
