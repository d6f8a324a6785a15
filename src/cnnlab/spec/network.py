"""Network specs: parse YAML/JSON into validated, typed objects.

A spec is a sequential network::

    name: geron_ex2            # optional
    input: [3, 200, 300]       # [C, H, W] (or [N] for a vector input)
    layers:
      - conv: {filters: 100, kernel: 3, stride: 2, padding: same, activation: relu}
      - flatten                # a bare name for a layer without fields
      - dropout: 0.5           # a scalar fills the layer's main field
      - dense: {units: 10, activation: softmax}

Validation walks the shapes through every layer, so an impossible network
(a kernel larger than its input, groups that do not divide the channels, a
dense layer on a feature map) is reported at load time, naming the layer and
field, before anything is built.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from cnnlab.errors import SpecError
from cnnlab.shapes import channels_last_hint
from cnnlab.spec.keras_names import FIELDS, INPUT_FIELDS, channels_last, keras_type, translate
from cnnlab.spec.layers import LAYER_TYPES, LayerProblem, LayerSpec, Shape

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
TOP_LEVEL_FIELDS = ("name", "input", "layers", "input_shape", "data_format")   # the last two: Keras's words


@dataclass(frozen=True)
class NetworkSpec:
    """A validated sequential network.

    ``shapes[i]`` is the per-instance shape entering layer ``i`` (1-based layer
    ``i+1``), and ``shapes[-1]`` the network's output shape. They are derived,
    never passed in: every new spec (``dataclasses.replace`` included) walks
    its layers again, so shapes cannot go stale.
    """

    input_shape: Shape
    layers: tuple[LayerSpec, ...]
    name: str = "network"
    source: str | None = None
    shapes: tuple[Shape, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", _propagate(self.input_shape, self.layers, self.source))

    @property
    def output_shape(self) -> Shape:
        return self.shapes[-1]

    def with_input(self, input_shape: Iterable[int]) -> "NetworkSpec":
        """The same layers on another input (re-validated)."""
        return replace(self, input_shape=_input_shape(list(input_shape), self.source))

    def layer_names(self) -> list[str]:
        """Display names: the spec's ``name`` or ``<type>_<k>`` (k counts that type)."""
        seen: dict[str, int] = {}
        names = []
        for layer in self.layers:
            seen[layer.TYPE] = seen.get(layer.TYPE, 0) + 1
            names.append(layer.name or f"{layer.TYPE}_{seen[layer.TYPE]}")
        return names

    def total_params(self) -> int:
        return sum(layer.params(s) for layer, s in zip(self.layers, self.shapes))


def _propagate(input_shape: Shape, layers: tuple[LayerSpec, ...], source: str | None) -> tuple[Shape, ...]:
    shapes = [input_shape]
    for index, layer in enumerate(layers, start=1):
        try:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        except LayerProblem as problem:
            raise SpecError(f"{problem} (input to this layer: {list(shapes[-1])})", source=source,
                            layer=index, layer_type=layer.TYPE, field=problem.field) from None
    return tuple(shapes)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _input_shape(value: Any, source: str | None) -> Shape:
    ok = (isinstance(value, (list, tuple)) and len(value) in (1, 3)
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
    if not ok:
        raise SpecError(f"must be [C, H, W] (or [N] for vectors) with positive integers (got {value!r})",
                        source=source, field="input")
    shape = tuple(int(v) for v in value)
    hint = channels_last_hint(shape)
    if hint:
        raise SpecError(f"{list(shape)} looks like Keras' [height, width, channels] order; cnnlab reads "
                        f"[channels, height, width] (as PyTorch does): write 'input: [{hint.replace(',', ', ')}]'",
                        source=source, field="input")
    return shape


def parse_layer(entry: Any, index: int, source: str | None = None) -> LayerSpec:
    """One entry of ``layers:`` (a bare name or a one-key mapping) to a typed layer."""
    if isinstance(entry, str):
        kind, body = entry, None
    elif isinstance(entry, Mapping) and "type" in entry:     # '- {type: Conv2D, filters: 32, kernel_size: 3}'
        kind, body = entry["type"], {k: v for k, v in entry.items() if k != "type"}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        kind, body = next(iter(entry.items()))
    else:
        raise SpecError(
            "must be a layer name or a mapping with exactly one key, the layer type "
            f"(e.g. '- conv: {{filters: 32, kernel: 3}}' or '- Conv2D: {{filters: 32, kernel_size: 3}}'); "
            f"got {entry!r}", source=source, layer=index)
    cls = LAYER_TYPES.get(str(kind))
    keras_spelled = cls is None and keras_type(str(kind)) is not None
    if keras_spelled:
        cls = LAYER_TYPES[keras_type(str(kind))]  # type: ignore[index]
    if cls is None:
        raise SpecError(f"unknown layer type '{kind}'{_suggest(str(kind), LAYER_TYPES)} "
                        f"(known: {', '.join(LAYER_TYPES)}, or Keras's names: Conv2D, MaxPool2D, Dense …)",
                        source=source, layer=index)

    def fail(msg: str, field: str | None = None) -> SpecError:
        return SpecError(msg, source=source, layer=index, layer_type=cls.TYPE, field=field)

    if body is None:
        body = {}
    elif not isinstance(body, Mapping):
        if cls.SHORTHAND is None:
            raise fail(f"takes a mapping of fields ({', '.join(cls.field_names())}), got {body!r}")
        body = {cls.SHORTHAND: body}
    try:
        body = translate(cls.TYPE, dict(body), keras_spelled)
    except ValueError as err:
        raise SpecError(str(err), source=source, layer=index, layer_type=cls.TYPE) from None

    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in body.items():
        f = known.get(str(key))
        if f is None:
            keras_words = [k for k, v in FIELDS.items() if v in known]      # a typo of Keras's spelling too
            raise fail(f"unknown field '{key}'{_suggest(str(key), [*known, *keras_words])} "
                       f"(fields of {cls.TYPE}: {', '.join(known)}; or Keras's {', '.join(keras_words) or 'names'})")
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as err:
            raise fail(str(err), f.name) from None
    for f in fields(cls):
        if f.default is MISSING and f.name not in values:
            raise fail(f"missing required field; add '{f.name}: ...' ({f.metadata.get('doc') or f.name})",
                       f.name)
    return cls(**values)


MAX_SPEC_VALUES = 200_000      # values in a spec after YAML aliases are expanded (a 1,000-layer net has ~10,000)
MAX_SPEC_DEPTH = 50


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's C parser when present) that refuses a key given twice in one mapping
    (YAML would keep the last silently: ``filters: 32`` then ``filters: 64`` is a typo, not a choice)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # '<<: *defaults': merged by PyYAML, overridable
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key '{key}' is given twice in one mapping; "
                                                        "keep one", key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if twice is not None:
        raise json.JSONDecodeError(f"the key '{twice}' is given twice in one object; keep one", "", 0)
    return dict(pairs)


def read_yaml(text: str) -> Any:
    """YAML text as Python objects: safe loading (no arbitrary objects), by libyaml's C parser when PyYAML has it
    (about 10× faster than the pure-Python one on a 1 MB spec); a key given twice is an error."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader


def check_size(data: Any, source: str | None = None) -> None:
    """Refuse a structure of more than :data:`MAX_SPEC_VALUES` values or :data:`MAX_SPEC_DEPTH` levels.

    Counted with shared references counted again, as validation would see them: a 700-byte YAML
    "billion laughs" (aliases of aliases) is refused in microseconds instead of expanding forever.
    """
    stack, seen = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES:
            raise SpecError(f"the spec expands to more than {MAX_SPEC_VALUES:,} values (YAML aliases of aliases?); "
                            "write the layers out, or split the network", source=source)
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(f"the spec nests deeper than {MAX_SPEC_DEPTH} levels; a spec is a mapping of "
                            "fields and a list of layers", source=source)
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth + 1) for k in value.keys())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)


def _keras_input(data: Mapping[str, Any], layers: list[Any], source: str | None) -> tuple[list[Any], Any]:
    """The layers and the input shape as cnnlab reads it ([C, H, W]), from ``input:``, Keras's top-level
    ``input_shape:`` (channels last unless ``data_format: channels_first``), a first layer's ``input_shape``
    (Keras 2's ``Conv2D(..., input_shape=[28, 28, 1])``) or a first ``Input``/``InputLayer`` with ``shape``."""
    fmt = data.get("data_format", "channels_last")
    if fmt not in ("channels_last", "channels_first"):
        raise SpecError(f"must be channels_last or channels_first (got {fmt!r})", source=source, field="data_format")
    convert = (lambda s: s) if fmt == "channels_first" else channels_last
    if "input" in data and "input_shape" in data:
        raise SpecError("give 'input: [C, H, W]' or Keras's 'input_shape: [H, W, C]', not both", source=source)
    if "input" in data:
        return layers, data["input"]
    if "input_shape" in data:
        shape = data["input_shape"]
        if (fmt == "channels_last" and isinstance(shape, list) and len(shape) == 3
                and all(isinstance(v, int) for v in shape) and shape[0] in (1, 3, 4) and shape[2] > 4):
            raise SpecError(f"{shape} looks channels first, but Keras's input_shape is [height, width, channels]: "
                            f"write [{shape[1]}, {shape[2]}, {shape[0]}], or add 'data_format: channels_first'",
                            source=source, field="input_shape")
        return layers, convert(shape)
    first = layers[0]
    if isinstance(first, Mapping) and len(first) == 1 and str(next(iter(first))).lower() in ("input", "inputlayer"):
        body = next(iter(first.values()))
        shape = body.get("shape") if isinstance(body, Mapping) else body
        return layers[1:], convert(shape)
    body = next(iter(first.values())) if isinstance(first, Mapping) and len(first) == 1 else first
    if isinstance(body, Mapping):
        for key in INPUT_FIELDS:
            if key in body:
                shape = body[key]
                if key == "batch_input_shape":
                    if not isinstance(shape, list) or not shape:
                        raise SpecError(f"must be [None, H, W, C] (got {shape!r:.60})", source=source, layer=1,
                                        field=key)
                    shape = shape[1:]
                return layers, convert(shape)
    return layers, None


def parse_spec(data: Any, source: str | None = None, default_input: Iterable[int] | None = None) -> NetworkSpec:
    """Validate a spec already read into Python objects (a dict); ``default_input`` (C, H, W) is used when the
    spec gives no input shape of its own."""
    check_size(data, source)
    if not isinstance(data, Mapping):
        raise SpecError("a spec must be a mapping with 'input' and 'layers' "
                        f"(got {type(data).__name__})", source=source)
    for key in data:
        if key not in TOP_LEVEL_FIELDS and not str(key).startswith("x-"):   # x-…: anchors for '<<: *name'
            raise SpecError(f"unknown top-level field '{key}'{_suggest(str(key), TOP_LEVEL_FIELDS)} "
                            f"(allowed: {', '.join(TOP_LEVEL_FIELDS)}, and x-… keys for YAML anchors)",
                            source=source)
    layers_raw = data.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise SpecError("'layers' must be a non-empty list of layers", source=source, field="layers")
    layers_raw, given = _keras_input(data, layers_raw, source)
    if given is None and default_input is None:
        raise SpecError("missing 'input: [C, H, W]' (the shape of one instance; or Keras's 'input_shape: "
                        "[H, W, C]'), or give --input C,H,W", source=source)
    input_shape = _input_shape(given if given is not None else list(default_input), source)  # type: ignore[arg-type]
    layers = tuple(parse_layer(entry, i, source) for i, entry in enumerate(layers_raw, start=1))
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise SpecError(f"must be a string (got {name!r})", source=source, field="name")
    default_name = Path(source).stem if source else "network"
    return NetworkSpec(input_shape=input_shape, layers=layers, name=name or default_name, source=source)


def load_spec(path: str | Path, default_input: Iterable[int] | None = None) -> NetworkSpec:
    """Read and validate a YAML or JSON spec file (``default_input``: the shape when it gives none); a packaged
    spec's name (``small_cnn``, ``geron_ex2``: :mod:`cnnlab.packaged`) reads the file that ships with cnnlab."""
    from cnnlab.packaged import packaged_path

    path = packaged_path(path)
    source = str(path)
    if not path.is_file():
        raise SpecError("not a regular file (a FIFO, device or folder); give a spec file" if path.exists()
                        else "no such file; check the path", source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read the file ({err})", source=source) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        except RecursionError:
            raise SpecError(f"nests deeper than {MAX_SPEC_DEPTH} levels; a spec is a mapping of fields and a list "
                            "of layers", source=source) from None
        except json.JSONDecodeError as err:
            raise SpecError(f"line {err.lineno}, column {err.colno}: invalid JSON: {err.msg}",
                            source=source) from None
        except ValueError as err:        # an integer of more than 4,300 digits
            raise SpecError(f"invalid JSON: {str(err).split(';')[0][:120]}", source=source) from None
    else:
        try:
            data = read_yaml(text)
        except RecursionError:
            raise SpecError(f"nests deeper than {MAX_SPEC_DEPTH} levels; a spec is a mapping of fields and a list "
                            "of layers", source=source) from None
        except ValueError as err:        # an integer of more than 4,300 digits
            raise SpecError(f"invalid YAML: {str(err).split(';')[0][:120]}", source=source) from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            hint = "" if "given twice" in str(problem) else "; check the indentation and brackets"
            raise SpecError(f"{where}invalid YAML: {problem}{hint}", source=source) from None
    return parse_spec(data, source, default_input)
