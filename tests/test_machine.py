"""Available RAM: /proc/meminfo's MemAvailable, lowered to a cgroup limit's room (its working set taken off)."""

from __future__ import annotations

from pathlib import Path

from cnnlab.machine import available_ram

MEMINFO = "MemTotal:       24683520 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"


def fake_root(tmp: Path, meminfo: str | None, limit: str | None = None, current: int = 0,
              inactive_file: int = 0) -> Path:
    if meminfo is not None:
        (tmp / "proc").mkdir()
        (tmp / "proc" / "meminfo").write_text(meminfo)
    if limit is not None:
        cg = tmp / "sys" / "fs" / "cgroup"
        cg.mkdir(parents=True)
        (cg / "memory.max").write_text(limit + "\n")
        (cg / "memory.current").write_text(f"{current}\n")
        (cg / "memory.stat").write_text(f"anon 123\ninactive_file {inactive_file}\nactive_file 7\n")
    return tmp


def test_mem_available_in_bytes(tmp_path):
    assert available_ram(fake_root(tmp_path, MEMINFO)) == 20_000_000 * 1024


def test_a_container_limit_lowers_it_and_its_dropable_cache_does_not_count_as_used(tmp_path):
    # limit 8 GiB, 7 GiB charged of which 3 GiB is inactive page cache: 8 - (7 - 3) = 4 GiB of room
    gib = 1 << 30
    root = fake_root(tmp_path, MEMINFO, limit=str(8 * gib), current=7 * gib, inactive_file=3 * gib)
    assert available_ram(root) == 4 * gib


def test_no_limit_and_no_meminfo(tmp_path):
    assert available_ram(fake_root(tmp_path, MEMINFO, limit="max")) == 20_000_000 * 1024
    empty = tmp_path / "empty"
    empty.mkdir()
    assert available_ram(fake_root(empty, None)) is None
