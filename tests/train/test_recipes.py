"""Recipes: what ``cnnlab train`` runs when a flag is not given (the data's own recipe, a named one, or none)."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli.main import build_parser, main
from cnnlab.cli.train import recipe_settings
from cnnlab.train.config import TrainConfig
from cnnlab.train.recipes import CLASSIFICATION_RECIPES, RECIPE_FIELDS


def _settings(*argv: str) -> dict:
    return recipe_settings(build_parser().parse_args(["train", *argv]))


def test_fashion_mnist_gets_its_recipe_digits_the_plain_defaults():
    fashion = _settings("--data", "fashion-mnist")
    assert fashion["recipe"] == "fashion-mnist"
    recipe = CLASSIFICATION_RECIPES["fashion-mnist"]
    assert all(fashion["lr" if k == "adam_lr" else k] == v for k, v in recipe.items())
    plain = _settings()                              # digits: no recipe of its own
    d = TrainConfig()
    assert plain["recipe"] == "none" and all(plain[f] == getattr(d, f) for f in RECIPE_FIELDS)


def test_a_flag_given_wins_over_the_recipe_and_none_turns_it_off():
    s = _settings("--data", "fashion-mnist", "--batch", "32", "--tta", "none", "--augment", "none")
    assert (s["batch"], s["tta"], s["augment"]) == (32, "none", "none")
    assert s["epochs"] == CLASSIFICATION_RECIPES["fashion-mnist"]["epochs"]   # what was not given: the recipe's
    off = _settings("--data", "fashion-mnist", "--recipe", "none")
    assert off["recipe"] == "none" and off["batch"] == TrainConfig().batch and off["augment"] == "none"
    # scrambled pixels have no mirror image: the recipe's test-time flip is left out, not refused
    assert _settings("--data", "fashion-mnist", "--permute-pixels")["tta"] == "none"
    # a flag given with the default's own value is still the user's choice
    assert _settings("--data", "fashion-mnist", "--batch", str(TrainConfig().batch))["batch"] == TrainConfig().batch


def test_the_recipes_adam_rate_is_for_adam_only_and_a_given_rate_wins():
    from cnnlab.vocab import DEFAULT_LR

    peak = CLASSIFICATION_RECIPES["fashion-mnist"]["adam_lr"]
    assert peak != DEFAULT_LR["adam"]                  # else this test could not tell the two apart
    assert _settings("--data", "fashion-mnist", "--optimizer", "adamw")["lr"] == peak
    assert _settings("--data", "fashion-mnist", "--lr", "0.01")["lr"] == 0.01
    for sgd in ("sgd", "nesterov"):     # SGD at Adam's peak would crawl: it keeps its own default rate
        assert _settings("--data", "fashion-mnist", "--optimizer", sgd)["lr"] is None
        assert TrainConfig.for_recipe("fashion-mnist", optimizer=sgd).learning_rate == DEFAULT_LR[sgd]
    assert TrainConfig.for_recipe("fashion-mnist").learning_rate == peak
    kept = TrainConfig.for_recipe("fashion-mnist", lr=0.02, out="x", data="digits", seed=7)
    assert (kept.lr, kept.out, kept.data, kept.seed) == (0.02, "x", "digits", 7)    # every setting given is kept
    # the first line names the rate the run trains at: SGD's own, not "lr None"
    from cnnlab.train.recipes import recipe_line

    line = recipe_line(TrainConfig.for_recipe("fashion-mnist", optimizer="nesterov"))
    assert f"lr {DEFAULT_LR['nesterov']}" in line and "None" not in line


def test_the_run_records_its_recipe_and_says_it_first(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--recipe", "fashion-mnist", "--epochs", "1", "--train-size", "256", "--tta", "none",
                 "--precision", "fp32", "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("recipe fashion-mnist (options you give win")
    assert "lr 0.003" in err.splitlines()[0]
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["recipe"] == "fashion-mnist" and cfg["augment"] == "flip" and cfg["batch"] == 128
    assert cfg["lr"] == 3e-3 and cfg["optimizer"] == "adam"            # the peak chosen on validation
    assert cfg["epochs"] == 1 and cfg["tta"] == "none"


def test_an_edited_recipe_name_is_refused():
    with pytest.raises(Exception, match="unknown recipe 'fastest'"):
        TrainConfig(recipe="fastest").check()


def test_every_recipe_names_a_network_that_builds_and_speedrun_cnn_costs_what_its_layers_do():
    from cnnlab.analysis import analyze
    from cnnlab.train.model import build_model

    for recipe in CLASSIFICATION_RECIPES.values():
        build_model(recipe.get("model", TrainConfig().model), (1, 28, 28), 10)
    net, _ = build_model("speedrun_cnn", (1, 28, 28), 10)
    # 3×3 convolutions: 1→32 at 28×28, 32→64 and 64→64 at 14×14, 64→128 at 7×7; dense 128·3·3→128→10
    macs = 9 * (1 * 32 * 28 * 28 + 32 * 64 * 14 * 14 + 64 * 64 * 14 * 14 + 64 * 128 * 7 * 7) + 1152 * 128 + 128 * 10
    assert analyze(net, (1, 28, 28)).total_macs == macs == 14_825_216


def test_speedrun_cnn_pools_before_it_normalises_and_its_head_sees_where():
    """airbench's order (conv, pool, norm, activation): every batch norm and ReLU sees a pooled map, a quarter of
    the conv's output (what makes its step ~1.4× faster than norm-then-pool: docs/benchmarks.md); then a dense head
    of 128 units with dropout on the flattened 3×3 map."""
    from torch import nn

    from cnnlab.train.model import build_model

    net, _ = build_model("speedrun_cnn", (1, 28, 28), 10)
    seen: list[tuple[str, tuple[int, ...]]] = []
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.Linear)):
            m.register_forward_hook(lambda mod, inp, out: seen.append((type(mod).__name__, tuple(inp[0].shape[1:]))))
    net.eval()(torch.zeros(1, 1, 28, 28))
    maps = [(32, 14, 14), (64, 14, 14), (64, 7, 7), (128, 3, 3)]
    assert seen[:8] == [(kind, shape) for shape in maps for kind in ("BatchNorm2d", "ReLU")]
    # the head sees where each feature was: the 3×3 map flattened (128·3·3 inputs), not a global pool's 128
    # (validation accuracy +0.25 to +0.53 points in 3 seeds: docs/benchmarks.md, "The speedrun's head")
    assert seen[8:] == [("Linear", (1152,)), ("ReLU", (128,)), ("Linear", (128,))]
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.25]
    assert sum(p.numel() for p in net.parameters()) == 278_762     # 131,178 with the global pool, + 1152·128 + 128


def test_a_setting_given_with_resume_is_refused_not_ignored(capsys):
    assert main(["train", "--resume", "runs/somewhere", "--batch", "32"]) == 2
    err = capsys.readouterr().err
    assert "--batch: a resumed run keeps the settings in its config.json" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--resume", "runs/somewhere", "--recipe", "speedrun"]) == 2
    assert "--recipe:" in capsys.readouterr().err
    for argv in (["train", "--resume", "runs/somewhere", "--precision", "fp32"],     # engine options too
                 ["train", "--resume", "runs/somewhere", "--channels-last"],
                 ["segment", "train", "--resume", "runs/somewhere", "--width", "8"]):
        assert main(argv) == 2
        flag = next(a for a in argv[3:] if a.startswith("--"))
        assert f"{flag}: a resumed run keeps the settings" in capsys.readouterr().err
    for argv in (["train", "--resume", "runs/somewhere", "--seed", "0"],      # given at its default: refused too
                 ["train", "--resume", "runs/somewhere", "--prec", "auto"],   # an abbreviation, as argparse takes it
                 ["segment", "train", "--resume", "runs/somewhere", "--optimizer", "adam"]):
        assert main(argv) == 2
        assert "a resumed run keeps the settings" in capsys.readouterr().err
    assert main(["train", "--resume", "runs/somewhere", "--epochs", "3", "--no-progress"]) == 2   # taken: on to the run
    assert "not a cnnlab run folder" in capsys.readouterr().err


def test_a_recipe_on_digits_leaves_its_mirror_out_and_for_recipe_applies_it():
    s = _settings("--recipe", "speedrun")                      # digits: a mirrored 2 is no 2
    assert s["tta"] == "none" and s["model"] == "speedrun_cnn"
    assert _settings("--recipe", "speedrun", "--tta", "flip")["tta"] == "flip"    # asked for: the run refuses it
    cfg = TrainConfig.for_recipe("speedrun", data="fashion-mnist", epochs=3)
    assert (cfg.recipe, cfg.model, cfg.batch, cfg.epochs) == ("speedrun", "speedrun_cnn", 256, 3)
    with pytest.raises(Exception, match="unknown recipe 'fast'"):
        TrainConfig.for_recipe("fast")
