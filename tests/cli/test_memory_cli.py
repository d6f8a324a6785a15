"""``cnnlab memory`` and ``cnnlab fit`` from the command line."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import run
from tests.zygote import run_cnnlab


def test_memory_json_has_training_and_inference_peaks(capsys, examples):
    code, out, _ = run(capsys, "memory", str(examples / "geron_ex2.yaml"), "--batch", "4", "--json")
    doc = json.loads(out)
    assert code == 0
    assert isinstance(doc["training"]["peak_bytes"], int) and isinstance(doc["inference"]["peak_bytes"], int)
    assert doc["training"]["peak_bytes"] > doc["inference"]["peak_bytes"]
    assert set(doc["training"]["breakdown"]) == {"parameters", "buffers", "gradients", "optimizer_state",
                                                 "input", "activations", "temporaries", "kernel_workspace"}


def test_memory_measure_and_explain(capsys):
    code, out, _ = run(capsys, "memory", "mlp", "--batch", "16", "--measure", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["training"]["measured_peak_bytes"] > 0
    assert abs(doc["training"]["relative_error"]) < 0.01
    code, out, _ = run(capsys, "memory", "lenet5", "--batch", "8", "--explain")
    assert code == 0 and "textbook training figure" in out and "gradients" in out


def test_fit_json_gives_max_batch_and_remedies(capsys):
    """max_batch checked against direct predictions around it; the remedies are real ones."""
    import torch

    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.models import create_model

    code, out, _ = run(capsys, "fit", "lenet5", "--batch", "64", "--budget", "2MB", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["budget_bytes"] == 2_000_000
    with torch.device("meta"):
        net = create_model("lenet5")
    best = doc["max_batch"]
    assert 0 < best < 64

    def peak(batch: int) -> int:
        return estimate_memory(net, (1, 32, 32), batch, include_inference=False).training.peak_bytes

    assert peak(best) <= doc["usable_bytes"] < peak(best + 1)
    smaller = next(r for r in doc["remedies"] if r["name"] == "smaller batch")
    assert smaller["max_batch"] == best and smaller["fits"] and smaller["peak_bytes"] == peak(best)
    assert all(isinstance(r["peak_bytes"], int) for r in doc["remedies"])


def test_fit_on_a_spec_names_the_layer_to_stride_and_prints_its_marks(capsys, examples):
    code, out, _ = run(capsys, "fit", str(examples / "geron_ex2.yaml"), "--input", "3,100,150", "--batch", "16",
                       "--budget", "80MB")
    assert code == 0 and "(fits) larger stride: layer 1 (conv_1): stride 2 -> 3" in out
    assert "(fits) remove layers: layers conv_2 and conv_3" in out


def test_explain_splits_the_gap_to_the_textbook_figure(capsys, examples):
    code, out, _ = run(capsys, "memory", str(examples / "geron_ex2.yaml"), "--batch", "50", "--explain")
    assert code == 0 and "textbook training figure: 565,613,600 B" in out
    assert "saved activations − textbook layer outputs (526,000,000 B)" in out


@pytest.mark.parametrize("argv,needle", [
    (["fit", "lenet5", "--budget", "8XB"], "not a size"),
    (["fit", "lenet5", "--budget", "0"], "positive size"),
    (["fit", "lenet5", "--budget=-1GiB"], "not a size"),
    (["memory", "lenet5", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["memory", "lenet5", "--precision", "fp8"], "invalid choice: 'fp8'"),
    (["memory", "lenet5", "--batch", "0"], "must be a positive integer"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and out == ""


def test_measure_on_cuda_without_a_gpu_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on GPU machines
    code, _, err = run(capsys, "memory", "lenet5", "--device", "cuda", "--measure")
    assert code == 2 and "needs a CUDA GPU" in err


def test_measure_leaves_stderr_clean():
    """The profiler's native chatter (USDT profiler_start, gpuGetDeviceCount failed) is silenced."""

    proc = run_cnnlab("memory", "lenet5", "--batch", "2", "--measure")
    assert proc.returncode == 0 and "measured" in proc.stdout
    assert proc.stderr == "", proc.stderr[-1000:]


def test_cpu_and_threads_predict_another_machines_kernels(capsys):
    """--cpu avx2 on any machine = the Python API's CpuKernels("avx2", ...); the header names them."""
    import torch

    from cnnlab.memory.estimate import estimate_memory
    from cnnlab.memory.onednn.workspace import CpuKernels
    from cnnlab.models import create_model

    code, out, _ = run(capsys, "memory", "resnet18", "--input", "3,32,32", "--batch", "8", "--cpu", "avx2",
                       "--threads", "2", "--json")
    assert code == 0
    with torch.device("meta"):
        net = create_model("resnet18", input_size=32)
    for isa in ("avx2", "avx512"):
        est = estimate_memory(net, (3, 32, 32), 8, kernels=CpuKernels(isa, 2))
        if isa == "avx2":
            assert json.loads(out)["training"]["peak_bytes"] == est.training.peak_bytes
        else:   # the two ISAs' kernels differ on this network (small maps): the option matters
            assert json.loads(out)["training"]["peak_bytes"] != est.training.peak_bytes
    code, out, _ = run(capsys, "memory", "lenet5", "--cpu", "avx512", "--threads", "4")
    assert code == 0 and "cpu (avx512 kernels, 4 threads)" in out.splitlines()[0]
    code, _, err = run(capsys, "memory", "lenet5", "--cpu", "avx2", "--measure")
    assert code == 2 and "--measure runs this machine's kernels" in err
