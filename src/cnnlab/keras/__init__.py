"""Keras models in: a ``.keras`` file (or a Keras builder) as an equivalent PyTorch network, weights included.

Keras is not needed to read a ``.keras`` file: its JSON config and HDF5
weights are read with ``json`` and ``h5py`` (:mod:`cnnlab.keras.archive`),
each layer is converted by a rule (:mod:`cnnlab.keras.layers`) and the graph
is replayed by a :class:`~cnnlab.keras.graph.KerasNetwork`. With Keras
installed, a Python builder returning a Keras model is saved to a temporary
``.keras`` file and read the same way (:mod:`cnnlab.keras.live`). What is
converted, and how, is listed in docs/keras.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import TargetError
from cnnlab.keras.archive import KERAS_SUFFIX, KerasFile, Weights, read_keras
from cnnlab.keras.graph import KerasNetwork, build_network, read_graph, torch_shape
from cnnlab.keras.spec import as_spec

__all__ = ["KERAS_SUFFIX", "Converted", "KerasFile", "KerasNetwork", "Weights", "convert", "load_keras",
           "read_keras", "torch_shape"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Converted:
    """A Keras model converted: the network (real weights), one instance's shape in PyTorch's order, notes."""

    network: KerasNetwork
    input_shape: Shape
    keras_input: tuple[int | None, ...] | None
    notes: tuple[str, ...]
    name: str


def _dims(shape: tuple[int | None, ...]) -> str:
    return ", ".join("None" if d is None else str(d) for d in shape)


def convert(keras_file: KerasFile, input_shape: Shape | None = None) -> Converted:
    """Convert a read ``.keras`` file; ``input_shape`` (C, H, W) overrides the model's own input."""
    where = keras_file.path
    net = build_network(keras_file.config, keras_file.weights, where, input_shape)
    keras_input = read_graph(keras_file.config, where).keras_input
    shape = tuple(input_shape) if input_shape is not None else tuple(torch_shape(keras_input or ()))
    notes = []
    if keras_input is not None and len(keras_input) > 1:
        own = tuple(torch_shape(keras_input))
        said = (f"cnnlab's shapes are channels first: {'×'.join(map(str, shape))} (C×H×W)" if own == tuple(shape) else
                f"analysed at --input {'×'.join(map(str, shape))} (C×H×W) instead")
        notes.append(f"Keras input (None, {_dims(keras_input)}) is channels last; {said}")
    total, trainable = net.keras_count()
    stored = keras_file.weights.values()
    if stored != total:
        raise TargetError(f"{where}: the weights file holds {stored:,} values but the converted network has "
                          f"{total:,}; the file's weights do not match its config")
    frozen = total - trainable
    notes.append(f"Keras counts {total:,} parameters (count_params" + (
        f": {trainable:,} trainable + {frozen:,} non-trainable, the moving statistics PyTorch keeps as buffers "
        "included)" if frozen else ", all trainable)"))
    net.keras_spec = as_spec(keras_file.config, shape, where)
    name = Path(where).stem
    return Converted(net, shape, keras_input, tuple(notes), name)


def load_keras(path: str | Path, input_shape: Shape | None = None) -> Converted:
    """Read and convert a ``.keras`` file (no Keras needed)."""
    return convert(read_keras(path), input_shape)
