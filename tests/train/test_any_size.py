"""Semantic segmentation at each image's own size: 40×40 and 50×37 (not multiples of U-Net's 16), and a
folder of mixed sizes, train, evaluate and predict; the canvas padding is never scored.

Oracle for the scores: torchmetrics' MulticlassJaccardIndex (ignore_index 255, average none) on each
image's own pixels, predicted by the network one image at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.canvas import make_canvas, size_order
from cnnlab.data.segmentation import SegSplit
from cnnlab.models import create_model
from cnnlab.train.tasks.semantic import evaluate
from tests.helpers import run


def seg_folder(root: Path, sizes: list[tuple[int, int]], n: int = 24) -> Path:
    """``root/images`` + ``root/masks`` of ``n`` images cycling through (W, H) ``sizes``: a bright square of
    class 1 or 2 on a dark background."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        w, h = sizes[i % len(sizes)]
        m = np.zeros((h, w), np.uint8)
        y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        m[y:y + h // 3, x:x + w // 3] = 1 + i % 2
        img = (m * 90 + rng.integers(0, 30, (h, w))).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(m).save(root / "masks" / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("size", [(40, 40), (50, 37)])
def test_unet_trains_evaluates_and_predicts_at_a_size_not_a_multiple_of_16(tmp_path, capsys, size):
    data = seg_folder(tmp_path / "d", [size])
    out = tmp_path / "run"
    code, _, err = run(capsys, "segment", "train", "--data", str(data), "--epochs", "1", "--batch", "4",
                       "--width", "4", "--out", str(out), "--no-progress")
    assert code == 0, err
    w, h = size
    assert f"sizes {h}×{w}: each image at its own size, padded to a multiple of 16 inside UNet" in err
    code, _, err = run(capsys, "segment", "predict", str(out), str(data / "images" / "000.png"), "--out",
                       str(tmp_path / "p"))
    assert code == 0, err
    assert Image.open(tmp_path / "p" / "000_mask.png").size == size


def _oracle_miou(model, split: SegSplit, mean, std, classes: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    from torchmetrics.classification import MulticlassJaccardIndex

    metric = MulticlassJaccardIndex(classes, average="none", ignore_index=255)
    with torch.no_grad():
        for i in range(len(split)):
            image, mask = split.pair(i)
            x = (image[None].float() / 255 - mean) / std
            metric.update(model(x).argmax(1), mask[None].long())
    return metric.compute()


def test_padding_is_never_scored(tmp_path):
    """Images of three sizes on one canvas: cnnlab's IoU equals torchmetrics' on the images' own pixels, and
    garbage in the canvas padding (a mislabelled padding area would be counted if it were scored) changes
    nothing."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    images, masks = [], []
    for h, w in [(37, 50), (40, 40), (23, 61), (37, 50), (40, 40)]:
        images.append(torch.from_numpy(rng.integers(0, 256, (1, h, w), dtype=np.uint8)))
        masks.append(torch.from_numpy(rng.integers(0, 3, (h, w), dtype=np.uint8)))
    x, m, sizes = make_canvas(images, masks, "test")
    assert sizes is not None and x.shape == (5, 1, 40, 61) and bool((m[0, 37:, :] == 255).all())
    split = SegSplit(x, m, sizes)
    model = create_model("unet", num_classes=3, in_channels=1, width=4, depth=2).eval()
    mean, std = torch.tensor(0.5).view(1, 1, 1, 1), torch.tensor(0.25).view(1, 1, 1, 1)
    r = evaluate(model, split, 3, mean, std, "cpu")
    oracle = _oracle_miou(model, split, mean, std, 3)
    assert torch.allclose(torch.tensor(r["iou"], dtype=torch.float64), oracle.double(), atol=1e-6)
    garbage = SegSplit(x.clone(), m.clone(), sizes)
    for i, (h, w) in enumerate(sizes.tolist()):
        garbage.images[i, :, h:, :] = 255
        garbage.images[i, :, :, w:] = 255
        garbage.masks[i, h:, :] = 255
    assert evaluate(model, garbage, 3, mean, std, "cpu")["miou"] == r["miou"]
    relabelled = m.clone()
    relabelled[relabelled == 255] = 1     # what scoring the padding as class 1 would count
    wrong = evaluate(model, SegSplit(x, relabelled, sizes), 3, mean, std, "cpu")["miou"]
    assert wrong != r["miou"]             # the check above can fail: the padding holds pixels to count


def test_size_order_batches_one_size_together_and_is_a_permutation():
    sizes = torch.tensor([[10, 10], [20, 20]] * 12)
    order = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    got = size_order(order, sizes, 4)
    assert sorted(got.tolist()) == list(range(24))
    for b in got.split(4):
        assert len({tuple(s) for s in sizes[b].tolist()}) == 1
    assert torch.equal(size_order(order, sizes, 4), got)         # a pure function of the order
    assert torch.equal(size_order(order, None, 4), order)
    odd_order = torch.randperm(23, generator=torch.Generator().manual_seed(1))
    odd = size_order(odd_order, sizes[:23], 4)                   # the engine trains 20 and drops 3
    assert sorted(odd.tolist()) == list(range(23))
    assert torch.equal(odd[20:], odd_order[20:])                 # the dropped tail is the shuffle's, not a size's


def test_size_order_leaves_no_image_out_of_every_epoch():
    """One 20×20 image among nine 10×10 at batch 4: the engine trains 8 of 10 a epoch; over 50 epochs the
    large image must be trained on (a tail cut after sorting by size would drop it every time)."""
    from cnnlab.train.batches import epoch_order

    sizes = torch.tensor([[10, 10]] * 9 + [[20, 20]])
    trained = set()
    for epoch in range(50):
        trained |= set(size_order(epoch_order(10, 0, epoch), sizes, 4)[:8].tolist())
    assert trained == set(range(10))


def test_a_folder_of_mixed_sizes_trains_and_its_eval_matches(tmp_path, capsys):
    data = seg_folder(tmp_path / "d", [(50, 37), (40, 40), (64, 48)], n=30)
    out = tmp_path / "run"
    code, _, err = run(capsys, "segment", "train", "--data", str(data), "--epochs", "1", "--batch", "4",
                       "--width", "4", "--depth", "2", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "sizes H 37–48 × W 40–64 (3 sizes): each image at its own size" in err and "batched by size" in err
    import json

    trained = json.loads((out / "test.json").read_text())
    code, out_json, err = run(capsys, "segment", "eval", str(out), "--json")
    assert code == 0, err
    assert json.loads(out_json)["miou"] == trained["miou"]
    from cnnlab.web.state import load_run_for_page

    page = load_run_for_page(out)                      # the page shows each test image at its own size
    shapes = {tuple(x.shape[1:]) for x in page["images"]}
    assert shapes <= {(37, 50), (40, 40), (48, 64)} and all(
        tuple(x.shape[1:]) == tuple(m.shape) for x, m in zip(page["images"], page["truth"]))
