"""Memory prediction on the fast path: bfloat16 and channels-last are never silently low.

The scratch rules were measured for float32 NCHW convolutions (test_workspace.py); bfloat16 convolutions run
other oneDNN kernels (AMX, AVX512-BF16, or bfloat16 converted in AVX-512 registers) and channels-last
convolutions read NHWC in place. Whatever the kernels, a prediction more than 3 % below a real step must
carry the "unverified" note with the bytes at stake. The oracle is the real step (measure_memory: the
profiler's allocation events), run here under every oneDNN ISA cap this machine can take
(``ONEDNN_MAX_CPU_ISA``), each in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.onednn.workspace import ONEDNN_ISA_RANK, CpuKernels, bf16_family

CAP = ONEDNN_ISA_RANK
MEASURED_FAMILIES = ("avx512_bf16", "avx512_core", "none")     # docs/memory.md, the fast-path grid
XEON_AMX = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
ZEN5 = frozenset({"avx512f", "avx512_bf16"})


@pytest.mark.parametrize("isa, flags, cap, family", [
    ("avx512", XEON_AMX, CAP["ALL"], "amx"),
    ("avx512", XEON_AMX, CAP["AVX512_CORE_BF16"], "avx512_bf16"),
    ("avx512", XEON_AMX, CAP["AVX512_CORE"], "avx512_core"),
    ("avx512", ZEN5, CAP["ALL"], "avx512_bf16"),
    ("avx512", ZEN5, CAP["AVX512_CORE_AMX"], "avx512_bf16"),        # no AMX tiles on this CPU
    ("avx512", frozenset({"avx512f"}), CAP["ALL"], "avx512_core"),   # Skylake-X: bfloat16 converted in registers
    ("avx2", XEON_AMX, CAP["AVX2"], "none"),
    ("avx2", frozenset(), CAP["ALL"], "none"),
])
def test_the_bf16_kernel_family_follows_the_cpu_and_the_cap(isa, flags, cap, family):
    assert bf16_family(isa, flags, cap) == family


def _meta(name: str, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    from cnnlab.spec import NetworkSpec, build
    from cnnlab.targets import resolve_target

    target = resolve_target(name, shape)
    return build(target.network, device="meta") if isinstance(target.network, NetworkSpec) else target.network


@pytest.mark.parametrize("precision, channels_last", [("bf16-amp", False), ("bf16", False), ("fp32", True),
                                                       ("bf16-amp", True), ("fp16-amp", False)])
@pytest.mark.parametrize("kernels", [CpuKernels("avx512", 2, "avx512_bf16"), CpuKernels("avx512", 2, "amx"),
                                     CpuKernels("avx2", 2, "none"), CpuKernels("avx512", 2)])
def test_every_unmeasured_combination_says_unverified_with_the_bytes(precision, channels_last, kernels):
    est = estimate_memory(_meta("small_cnn", (1, 28, 28)), (1, 28, 28), 16, "adam", precision,
                          kernels=kernels, channels_last=channels_last)
    note = next((n for n in est.notes if "unverified" in n), None)
    assert note is not None
    layout = "NHWC (channels-last)" if channels_last else "NCHW"
    assert f"{layout} convolutions on {kernels.family('fp16' if precision == 'fp16-amp' else 'bf16' if 'bf16' in precision else 'fp32')} kernels" in note
    stake = max(est.training.breakdown["kernel_workspace"], est.inference.breakdown["kernel_workspace"])
    assert f"includes {stake:,} B of estimated kernel workspace" in note


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
def test_float32_nchw_stays_verified(isa):
    est = estimate_memory(_meta("small_cnn", (1, 28, 28)), (1, 28, 28), 16, "adam",
                          kernels=CpuKernels(isa, 2, "none"))
    assert not any("unverified" in n for n in est.notes)


CHILD = r"""
import json, sys, torch
from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.measure import measure_memory
from cnnlab.memory.onednn.workspace import CpuKernels
from cnnlab.memory.step import StepConfig
from cnnlab.spec import NetworkSpec, build
from cnnlab.targets import resolve_target
torch.set_num_threads(2)
def net(name, shape, device):
    t = resolve_target(name, shape)
    if isinstance(t.network, NetworkSpec):
        return build(t.network, device=device)
    from cnnlab.models import create_model
    return t.network if device == "meta" else create_model(name, in_channels=shape[0], input_size=shape[1])
rows = []
for name, shape, batch in [("small_cnn", (1, 28, 28), 32), ("lenet5", (1, 32, 32), 16), ("fashion_cnn", (1, 28, 28), 16),
                           ("resnet18", (3, 32, 32), 4)]:
    for precision in ("bf16-amp", "bf16"):
        for cl in (False, True):
            est = estimate_memory(net(name, shape, "meta"), shape, batch, "adam", precision, channels_last=cl)
            torch.manual_seed(0)
            real = net(name, shape, "cpu")
            train, infer = measure_memory(real, shape, batch, StepConfig("adam", precision, channels_last=cl))
            rows.append({"net": name, "precision": precision, "cl": cl, "family": CpuKernels.current().bf16,
                         "train": [est.training.peak_bytes, train], "infer": [est.inference.peak_bytes, infer],
                         "flagged": any("unverified" in n for n in est.notes)})
print(json.dumps(rows))
"""


def _caps() -> list[dict[str, str]]:
    """The ISA caps this machine can run: itself, and every lower bfloat16 family it has."""
    caps = [{}]
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        if CpuKernels.current().bf16 == "amx":      # else the native run is the AVX512-BF16 family already
            caps.append({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"})
        caps += [{"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}]
    return caps


@pytest.mark.slow
@pytest.mark.parametrize("cap", _caps(), ids=lambda c: c.get("ONEDNN_MAX_CPU_ISA", "native"))
def test_a_real_bf16_or_channels_last_step_is_never_silently_above_the_prediction(cap):
    env = {**os.environ, **cap}
    run = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    for r in rows:
        for kind in ("train", "infer"):
            predicted, measured = r[kind]
            low = predicted < 0.97 * measured
            assert not low or r["flagged"], (r, kind)
            # the recipe's layout (bf16-amp, channels-last) on the measured families: within 3 % either way (NCHW
            # bf16 weight-gradient scratchpads are not modelled: fashion_cnn's step is 5.9 % low, flagged)
            if r["precision"] == "bf16-amp" and r["cl"] and r["family"] in MEASURED_FAMILIES:
                assert abs(predicted - measured) <= 0.03 * measured, (r, kind)


def test_the_quoted_gaps_cover_every_measured_row():
    """KNOWN_GAPS (what the unverified note quotes) is at least the worst under-prediction each (kernels, dtype,
    layout) group showed on the recorded fast-path grids (benchmarks/results/memory_cpu_fastpath_*.jsonl)."""
    from pathlib import Path

    from cnnlab.memory.estimate import KNOWN_GAPS

    results = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "results").glob("memory_cpu_fastpath_*.jsonl"))
    assert results
    worst: dict[tuple[str, str, str], float] = {}
    for path in results:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            dtype = {"fp32": "fp32", "fp16-amp": "fp16"}.get(r["precision"], "bf16")
            key = (r["kernels"], dtype, r["layout"])
            for p, m in ((r["predicted"], r["measured"]), (r["predicted_inference"], r["measured_inference"])):
                worst[key] = max(worst.get(key, 0.0), (m - p) / m)
    for key, low in worst.items():
        if key[1:] == ("fp32", "nchw"):
            assert low < 0.03, key                           # the verified rows
        elif low > 0.001:
            assert KNOWN_GAPS.get(key, 0.0) >= round(low, 3), (key, low)
