"""``--precision auto``: the fast path where the CPU has it, float32 elsewhere; train and memory choose alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.onednn.workspace import CpuKernels
from cnnlab.precision import choose
from cnnlab.spec import build, load_spec
from cnnlab.targets import PACKAGED_SPECS

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


@pytest.mark.parametrize("family, precision, channels_last", [
    ("amx", "bf16-amp", True),             # Intel Sapphire Rapids and later: AMX tiles
    ("avx512_bf16", "bf16-amp", True),     # AMD Zen 4/5, Intel Cooper Lake: native bfloat16 dot products
    ("avx512_core", "fp32", False),        # AVX-512 without bfloat16: converted in registers, slower than fp32
    ("none", "fp32", False),               # AVX2: no bfloat16 convolution kernels (reference code)
])
def test_auto_takes_bf16_only_where_the_cpu_computes_it(family, precision, channels_last):
    choice = choose("auto", "cpu", kernels=CpuKernels("avx512" if family != "none" else "avx2", 2, family))
    assert (choice.precision, choice.channels_last) == (precision, channels_last)
    assert choice.line().startswith(f"precision auto → {precision}")
    assert choose("bf16-amp", "cpu", False).precision == "bf16-amp"        # an explicit choice is kept
    segmentation = choose("auto", "cpu", kernels=CpuKernels("avx512", 2, family), measured=False)
    assert (segmentation.precision, segmentation.channels_last) == ("fp32", False)   # measured for classification


def test_memory_predicts_what_train_runs():
    """The same choice reaches the memory prediction: auto's figure is the resolved precision's figure."""
    net = build(load_spec(PACKAGED_SPECS["small_cnn"]), device="meta")
    here = choose("auto", "cpu")
    auto = estimate_memory(net, (1, 28, 28), 32, "adam", "auto", include_inference=False)
    same = estimate_memory(net, (1, 28, 28), 32, "adam", here.precision, channels_last=here.channels_last,
                           include_inference=False)
    assert auto.training.peak_bytes == same.training.peak_bytes
    assert auto.notes[0] == here.line()
    avx2 = estimate_memory(net, (1, 28, 28), 32, "adam", "auto", kernels=CpuKernels("avx2", 2),
                           include_inference=False)
    fp32 = estimate_memory(net, (1, 28, 28), 32, "adam", "fp32", kernels=CpuKernels("avx2", 2),
                           include_inference=False)
    assert avx2.training.peak_bytes == fp32.training.peak_bytes


@pytest.mark.slow
def test_a_run_says_and_records_its_choice_on_this_cpu_and_on_avx2(tmp_path: Path):
    """The default run, natively and under the AVX2 cap (no bfloat16 kernels): its first line says what auto chose
    and config.json records it (a resume runs the same)."""
    expected = {"native": choose("auto", "cpu"), "avx2": None}
    for name, extra in (("native", {}), ("avx2", AVX2)):
        env = {**os.environ, **extra}
        out = tmp_path / name
        p = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", "1", "--train-size", "200",
                            "--out", str(out), "--no-progress"], capture_output=True, text=True, env=env)
        assert p.returncode == 0, p.stderr[-1500:]
        config = json.loads((out / "config.json").read_text())["config"]
        want = expected[name] or choose("auto", "cpu", kernels=CpuKernels("avx2", torch.get_num_threads()))
        assert (config["precision"], config["channels_last"]) == (want.precision, want.channels_last)
        assert p.stderr.splitlines()[0].startswith(f"precision auto → {want.precision}")
    assert json.loads((tmp_path / "avx2" / "config.json").read_text())["config"]["precision"] == "fp32"
