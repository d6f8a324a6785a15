"""The network a run trains: a zoo model or a spec, adapted to the data's channels, size and classes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.spec import build, load_spec, parse_spec
from cnnlab.spec.network import SPEC_SUFFIXES, read_yaml
from cnnlab.targets import PACKAGED_SPECS

DEFAULT_MODEL = "small_cnn"
SMALL_CNN = PACKAGED_SPECS[DEFAULT_MODEL]   # cnnlab's own small CNN (266,602 parameters at 28×28)


def _adapt_spec(spec, shape: tuple[int, int, int], classes: int):  # type: ignore[no-untyped-def]
    try:
        spec = spec.with_input(shape)
    except CnnlabError as err:
        if tuple(shape[1:]) == tuple(spec.input_shape[1:]):
            raise
        h, w = spec.input_shape[1:]
        raise CnnlabError(f"{spec.name} was written for {h}×{w} images and does not fit the data's "
                          f"{shape[1]}×{shape[2]} ({str(err).split(': ', 1)[-1]}); resize the data with "
                          f"--size {h},{w}") from err
    last = spec.layers[-1]
    if last.TYPE != "dense":
        raise CnnlabError(f"{spec.source or spec.name}: the last layer must be a dense layer (the classifier); "
                          f"it is {last.TYPE}")
    # the loss is cross-entropy on logits: the classifier gets the data's classes and no softmax
    new_last = replace(last, units=classes, activation="none")  # type: ignore[call-arg]
    return replace(spec, layers=spec.layers[:-1] + (new_last,))


TRAINING_COPIES = 4    # weights, gradients and Adam's two moments: what training holds per parameter at least


def require_weights_fit(make: Callable[[], nn.Module], name: str) -> None:
    """Build the network on the meta device (nothing allocated) and refuse it in one line when its parameters,
    with their gradients and optimizer state, need more RAM than is available (a spec conv with
    ``filters: 100000000000`` once ended in an allocation traceback)."""
    import torch

    from cnnlab.machine import require_ram

    with torch.device("meta"):
        meta = make()
    weights = sum(p.numel() * p.element_size() for p in meta.parameters())
    require_ram(TRAINING_COPIES * weights, f"{name}: training its {sum(p.numel() for p in meta.parameters()):,} "
                "parameters (weights, gradients, optimizer state)", "make the network smaller")


def build_model(model: str, shape: tuple[int, int, int], classes: int, spec_text: str | None = None,
                keras_text: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``(module, info)``: the model on CPU with fresh weights (a Keras file's own), and how to rebuild it.

    ``model`` is a zoo name, a spec file or a ``.keras`` file; ``spec_text`` (a
    saved copy of the spec) or ``keras_text`` (the Keras config and variable
    shapes) takes the file's place when a run is rebuilt.
    """
    c, h, w = shape
    if model.lower().endswith(".keras") or keras_text is not None:
        from cnnlab.keras.classifier import keras_classifier

        return keras_classifier(model, shape, classes, keras_text)
    if model in PACKAGED_SPECS and spec_text is None:
        model = str(PACKAGED_SPECS[model])
    if model.lower().endswith(SPEC_SUFFIXES) or spec_text is not None:
        if spec_text is not None:   # JSON is YAML too
            spec, text = parse_spec(read_yaml(spec_text), source=model), spec_text
        else:
            spec = load_spec(model)
            text = Path(model).read_text()
        spec = _adapt_spec(spec, shape, classes)
        require_weights_fit(lambda: build(spec), spec.source or spec.name)
        return build(spec), {"kind": "spec", "name": spec.name, "source": model, "spec_text": text}
    from cnnlab.models import create_model, get_entry

    if ":" in model:
        raise CnnlabError(f"--model {model}: train takes a zoo name, a spec file or a Keras model file; for a Keras "
                          "builder save the model first (model.save('model.keras')) and give the .keras file")
    entry = get_entry(model)
    if entry.task != "classification":
        raise CnnlabError(f"--model {entry.name} is a segmentation network; train it with "
                          f"'cnnlab segment train --model {entry.name}'")
    require_weights_fit(lambda: create_model(entry.name, num_classes=classes, in_channels=c, input_size=h),
                        entry.name)
    net = create_model(entry.name, num_classes=classes, in_channels=c, input_size=h)
    need = getattr(net, "min_input_size", 1)
    if min(h, w) < need:
        raise CnnlabError(f"{entry.name} needs images of at least {need}×{need} but the data is {h}×{w}; "
                          f"resize with --size {need},{need} (or larger)")
    return net, {"kind": "zoo", "name": entry.name}


def saved_spec(spec_text: str, shape: tuple[int, int, int], classes: int, source: str = "model_spec.yaml") -> Any:
    """The spec a run trained (its saved text, adapted to the data's channels and classes), for analysis."""
    return _adapt_spec(parse_spec(read_yaml(spec_text), source=source), shape, classes)
