"""What this machine can hold: available RAM, checked before a command allocates something large."""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.units import human_bytes


def available_ram(root: Path = Path("/")) -> int | None:
    """Bytes of RAM a new allocation can get without swapping: Linux's ``MemAvailable``, lowered to the
    room left under a cgroup (container) memory limit and under this process's address-space limit
    (``ulimit -v``); ``None`` where neither can be read. (``root``:
    where ``/proc`` and ``/sys`` are, for tests.)"""
    found = [v for v in (_mem_available(root), _cgroup_room(root), _address_room(root)) if v is not None]
    if not found and root == Path("/"):      # not Linux: what the C library reports, if anything
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return max(0, min(found)) if found else None


def _address_room(root: Path) -> int | None:
    """Room left under this process's address-space limit (``ulimit -v``, ``RLIMIT_AS``): its soft limit
    minus the ``VmSize`` already mapped; ``None`` when unlimited."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        for line in (root / "proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return soft - int(line.split()[1]) * 1024
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return None


def _mem_available(root: Path) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; ``None`` without one (not Linux, or a kernel before 3.14)."""
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: Path) -> int | None:
    """A cgroup v2 memory limit minus the group's working set; ``None`` without a limit (or cgroup v2)."""
    cgroup = root / "sys/fs/cgroup"
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((cgroup / "memory.current").read_text())
        stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    except (OSError, ValueError):
        return None
    # page cache the kernel can drop counts as used in memory.current: take it off, as container tools'
    # "working set" does
    return int(limit) - (used - int(stat.get("inactive_file", 0)))


def require_ram(need: int, what: str, fix: str, error: type[CnnlabError] = CnnlabError) -> None:
    """``error`` (a CnnlabError) before ``what`` is allocated if it needs more than the RAM available now."""
    free = available_ram()
    if free is not None and need > free:
        raise error(f"{what} needs about {human_bytes(need)} but {human_bytes(free)} of RAM is available; {fix}")


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BELOW = 256 << 20      # allocations up to this size come from the heap, which is not given back when freed


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next step instead of returning it to the kernel.

    A CPU training step allocates and frees the same activations every step. With glibc's defaults, blocks of
    128 KiB and more are fresh ``mmap``s, freed with ``munmap``, so every step faults in (and zeroes) every page of
    them again: ~130,000–220,000 page faults per 30 steps of ``small_cnn`` at batch 128, measured; with the
    thresholds raised, ~1,000–4,000, and 5–12 % more images per second (docs/benchmarks.md). The same reason PyTorch's
    CPU tuning guide recommends jemalloc or tcmalloc. Raising the mmap threshold to 256 MiB and the trim threshold
    to 1 GiB changes no tensor and no byte PyTorch's allocator counts (what ``cnnlab memory`` predicts); the
    process's resident size stays at its peak instead of shrinking between steps. Returns whether it applied
    (glibc on Linux only)."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        # glibc before 2.35 or so caps the mmap threshold at 32 MiB (HEAP_MAX_SIZE / 2): fall back to that cap
        mmap_set = bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) or bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))
        trim_set = bool(libc.mallopt(M_TRIM_THRESHOLD, 4 * KEEP_BELOW))
        return mmap_set and trim_set
    except (OSError, AttributeError):
        return False


def cpu_name(root: Path = Path("/")) -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what Python's platform module knows."""
    import platform

    try:
        text = (root / "proc" / "cpuinfo").read_text()
    except OSError:
        text = ""
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    return names[0] if names else (platform.processor() or platform.machine())
