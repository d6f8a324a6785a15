"""The step ``cnnlab train`` runs is the step ``cnnlab memory`` predicts: the engine's real step, measured by
the allocator (PyTorch's profiler), against the prediction on fake tensors — for each task with a loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.memory.estimate import estimate_memory
from cnnlab.memory.measure import _profiled_peak, _storage_bytes
from cnnlab.train.config import TrainConfig
from cnnlab.train.engine import Trainer

TOLERANCE = 2_048        # bytes: exact on AVX-512, AVX512-BF16 and AVX2 kernels here; 16 KiB is the grid's bound


def segmentation_folder(root) -> str:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray((rng.random((16, 16)) > 0.5).astype(np.uint8)).save(root / "masks" / f"{i}.png")
    return str(root)


def measured_engine_step(trainer: Trainer) -> int:
    """Bytes live at the peak of the engine's own step (after one warm-up step made the optimizer state)."""
    order = torch.arange(len(trainer.data.train))
    x, y, _ = trainer._make_batch(order, 0, 0)
    trainer._step(x, y)
    state = [t for s in trainer.optimizer.state.values() for t in s.values()]
    live = _storage_bytes([*trainer.model.parameters(), *trainer.model.buffers(), *state, x, y])
    return live + _profiled_peak(lambda: trainer._step(x, y))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "semantic"])
def test_the_trained_step_is_the_predicted_step(tmp_path, task):
    torch.set_num_threads(1)        # the prediction's oneDNN rules for this process's threads
    if task == "classification":
        cfg = TrainConfig(model="small_cnn", data="digits", batch=32, optimizer="adam", out=str(tmp_path / "r"))
    else:
        cfg = TrainConfig.for_task("semantic", data=segmentation_folder(tmp_path / "seg"), batch=4,
                                   model_args={"width": 4, "depth": 2}, out=str(tmp_path / "r"))
    trainer = Trainer(cfg, progress=False)
    try:
        measured = measured_engine_step(trainer)
        shape = tuple(trainer.data.train.images.shape[1:])
        with torch.device("meta"):
            meta_model, _ = trainer.task.build_model(trainer.data, None)
        # the precision and layout the engine chose (cfg holds auto's choice once the trainer is set up)
        predicted = estimate_memory(meta_model, shape, cfg.batch, cfg.optimizer, cfg.precision,
                                    weight_decay=cfg.weight_decay, include_inference=False,
                                    channels_last=cfg.channels_last).training.peak_bytes
    finally:
        trainer.folder.release()
    assert abs(measured - predicted) <= TOLERANCE, (measured, predicted)


def test_for_task_gives_the_segmentation_recipe_and_the_registry_agrees():
    from cnnlab.models import model_names
    from cnnlab.train.recipes import MODELS

    cfg = TrainConfig.for_task("semantic")
    assert (cfg.model, cfg.batch, cfg.lr, cfg.epochs, cfg.augment) == ("unet", 32, 2e-3, 10, "flip")
    assert cfg.model_args == {"width": 16, "depth": 4}
    assert TrainConfig.for_task("instance", optimizer="sgd").lr is None          # sgd keeps its own default
    for task, names in MODELS.items():
        assert sorted(names) == sorted(model_names(task=task))
