"""Memory prediction on both instruction sets, whichever machine the suite runs on.

oneDNN picks different kernels (and so different scratch buffers) on AVX2 and
AVX-512 CPUs. The workspace and memory tests run natively with the rest of the
suite; here they run again in a subprocess forced onto the AVX2 kernels
(``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``, read when torch is
imported), so an AVX-512 machine checks both. An AVX2 CPU cannot run AVX-512
kernels: there the recorded AVX-512 allocations (``tests/recorded``) check
that side, in ``test_workspace.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


@pytest.mark.slow
@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX512",
                    reason="this CPU has no AVX-512 (or already runs AVX2 kernels): its native run of "
                           "test_workspace.py/test_estimate.py is the AVX2 run, and the recorded AVX-512 "
                           "allocations check the other ISA")
def test_memory_prediction_holds_on_the_avx2_kernels_too():
    env = {**os.environ, **AVX2, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "AVX2"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(HERE / "test_workspace.py"), str(HERE / "test_estimate.py"),
                          # the tests that run real kernels or compare with them (the others do not change with the
                          # ISA: the meta step equals the fake-tensor step on any machine)
                          "-k", "not meta_step_allocates_exactly and not counting_macs and not batch_curve"],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
