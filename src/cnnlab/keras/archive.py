"""Read a Keras 3 ``.keras`` file without Keras: its JSON config and its HDF5 weights.

A ``.keras`` file is a zip holding ``config.json`` (the model's serialized
architecture), ``metadata.json`` (the Keras version) and ``model.weights.h5``
(every layer's variables). Keras writes the variables of layer ``L`` of a
model under ``layers/<snake_case class name>[_k]/vars/<i>`` with the layer's
own name as the ``name`` attribute of ``vars``; a nested model keeps its own
``layers/`` below its group. We index the variables by that name, model by
model, so a layer is found by the name its config gives it.

Nothing in the file is executed: the config is JSON, the weights are arrays.
A zip member or an HDF5 object that could make us read elsewhere (an
HDF5 external link or external raw storage, a virtual dataset) is refused, as
are members larger than their limits (a zip bomb stops at the limit).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import TargetError

KERAS_SUFFIX = ".keras"
MAX_CONFIG_BYTES = 64 * 2**20          # EfficientNetB7's config.json is about 1 MB
MAX_CONFIG_VALUES = 5_000_000
MAX_CONFIG_DEPTH = 200                 # nested models nest their configs


@dataclass
class Weights:
    """One model's variables: ``layers[name]`` in Keras's order, ``models[name]`` for a nested model."""

    layers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    models: dict[str, "Weights"] = field(default_factory=dict)

    def of(self, name: str) -> list[np.ndarray]:
        return self.layers.get(name, [])

    def model(self, name: str) -> "Weights":
        return self.models.get(name, Weights())

    def values(self) -> int:
        """Every variable's elements, nested models included (Keras's ``count_params``)."""
        own = sum(int(a.size) for arrays in self.layers.values() for a in arrays)
        return own + sum(m.values() for m in self.models.values())


@dataclass(frozen=True)
class KerasFile:
    """A ``.keras`` file read: the model's config (a dict, as in ``config.json``) and its weights."""

    path: str
    config: dict[str, Any]
    weights: Weights
    keras_version: str | None


def read_keras(path: str | Path) -> KerasFile:
    """Read ``path`` (a ``.keras`` zip); every problem is one :class:`TargetError` line naming the file."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise TargetError(f"{where}: " + ("not a regular file; give a .keras file" if path.exists()
                                          else "no such file; check the path"))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        hint = ("an HDF5 file: Keras 2's whole-model .h5 format; open it in Keras and save it again with "
                "model.save('model.keras')" if _is_hdf5(path) else "save the model with model.save('model.keras')")
        raise TargetError(f"{where}: not a Keras 3 .keras file (not a zip: {err}); {hint}") from None
    with archive:
        names = set(archive.namelist())
        if "config.json" not in names:
            raise TargetError(f"{where}: no config.json inside; not a model saved by Keras 3's model.save()")
        config = _read_json(archive, "config.json", where)
        meta = _read_json(archive, "metadata.json", where) if "metadata.json" in names else {}
        if "model.weights.h5" in names:
            weights = _read_weights(archive, where)
        elif "model.weights.json" in names:
            raise TargetError(f"{where}: the weights are sharded (model.weights.json); save the model in one file "
                              "with model.save('model.keras') (no max_shard_size)")
        elif "model.weights.npz" in names:
            raise TargetError(f"{where}: the weights are in NumPy .npz form; save them as HDF5, Keras's default "
                              "(model.save('model.keras'))")
        else:
            weights = Weights()
    if not isinstance(config, dict) or "class_name" not in config:
        raise TargetError(f"{where}: config.json is not a serialized Keras model (no 'class_name')")
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return KerasFile(where, config, weights, version if isinstance(version, str) else None)


def _is_hdf5(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _member(archive: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    """A member's bytes, refusing it past ``limit`` (read stops at the limit whatever the header claims)."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise TargetError(f"{where}: {name} is {info.file_size:,} bytes, more than cnnlab reads "
                          f"({limit:,}); is this a Keras model?")
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as err:
        raise TargetError(f"{where}: cannot read {name} from the zip ({err}); save the model again") from None
    if len(data) > limit:
        raise TargetError(f"{where}: {name} unpacks to more than {limit:,} bytes; is this a Keras model?")
    return data


def _read_json(archive: zipfile.ZipFile, name: str, where: str) -> Any:
    data = _member(archive, name, MAX_CONFIG_BYTES, where)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise TargetError(f"{where}: {name} is not valid JSON ({str(err)[:120]}); save the model again") from None
    _check_size(value, f"{where}: {name}")
    return value


def _check_size(value: Any, where: str) -> None:
    stack, seen = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_VALUES or depth > MAX_CONFIG_DEPTH:
            raise TargetError(f"{where}: more than {MAX_CONFIG_VALUES:,} values or {MAX_CONFIG_DEPTH} levels; "
                              "not a model config cnnlab reads")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _read_weights(archive: zipfile.ZipFile, where: str) -> Weights:
    import h5py

    from cnnlab.machine import available_ram

    info = archive.getinfo("model.weights.h5")
    room = available_ram()
    limit = max(info.file_size, 1) if room is None else min(info.file_size, room // 2)
    if room is not None and info.file_size > room // 2:
        raise TargetError(f"{where}: its weights are {info.file_size:,} bytes, more than half the free RAM "
                          f"({room:,} bytes); free memory first")
    data = _member(archive, "model.weights.h5", limit, where)
    # what the arrays unpack to is bounded too: a chunked dataset never written, or gzip-compressed, can claim
    # terabytes in a few bytes of file
    budget = [max(4 * len(data), 1 << 20) if room is None else min(max(4 * len(data), 1 << 20), room // 2)]
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            return _model_weights(h5, where, set(), budget)
    except TargetError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, RecursionError, MemoryError) as err:
        raise TargetError(f"{where}: model.weights.h5 is not a Keras weights file ({str(err)[:120]}); "
                          "save the model again") from None


def _model_weights(group: Any, where: str, seen: set[int], budget: list[int]) -> Weights:
    """``group`` holds one model: its ``layers/*`` groups, each with ``vars`` and perhaps nested ``layers``.
    ``seen`` holds the addresses of the objects read (a hard link back, or to one dataset twice, is refused);
    ``budget`` the bytes the arrays may still unpack to."""
    out = Weights()
    layers = _child(group, "layers", where, seen)
    if layers is None:
        return out
    for key in layers:
        layer = _child(layers, key, where, seen)
        if layer is None:
            continue
        variables = _child(layer, "vars", where, seen)
        name = str(variables.attrs.get("name", key)) if variables is not None else key
        if variables is not None:
            arrays = [_array(variables, str(i), where, seen, budget) for i in range(len(variables))]
            if arrays:
                out.layers[name] = arrays
        if "layers" in layer:
            out.models[name] = _model_weights(layer, where, seen, budget)
    return out


def _child(group: Any, key: str, where: str, seen: set[int]) -> Any:
    """``group[key]``, refusing links that could lead out of the file, or back to an object already read."""
    import h5py

    if key not in group:
        return None
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise TargetError(f"{where}: model.weights.h5 links '{key}' elsewhere ({type(link).__name__}); "
                          "cnnlab reads only the weights stored in the file")
    obj = group[key]
    address = h5py.h5o.get_info(obj.id).addr
    if address in seen:
        raise TargetError(f"{where}: model.weights.h5 reaches {obj.name} twice (a hard link); not a file Keras "
                          "writes: save the model again")
    seen.add(address)
    return obj


def _array(variables: Any, key: str, where: str, seen: set[int], budget: list[int]) -> np.ndarray:
    import h5py

    obj = _child(variables, key, where, seen)
    if not isinstance(obj, h5py.Dataset):
        raise TargetError(f"{where}: model.weights.h5 has no variable {variables.name}/{key}; save the model again")
    if obj.external or obj.is_virtual:
        raise TargetError(f"{where}: variable {obj.name} is stored outside the file; cnnlab reads only the "
                          "weights stored in the file")
    if obj.dtype.kind not in "fiub":
        raise TargetError(f"{where}: variable {obj.name} holds {obj.dtype}, not numbers")
    size = int(obj.size) * obj.dtype.itemsize
    budget[0] -= size
    if budget[0] < 0:
        raise TargetError(f"{where}: variable {obj.name} unpacks to {size:,} bytes, past what the file's size "
                          "allows (4×) or half the free RAM; not a file Keras writes")
    return np.asarray(obj[()])


def weight_shapes(weights: Weights) -> dict[str, Any]:
    """The shapes of every variable, nested as :class:`Weights` is: what a run keeps to rebuild the network
    (its values come from the run's checkpoint)."""
    return {"layers": {name: [list(a.shape) for a in arrays] for name, arrays in weights.layers.items()},
            "models": {name: weight_shapes(w) for name, w in weights.models.items()}}


def zero_weights(shapes: dict[str, Any]) -> Weights:
    """:class:`Weights` of zeros with the shapes :func:`weight_shapes` recorded."""
    return Weights({name: [np.zeros(s, dtype=np.float32) for s in arrays] for name, arrays in shapes["layers"].items()},
                   {name: zero_weights(w) for name, w in shapes["models"].items()})
