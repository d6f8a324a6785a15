"""The zoo comparison table and the family-by-family figures quoted in docs/zoo.md.

Nothing is trained or run on real data: every figure is `cnnlab zoo compare`
(analysis on the meta device), so the output is the same on any machine.

    python benchmarks/zoo_table.py > /tmp/zoo.md

Prints markdown: the table for 3×224×224 inputs (1×32×32 for LeNet-5,
1×28×28 for the MLP), then the comparisons the docs' paragraphs use.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab import analyze
from cnnlab.layers import SeparableConv2d
from cnnlab.models import ZOO, create_model
from cnnlab.zoo import ZooRow, compare


def table(rows: list[ZooRow]) -> str:
    lines = ["| model | year | input | depth | parameters | MACs | inference MB | training MB (batch 1) |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.year} | {'×'.join(map(str, r.input_shape))} | {r.depth} | "
                     f"{r.params:,} | {r.macs:,} | {r.inference_bytes / 1e6:,.1f} | "
                     f"{r.training_bytes / 1e6:,.1f} |")
    return "\n".join(lines)


def regular_xception() -> nn.Module:
    """Xception with every separable convolution replaced by a regular one of the same shape."""
    with torch.device("meta"):
        model = create_model("xception")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SeparableConv2d):
                dw = child.depthwise
                setattr(parent, name, nn.Conv2d(dw.in_channels, child.pointwise.out_channels,
                                                dw.kernel_size, dw.stride, dw.padding, bias=False,
                                                device="meta"))
    return model


def resnet50_v1() -> nn.Module:
    """ResNet-50 as the 2015 paper placed the stride: in the first 1×1 of a block, not the 3×3 (v1.5)."""
    from cnnlab.models.resnet import Bottleneck

    with torch.device("meta"):
        model = create_model("resnet50")
    for block in model.modules():
        if isinstance(block, Bottleneck) and block.conv2[0].stride == (2, 2):
            block.conv1[0].stride, block.conv2[0].stride = (2, 2), (1, 1)
    return model


def main() -> None:
    rows = compare()
    by = {r.name: r for r in rows}
    print(table(rows))
    print()

    def ratio(a: str, b: str, field: str) -> str:
        return f"{getattr(by[a], field) / getattr(by[b], field):.2f}"

    facts = [
        f"GoogLeNet / AlexNet: params {ratio('googlenet', 'alexnet', 'params')}×, "
        f"MACs {ratio('googlenet', 'alexnet', 'macs')}×, depth {by['googlenet'].depth} vs {by['alexnet'].depth}",
        f"ResNet-152 / VGG-19: params {ratio('resnet152', 'vgg19', 'params')}×, "
        f"MACs {ratio('resnet152', 'vgg19', 'macs')}×, depth {by['resnet152'].depth} vs {by['vgg19'].depth}",
        f"SE-ResNet-50 - ResNet-50: +{by['seresnet50'].params - by['resnet50'].params:,} params "
        f"(+{100 * (by['seresnet50'].params / by['resnet50'].params - 1):.1f} %), "
        f"+{by['seresnet50'].macs - by['resnet50'].macs:,} MACs "
        f"(+{100 * (by['seresnet50'].macs / by['resnet50'].macs - 1):.2f} %)",
        f"EfficientNet-B0 / ResNet-50: params {ratio('efficientnet_b0', 'resnet50', 'params')}×, "
        f"MACs {ratio('efficientnet_b0', 'resnet50', 'macs')}×",
        f"VGG-16 first dense layer: {25088 * 4096 + 4096:,} of {by['vgg16'].params:,} params "
        f"({100 * (25088 * 4096 + 4096) / by['vgg16'].params:.1f} %)",
        f"VGG-16-BN - VGG-16 training memory: +{(by['vgg16_bn'].training_bytes - by['vgg16'].training_bytes):,} B",
        f"AlexNet paper / torchvision: params {by['alexnet_paper'].params:,} vs {by['alexnet'].params:,}; "
        f"MACs {by['alexnet_paper'].macs:,} vs {by['alexnet'].macs:,}",
        f"ResNet-18 → 152: params {ratio('resnet152', 'resnet18', 'params')}×, MACs {ratio('resnet152', 'resnet18', 'macs')}×",
    ]
    v1 = analyze(resnet50_v1(), (3, 224, 224))
    facts.append(f"ResNet-50 with the paper's stride placement (v1): {v1.total_macs:,} MACs "
                 f"(v1.5, torchvision: {by['resnet50'].macs:,})")
    reg = analyze(regular_xception(), (3, 224, 224))
    x = by["xception"]
    facts.append(f"Xception with regular convolutions: {reg.total_params:,} params "
                 f"({reg.total_params / x.params:.2f}×), {reg.total_macs:,} MACs ({reg.total_macs / x.macs:.2f}×)")
    for name in ("efficientnet_b0", "efficientnet_b3", "efficientnet_b7", "xception"):
        res = ZOO[name].resolution
        (native,) = compare([name], (3, res, res))
        facts.append(f"{name} at its paper resolution {res}×{res}: {native.macs:,} MACs, "
                     f"training memory (batch 1) {native.training_bytes:,} B")
    lenet, mlp_row = compare(["lenet5", "mlp"], (3, 224, 224))
    facts.append(f"3×224×224: LeNet-5 {lenet.params:,} params, {lenet.macs:,} MACs; "
                 f"MLP {mlp_row.params:,} params, {mlp_row.macs:,} MACs")
    lenet32, mlp28 = compare(["lenet5"], (1, 32, 32))[0], compare(["mlp"], (1, 28, 28))[0]
    facts.append(f"LeNet-5 (1×32×32) {lenet32.params:,} params, {lenet32.macs:,} MACs; "
                 f"MLP (1×28×28) {mlp28.params:,} params, {mlp28.macs:,} MACs")
    print("\n".join(f"- {f}" for f in facts))


if __name__ == "__main__":
    main()
