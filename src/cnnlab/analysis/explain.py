"""``--explain``: the textbook derivation, in words and numbers.

Written the way the book's answer to Géron's chapter 14, exercise 2 is
written: parameters per layer from the formula, feature-map sizes from the
padding rule, which two layers set the inference peak, the training sum,
where a rounded hand calculation departs from the exact figure, and what the
textbook figure leaves out.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnlab.analysis.report import AnalysisReport, dtype_name
from cnnlab.spec.layers import Conv, DepthwiseConv, LayerSpec, SeparableConv, _Pool, n
from cnnlab.units import mb, mib

LEFT_OUT = """\
What the textbook figure leaves out (it is an optimistic bare minimum):
  - gradients: one more copy of the parameters ({param_bytes:,} B) during training;
  - optimizer state: 0 (plain SGD), 1 (SGD with momentum) or 2 (Adam) more copies;
  - what autograd really keeps: not exactly the layer outputs (a ReLU keeps its
    output, a max-pool its indices, batch norm its statistics), plus temporaries
    in the backward pass and the framework's allocator overhead.
  The real peak of a training step, predicted item by item: `cnnlab memory TARGET --explain`."""


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _module_formula(module: nn.Module | None, params: int) -> str:
    """Textbook parameter formula for common torch layers (dispatch on type)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        cin = module.in_channels // module.groups
        body = f"{kh}×{kw}×{cin}"
        body = f"({body} + 1)" if module.bias is not None else body
        return f"{body} × {module.out_channels} = {n(params)}"
    if isinstance(module, nn.Linear):
        body = f"({module.in_features} + 1)" if module.bias is not None else f"{module.in_features}"
        return f"{body} × {module.out_features} = {n(params)}"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        return f"2 × {module.num_features} (γ, β) = {n(params)}"
    return n(params)


def _shape_rule(layer: LayerSpec, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> str:
    """How the spatial size follows from the padding rule."""
    if not isinstance(layer, (Conv, DepthwiseConv, SeparableConv, _Pool)) or len(in_shape) != 3:
        return ""
    kernel = layer.size if isinstance(layer, _Pool) else layer.kernel
    stride = layer.step if isinstance(layer, _Pool) else layer.stride
    dilation = (1, 1) if isinstance(layer, _Pool) else layer.dilation
    parts = []
    for axis in range(2):
        i, o, k, s, d = in_shape[axis + 1], out_shape[axis + 1], kernel[axis], stride[axis], dilation[axis]
        if layer.padding == "same":
            parts.append(f"ceil({i}/{s}) = {o}")
        else:
            p = 0 if layer.padding == "valid" else layer.padding[axis]  # type: ignore[index]
            k_eff = f"{d}×({k}-1)+1" if d > 1 else f"{k}"
            padded = f"{i}+2×{p}" if p else f"{i}"
            parts.append(f"floor(({padded} - {k_eff})/{s}) + 1 = {o}")
    rule = "same: ceil(in/stride)" if layer.padding == "same" else "out = floor((in + 2p - k)/stride) + 1"
    return f"  [{rule}: {', '.join(parts)}]"


def _pool_vs_conv(report: AnalysisReport) -> list[str]:
    """For each pooling layer: what a convolution with the same window and stride would cost instead.

    The chapter's exercise 4 ("why max pooling rather than a convolution with the
    same stride?"): pooling has no parameters and next to no compute.
    """
    spec = report.spec
    if spec is None:
        return []
    pools = [(i, layer) for i, layer in enumerate(spec.layers) if isinstance(layer, _Pool)]
    if not pools:
        return []
    names = spec.layer_names()
    lines = ["", "5. Pooling vs a strided convolution in its place (same window, stride and padding, "
                 "C → C channels):"]
    for i, layer in pools:
        c, h, w = spec.shapes[i + 1]
        kh, kw = layer.size
        params = c * c * kh * kw + c
        macs = h * w * c * c * kh * kw
        lines.append(f"   layer {i + 1} {names[i]} ({layer.TYPE} {kh}×{kw}/{layer.step[0]}): 0 parameters; "
                     f"a convolution: ({kh}×{kw}×{c} + 1) × {c} = {n(params)} parameters and "
                     f"{h}×{w}×{c}×{c}×{kh}×{kw} = {n(macs)} MACs per instance, to be learned")
    return lines


def explain(report: AnalysisReport) -> str:
    """The derivation of every number in ``report`` as text."""
    b = report.bytes_per_element
    mem = report.memory
    spec = report.spec
    lines = [
        f"Derivation for {report.name}: input {_dims(report.input_shape)}, batch {report.batch_size}, "
        f"{dtype_name(report.dtype)} ({b} bytes per value). MB = 10^6 bytes, MiB = 2^20 bytes.",
        "",
        "1. Parameters"
        + (" (kernel height × kernel width × input channels + 1 bias) × feature maps, for convolutions:"
           if spec else ":"),
    ]
    for row in report.layers:
        if row.params == 0 and (row.textbook_params or 0) == 0:
            continue
        lines.append(_param_line(row))
    lines.append(f"   total: {n(report.total_params)} parameters × {b} B = {n(mem.param_bytes)} B "
                 f"({mb(mem.param_bytes)}, {mib(mem.param_bytes)})")
    lines += ["", "2. Feature maps (one instance):",
              f"   layer 0 input: {_dims(report.input_shape)} = {n(mem.outputs[0] // b)} values × {b} B "
              f"= {n(mem.outputs[0])} B ({mb(mem.outputs[0])})"]
    for row in report.layers:
        lines.append(_map_line(report, row))

    i, j = mem.inference_pair
    names = ["input"] + [r.name for r in report.layers]
    lines += ["", "3. Inference, one instance: parameters + the largest two consecutive layer outputs",
              "   (while a layer computes, its input and output are both in memory; earlier ones can go)."]
    if i != j:
        lines.append(f"   largest pair: layer {i} ({names[i]}) + layer {j} ({names[j]}) = "
                     f"{n(mem.outputs[i])} + {n(mem.outputs[j])} = {n(mem.inference_activation_bytes)} B")
    lines.append(f"   {n(mem.inference_activation_bytes)} + {n(mem.param_bytes)} (parameters) = "
                 f"{n(mem.inference_bytes)} B = {mb(mem.inference_bytes)} = {mib(mem.inference_bytes)}")
    if report.batch_size > 1:
        lines.append(f"   a mini-batch of {report.batch_size}: the pair for every instance, the parameters once: "
                     f"{report.batch_size} × {n(mem.inference_activation_bytes)} + {n(mem.param_bytes)} = "
                     f"{n(mem.batch_inference_bytes)} B = {mb(mem.batch_inference_bytes)} = "
                     f"{mib(mem.batch_inference_bytes)}")

    per_instance = mem.activation_bytes_per_instance
    terms = " + ".join(n(x) for x in mem.outputs) if len(mem.outputs) <= 8 else "…"
    lines += ["", f"4. Training, mini-batch of {report.batch_size}: every layer's output for every instance "
                  "(kept for backpropagation) + the input batch + the parameters.",
              f"   per instance: {terms} = {n(per_instance)} B",
              f"   {report.batch_size} × {n(per_instance)} = {n(mem.training_activation_bytes)} B; "
              f"+ {n(mem.param_bytes)} (parameters) = {n(mem.training_bytes)} B "
              f"= {mb(mem.training_bytes)} = {mib(mem.training_bytes)}"]
    lines += _rounding_note(report)
    lines += _pool_vs_conv(report)
    lines += ["", LEFT_OUT.format(param_bytes=mem.param_bytes)]
    return "\n".join(lines)


def _param_line(row: Any) -> str:
    formula = row.params_formula or _module_formula(row.module, row.params)
    check = ""
    if row.textbook_params is not None and row.textbook_params != row.params:
        check = f"  (PyTorch counts {n(row.params)}: differs!)"
    return f"   layer {row.index} {row.name} ({row.type}): {formula}{check}"


def _map_line(report: AnalysisReport, row: Any) -> str:
    b, rule = report.bytes_per_element, ""
    if row.twin is not None:    # a spec layer (or a Keras layer's spec twin): the padding rule
        layer, in_shape = row.twin
        rule = _shape_rule(layer, in_shape, row.output_shape)
    return (f"   layer {row.index} {row.name}: {_dims(row.output_shape)} = {n(row.output_bytes // b)} values × "
            f"{b} B = {n(row.output_bytes)} B ({mb(row.output_bytes)}){rule}")


def explain_layer(report: AnalysisReport, index: int) -> str:
    """The derivation of layer ``index`` (1-based, as the table numbers them): parameters, output size, MACs.

    The same lines :func:`explain` prints for that layer; ``IndexError`` for an index out of range."""
    if not 1 <= index <= len(report.layers):
        raise IndexError(f"layer {index} does not exist; the layers are 1..{len(report.layers)}")
    row = report.layers[index - 1]
    lines = [f"Layer {row.index} {row.name} ({row.type}), {dtype_name(report.dtype)} ({report.bytes_per_element} "
             "bytes per value):", "", "Parameters:",
             _param_line(row) if row.params or row.textbook_params else "   none (no weights)",
             "", "Output (one instance):", _map_line(report, row)]
    if row.macs:
        how = f"{row.macs_formula} = " if row.macs_formula else ""
        lines += ["", f"MACs (one instance): {how}{n(row.macs)} multiply-adds (FLOPs = 2 × MACs = {n(2 * row.macs)})"]
    if row.receptive_field or row.effective_stride:
        rf = "×".join(map(str, row.receptive_field)) if row.receptive_field else "the whole input"
        st = "×".join(map(str, row.effective_stride)) if row.effective_stride else "—"
        lines += ["", f"Each output unit sees {rf} input pixels; neighbouring units are {st} input pixels apart."]
    return "\n".join(lines)


def _rounding_note(report: AnalysisReport) -> list[str]:
    """Where a hand calculation that rounds each layer to 0.1 MB lands (as the book does)."""
    mem = report.memory
    layers_mb = [round(x / 1e6, 1) for x in mem.outputs[1:]]
    exact_mb = [x / 1e6 for x in mem.outputs[1:]]
    if all(abs(r - e) < 1e-9 for r, e in zip(layers_mb, exact_mb)):
        return []
    rounded = (report.batch_size * (sum(layers_mb) + round(mem.outputs[0] / 1e6, 2))
               + round(mem.param_bytes / 1e6, 2))
    changed = [f"layer {k} {e:.2f} MB → {r:.1f} MB" for k, (r, e)
               in enumerate(zip(layers_mb, exact_mb), start=1) if abs(r - e) > 1e-9][:3]
    return ["", "   Rounding: a hand calculation that rounds each layer's output to 0.1 MB "
                f"({'; '.join(changed)}) gets {rounded:,.1f} MB for training; "
                f"the exact figure is {mb(mem.training_bytes, 1)} ({n(mem.training_bytes)} B)."]
