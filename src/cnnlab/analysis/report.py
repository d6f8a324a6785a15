"""``cnnlab.analyze``: shapes, parameters, MACs and textbook memory of a network."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from cnnlab.analysis.textbook import TextbookMemory, textbook_memory
from cnnlab.analysis.walk import LayerRecord, count_params, walk
from cnnlab.fake import paused_gc
from cnnlab.errors import CnnlabError, ShapeError
from cnnlab.spec import NetworkSpec, SpecNet, build, load_spec, parse_spec

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass
class LayerReport:
    """One row of the report; ``params_formula``/``macs_formula`` exist for spec layers."""

    index: int
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    output_bytes: int
    params_formula: str | None = None
    macs_formula: str | None = None
    textbook_params: int | None = None
    textbook_macs: int | None = None
    detail: str = ""
    module: nn.Module | None = field(default=None, repr=False, compare=False)
    receptive_field: tuple[int, int] | None = None   # input pixels one output unit sees (None: all, or unknown)
    effective_stride: tuple[int, int] | None = None  # input pixels between neighbouring output units
    sees_all: bool = False                           # global pooling / dense: the whole input
    # the spec layer this row is, with its input shape, where one says it (a Keras layer's twin): formulas
    twin: tuple[Any, tuple[int, ...]] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index, "name": self.name, "type": self.type,
            "output_shape": list(self.output_shape), "params": self.params,
            "macs": self.macs, "output_bytes": self.output_bytes,
            "receptive_field": "all" if self.sees_all else (list(self.receptive_field)
                                                            if self.receptive_field else None),
            "effective_stride": list(self.effective_stride) if self.effective_stride else None,
        }
        if self.params_formula is not None:
            d["params_formula"] = self.params_formula
            d["macs_formula"] = self.macs_formula
        return d


@dataclass
class AnalysisReport:
    """Everything ``cnnlab analyze`` reports. MACs are per instance; bytes are exact."""

    name: str
    input_shape: tuple[int, ...]
    batch_size: int
    dtype: torch.dtype
    total_params: int
    trainable_params: int
    total_macs: int
    layers: list[LayerReport]
    memory: TextbookMemory
    spec: NetworkSpec | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)
    # parameters no row counts, as (module or parameter name, count, "module" | "parameter")
    outside_params: list[tuple[str, int, str]] = field(default_factory=list)
    outside_macs: int = 0    # MACs per instance outside every row (the network's own forward, or a row-less module's)
    # a network converted from Keras: Keras's own count (count_params, moving statistics included)
    keras: dict[str, int] | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False)   # what was walked (for drawing)

    @property
    def bytes_per_element(self) -> int:
        return self.memory.bytes_per_element

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` contract (snake_case keys, integer bytes)."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "dtype": dtype_name(self.dtype),
            "bytes_per_element": self.bytes_per_element,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "macs_convention": "multiply-accumulates per instance (FLOPs = 2 x MACs); "
                               "convolutions and matrix products, PyTorch's FlopCounterMode",
            "output_shape": list(self.output_shape),
            "layers": [layer.to_dict() for layer in self.layers],
            "memory": {"textbook": self.memory.to_dict()},
            "notes": list(self.notes),
            "outside_rows": {"params": sum(n for _, n, _ in self.outside_params),
                             "groups": [{"name": name, "kind": kind, "params": n}
                                        for name, n, kind in self.outside_params],
                             "macs": self.outside_macs},
            **({"keras": dict(self.keras)} if self.keras is not None else {}),
        }


def _as_spec(obj: NetworkSpec | str | Path | Mapping[str, Any]) -> NetworkSpec:
    if isinstance(obj, NetworkSpec):
        return obj
    if isinstance(obj, Mapping):
        return parse_spec(obj)
    return load_spec(obj)


def analyze(model_or_spec: nn.Module | NetworkSpec | str | Path | Mapping[str, Any],
            input_shape: Sequence[int] | None = None, batch_size: int = 1,
            dtype: torch.dtype = torch.float32, name: str | None = None) -> AnalysisReport:
    """Shapes, parameters, MACs and textbook memory of a network, without running it.

    ``model_or_spec`` is an ``nn.Module``, a :class:`NetworkSpec`, a spec dict, or
    the path of a YAML/JSON spec. ``input_shape`` is one instance's shape
    (``(C, H, W)``); a spec's own input is used when it is omitted. Memory is
    computed for elements of ``dtype``.
    """
    with paused_gc():
        return _analyze(model_or_spec, input_shape, batch_size, dtype, name)


def _analyze(model_or_spec: nn.Module | NetworkSpec | str | Path | Mapping[str, Any],
             input_shape: Sequence[int] | None, batch_size: int, dtype: torch.dtype,
             name: str | None) -> AnalysisReport:
    if batch_size <= 0:
        raise ShapeError(f"batch size must be a positive integer (got {batch_size})")
    if dtype not in DTYPES.values():
        raise CnnlabError(f"unsupported dtype {dtype}; use one of {', '.join(DTYPES)}")
    spec: NetworkSpec | None = None
    notes: list[str] = []
    if isinstance(model_or_spec, SpecNet):  # a built spec network reports by spec layer
        model_or_spec = model_or_spec.spec
    keras = None
    if callable(getattr(model_or_spec, "keras_count", None)):      # a converted Keras model: Keras's own count
        total, trainable = model_or_spec.keras_count()
        keras = {"count_params": total, "trainable": trainable, "non_trainable": total - trainable}
    if getattr(model_or_spec, "keras_spec", None) is not None:   # a Sequential Keras model: its spec twin
        name = name or model_or_spec.keras_spec.name
        model_or_spec = model_or_spec.keras_spec
    if isinstance(model_or_spec, nn.Module):
        model = model_or_spec
        if input_shape is None:
            raise ShapeError("an nn.Module has no input shape of its own; give input_shape, "
                             "e.g. (3, 224, 224)")
        shape = tuple(int(s) for s in input_shape)
        rows = model.analysis_layers() if callable(getattr(model, "analysis_layers", None)) else None
        records, outside_macs = walk(model, shape, batch_size, layers=rows)
        label = name or type(model).__name__
    else:
        spec = _as_spec(model_or_spec)
        if input_shape is not None and tuple(input_shape) != spec.input_shape:
            original = spec
            spec = spec.with_input(input_shape)
            notes = resized_layer_notes(original, spec)
        shape = spec.input_shape
        model = build(spec, device="meta")
        records, outside_macs = walk(model, shape, batch_size, layers=model.analysis_layers())
        label = name or spec.name

    itemsize = dtype.itemsize
    total, trainable = count_params(model)
    twins = model.layer_twins() if callable(getattr(model, "layer_twins", None)) else {}
    rows = [_row(rec, itemsize, spec, twins.get(id(rec.module))) for rec in records]
    _add_receptive_fields(model, rows)
    memory = textbook_memory([itemsize * math.prod(shape)] + [r.output_bytes for r in rows],
                             total * itemsize, batch_size, itemsize)
    return AnalysisReport(label, shape, batch_size, dtype, total, trainable,
                          sum(r.macs for r in rows) + outside_macs, rows, memory, spec, notes,
                          _outside_params(model, records), outside_macs, keras, model)


def _outside_params(model: nn.Module, records: list[LayerRecord]) -> list[tuple[str, int, str]]:
    """Parameters no row counts, as ``(name, count, kind)``: ``kind`` "module" for the outermost modules
    whose parameters no row counts (layers the forward never calls, e.g. GoogLeNet's auxiliary heads in
    eval mode), "parameter" for the rest (the network's own, e.g. ViT's class token)."""
    counted = {id(p) for rec in records if rec.module is not None for p in rec.module.parameters()}
    outside = {id(p): p for p in model.parameters() if id(p) not in counted}
    if not outside:
        return []
    groups: list[tuple[str, int, str]] = []
    grouped: set[int] = set()
    for name, module in model.named_modules():
        own = {id(p): p for p in module.parameters()}
        if name and own and own.keys() <= outside.keys() and not own.keys() & grouped:
            groups.append((name, sum(p.numel() for p in own.values()), "module"))
            grouped |= own.keys()
    for name, p in model.named_parameters():
        if id(p) in outside and id(p) not in grouped:
            groups.append((name, p.numel(), "parameter"))
            grouped.add(id(p))
    return groups


def resized_layer_notes(before: NetworkSpec, after: NetworkSpec) -> list[str]:
    """A note per layer whose parameter count changes with the new input (a dense layer after a flatten).

    Convolutions keep their weights at any input size; a dense layer fed by a
    flattened map does not, which is why a classifier trained at one size cannot
    simply run at another (and what converting it to a fully convolutional net fixes).
    """
    names = after.layer_names()
    notes = []
    for i, (layer, a, b) in enumerate(zip(after.layers, before.shapes, after.shapes)):
        was, now = layer.params(a), layer.params(b)
        if was != now:
            notes.append(f"layer {i + 1} ({names[i]}, {layer.TYPE}) resized to the new input: {was:,} -> "
                         f"{now:,} parameters; its weights no longer match a network trained on "
                         f"{'×'.join(map(str, before.input_shape))}")
    return notes


def _add_receptive_fields(model: nn.Module, rows: list[LayerReport]) -> None:
    """Each row's receptive field and effective stride (cnnlab.analysis.receptive), where the graph traces."""
    from cnnlab.analysis.receptive import field_of, receptive_fields

    fields = receptive_fields(model)
    if not fields:
        return
    paths = {id(m): name for name, m in model.named_modules()}
    for row in rows:
        path = paths.get(id(row.module)) if row.module is not None else None
        f = field_of(fields, path) if path else None
        if f is not None:
            row.receptive_field, row.effective_stride, row.sees_all = f.size, f.stride, f.size is None


def _row(rec: LayerRecord, itemsize: int, spec: NetworkSpec | None,
         twin: tuple[Any, tuple[int, ...]] | None = None) -> LayerReport:
    row = LayerReport(rec.index, rec.name, rec.type, rec.output_shape, rec.params, rec.macs,
                      rec.output_elements * itemsize, module=rec.module)
    if spec is not None:
        twin = spec.layers[rec.index - 1], spec.shapes[rec.index - 1]
    if twin is not None:
        layer, in_shape = twin
        row.twin = twin
        row.params_formula = layer.params_formula(in_shape)
        row.macs_formula = layer.macs_formula(in_shape)
        row.textbook_params = layer.params(in_shape)
        row.textbook_macs = layer.macs(in_shape)
        row.detail = layer.describe()
    return row
