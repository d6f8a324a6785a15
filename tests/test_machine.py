"""Available RAM: /proc/meminfo's MemAvailable, lowered to a cgroup limit's room (its working set taken off)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc only")
def test_keeping_freed_memory_stops_the_page_faults_of_training_steps():
    """What `cnnlab train` sets on a CPU: ten float32 training steps of small_cnn (batch 64, Adam) fault far fewer
    pages in (counted by the kernel: getrusage's minor faults), in a fresh process per setting, after three warm-up
    steps (after one, the kept heap is still growing: CI once saw 43,617 vs 11,742). Measured here after three:
    28,067–95,299 with glibc's defaults, 1–1,569 with freed memory kept."""
    import subprocess

    child = ("import resource, sys, torch\n"
             "from cnnlab.machine import keep_freed_memory\n"
             "applied = keep_freed_memory() if sys.argv[1] == '1' else False\n"
             "torch.set_num_threads(2)\n"
             "from cnnlab.train.model import build_model\n"
             "m = build_model('small_cnn', (1, 28, 28), 10)[0]\n"
             "opt = torch.optim.Adam(m.parameters())\n"
             "x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))\n"
             "def step():\n"
             "    loss = torch.nn.functional.cross_entropy(m(x), y)\n"
             "    opt.zero_grad(); loss.backward(); opt.step()\n"
             "for _ in range(3):\n"
             "    step()\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
             "for _ in range(10):\n"
             "    step()\n"
             "print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {}
    for keep in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", child, keep], capture_output=True, text=True, check=True)
        applied, n = out.stdout.split()
        faults[keep] = (applied, int(n))
    if faults["1"][0] != "True":
        pytest.skip("this C library does not take glibc's mallopt settings")
    assert faults["0"][0] == "False" and faults["1"][1] < faults["0"][1] / 4, faults


def test_cpu_name_is_cpuinfos_model_name_else_the_platforms(tmp_path):
    from cnnlab.machine import cpu_name

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R45 64-Core Processor\n")
    assert cpu_name(tmp_path) == "AMD EPYC 9R45 64-Core Processor"
    import platform

    assert cpu_name(tmp_path / "nowhere") == (platform.processor() or platform.machine())
