"""What ``cnnlab explore`` serves: the named target and run, and the computations over them (no web code here)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError

DEFAULT_TARGET = "small_cnn"       # cnnlab's own Fashion-MNIST-sized CNN, shipped in the package
TIMELINE_POINTS = 400              # the memory curve is thinned to at most this many points (max per bucket)
PLAYGROUND_OPS = ("conv1d", "conv2d", "maxpool", "avgpool", "global-avgpool", "global-maxpool", "lrn")
MAX_PLAYGROUND_WORK = 2_000_000    # inputs × window: a page answer within a second or two
MAX_TRACE_TERMS = 200_000          # products shown in the working (trace elements × window)


class UnknownItem(CnnlabError):
    """What a request names does not exist (a layer, a test image, a model, the run): the page answers 404."""


class BadValue(CnnlabError):
    """A request's value is out of range or of the wrong kind: the page answers 422."""


def parse_input(text: str) -> tuple[int, ...] | None:
    """``C,H,W`` (or empty: the target's own input)."""
    if not text:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 or v > 8192 for v in shape):
        raise BadValue(f"input '{text[:40]}' must be C,H,W with sizes 1..8192")
    return shape


class Explorer:
    """The target and run named on the command line, resolved once; analyses cached per (model, input)."""

    def __init__(self, target: str | None, run: Path | None, input_shape: tuple[int, ...] | None = None) -> None:
        from cnnlab.targets import resolve_target

        self.run = run
        self.run_doc: dict[str, Any] | None = None
        self.target = None
        if run is not None:
            from cnnlab.train.runs import open_run

            opened = open_run(run, weights=False)
            self.run_doc = opened.doc
            if opened.task_name == "instance":
                raise CnnlabError(f"{run}: an instance-segmentation run; explore shows classification and semantic "
                                  f"runs for now: use 'cnnlab segment eval {run}' and 'cnnlab segment predict'")
            if target is None:                   # the network the run trained, with its options and classes
                self.target = opened.target()
        self.target_name = self.target.name if self.target is not None else (target or DEFAULT_TARGET)
        if self.target is None:
            self.target = resolve_target(self.target_name, input_shape or (
                tuple(self.run_doc["data"]["shape"]) if self.run_doc else None))
        elif input_shape is not None:
            self.target = type(self.target)(self.target.network, input_shape, self.target.name)
        if self.target.input_shape is None:
            raise CnnlabError(f"{self.target_name}: a module target needs --input C,H,W")
        self._reports: dict[tuple[str, tuple[int, ...] | None], Any] = {}
        self.network("", "")                      # analyse now: a bad target fails before the server starts
        self._run_cache: dict[str, Any] = {}

    # -- network --------------------------------------------------------------------------------------------

    def _target(self, model: str, input_text: str) -> Any:
        from cnnlab.models import get_entry
        from cnnlab.targets import zoo_target

        shape = parse_input(input_text)
        if not model or model == self.target_name:
            if shape is None:
                return self.target
            net = self.target.network
            return type(self.target)(net.with_input(shape) if hasattr(net, "with_input") else net, shape,
                                     self.target.name, self.target.notes)
        try:
            entry = get_entry(model)           # only the zoo: the browser never names code or files
        except CnnlabError:
            raise UnknownItem(f"model '{model[:60]}' is neither the target named on the command line nor a zoo "
                              "name") from None
        return zoo_target(entry.name, shape)

    def network(self, model: str, input_text: str) -> Any:
        """The ``cnnlab analyze`` report (cached)."""
        from cnnlab.targets import analyze_target

        key = (model or self.target_name, parse_input(input_text))
        if key not in self._reports:
            self._reports[key] = analyze_target(self._target(model, input_text))
            if len(self._reports) > 32:
                self._reports.pop(next(iter(self._reports)))
        return self._reports[key]

    def drawing(self, model: str, input_text: str) -> dict[str, Any]:
        """The network drawn (the SVG ``cnnlab analyze --plot`` writes) and what it shows."""
        from cnnlab.analysis.drawing import draw_svg, layer_graph

        report = self.network(model, input_text)
        graph = layer_graph(report)
        joins = sum(1 for n in graph.nodes.values() if n.join)
        caption = (f"{len(report.layers)} layers in call order (the graph could not be traced)" if not graph.traced
                   else f"{len(report.layers)} layers in a chain: blocks of C×H×W (log-scaled)" if graph.chain
                   else f"{len(report.layers)} layers and {joins} joins, {len(graph.edges)} edges: a graph "
                        "(skip connections dashed red)")
        return {"svg": draw_svg(report, graph), "chain": graph.chain, "caption": caption,
                "layers": len(report.layers), "joins": joins, "edges": [list(e) for e in graph.edges]}

    def layer(self, model: str, input_text: str, index: int) -> dict[str, Any]:
        from cnnlab.analysis.explain import explain_layer

        report = self.network(model, input_text)
        try:
            text = explain_layer(report, index)
        except IndexError as err:
            raise UnknownItem(str(err)) from None
        return {**report.layers[index - 1].to_dict(), "explain": text}

    def info(self) -> dict[str, Any]:
        from cnnlab.models import analyzable_names
        from cnnlab.vocab import OPTIMIZERS, PRECISIONS

        return {"target": self.target_name, "optimizers": list(OPTIMIZERS), "precisions": list(PRECISIONS), "input_shape": list(self.target.input_shape),
                "run": str(self.run) if self.run else None,
                "task": self.run_doc["config"].get("task", "classification") if self.run_doc else None,
                "zoo": analyzable_names()}

    # -- memory ---------------------------------------------------------------------------------------------

    def _net(self, model: str, input_text: str) -> tuple[Any, tuple[int, ...], str]:
        from cnnlab.spec import NetworkSpec, build

        t = self._target(model, input_text)
        net = build(t.network, device="meta") if isinstance(t.network, NetworkSpec) else t.network
        return net, t.input_shape, t.name

    def memory(self, model: str, input_text: str, batch: int, optimizer: str, precision: str) -> dict[str, Any]:
        from cnnlab.memory.estimate import estimate_memory
        from cnnlab.train.config import TrainConfig

        _check_choices(optimizer, precision)
        net, shape, name = self._net(model, input_text)
        est = estimate_memory(net, shape, batch, optimizer, precision, name=name,
                              weight_decay=TrainConfig.weight_decay)     # the CLI's default: the one train uses
        doc = est.to_dict()
        doc["training"]["timeline"] = thin(est.training.timeline, TIMELINE_POINTS)
        return doc

    def fit(self, model: str, input_text: str, budget: str, batch: int, optimizer: str, precision: str
            ) -> dict[str, Any]:
        from cnnlab.memory.fit import fit_target
        from cnnlab.train.config import TrainConfig
        from cnnlab.units import parse_bytes

        _check_choices(optimizer, precision)
        try:
            limit = parse_bytes(budget)
        except ValueError as err:
            raise BadValue(f"budget: {err}") from None
        return fit_target(self._target(model, input_text), limit, batch, optimizer, precision,
                          weight_decay=TrainConfig.weight_decay).to_dict()

    # -- ops ------------------------------------------------------------------------------------------------

    def ops(self, body: Any) -> dict[str, Any]:
        """``cnnlab ops OP --explain --json`` for the body's fields (numbers as text, as the command line takes
        them; never a file: the page reads nothing of the disk)."""
        from cnnlab.ops.compute import compute, parse_padding, parse_sizes
        from cnnlab.ops.parse import parse_array

        if not isinstance(body, dict):
            raise CnnlabError('the body must be a JSON object: {"op": "conv1d", "input": "1,2,3", "kernel": "1,0,-1"}')
        op = body.get("op")
        if op not in PLAYGROUND_OPS:
            raise CnnlabError(f"op must be one of {', '.join(PLAYGROUND_OPS)}")
        text = {k: body.get(k) for k in ("input", "kernel", "stride", "padding", "dilation", "size")}
        for key, value in text.items():
            if value is not None and not isinstance(value, (str, int)):
                raise CnnlabError(f"{key}: give numbers as text, as on the command line (e.g. \"1,2,3\")")
        if not text["input"]:
            raise CnnlabError("input: required (e.g. \"1,2,3,4\" or \"[[1,2],[3,4]]\")")

        def sizes(key: str) -> Any:
            return parse_sizes(str(text[key])) if text[key] not in (None, "") else None

        flip = body.get("flip", False)
        if not isinstance(flip, bool):
            raise BadValue("flip: true or false")
        x = parse_array(str(text["input"]), "input")
        k = parse_array(str(text["kernel"]), "kernel") if text["kernel"] is not None else None
        window = k.size if k is not None else math.prod(_as_tuple(sizes("size") or 1))
        if x.size * window > MAX_PLAYGROUND_WORK:      # a bound on the work (and on the trace below)
            raise BadValue(f"{x.size:,} inputs × a window of {window:,} is more than the page computes "
                       f"({MAX_PLAYGROUND_WORK:,} products); use 'cnnlab ops {op}' on the command line")
        if op == "lrn":          # across channels: PyTorch's size (its other constants: AlexNet's)
            size = sizes("size")
            if size is not None and not isinstance(size, int):
                raise BadValue("size: one integer for lrn (the number of channels summed over)")
            return compute(op, x, size=size, trace_limit=max(1, min(4096, MAX_TRACE_TERMS // max(window, 1)))
                           ).to_dict(explain=True)
        result = compute(op, x, kernel=k, stride=sizes("stride"),
                         padding=parse_padding(str(text["padding"] or "valid")), dilation=sizes("dilation") or 1, flip=flip, size=sizes("size"),
                         trace_limit=max(1, min(4096, MAX_TRACE_TERMS // max(window, 1))))
        return result.to_dict(explain=True)

    # -- run ------------------------------------------------------------------------------------------------

    def _need_run(self) -> dict[str, Any]:
        if self.run_doc is None:
            raise UnknownItem("no run folder was named: start 'cnnlab explore RUN' to see a run")
        return self.run_doc

    def run_document(self) -> dict[str, Any]:
        doc = self._need_run()
        assert self.run is not None
        out: dict[str, Any] = {"folder": str(self.run), "config": doc["config"], "model": _public(doc["model"]),
                               "data": doc["data"], "params": doc.get("params"), "metrics": [], "test": None}
        if (self.run / "metrics.csv").exists() or (self.run / "metrics.csv").is_symlink():
            out["metrics"] = read_metrics(self.run / "metrics.csv")
        if (self.run / "test.json").exists() or (self.run / "test.json").is_symlink():
            from cnnlab.train.runs import read_test_report

            out["test"] = read_test_report(self.run, doc)
        return out

    def _loaded(self) -> dict[str, Any]:
        """The run's model (best weights) and test split, loaded on first use."""
        if not self._run_cache:
            self._need_run()
            self._run_cache.update(load_run_for_page(self.run))   # type: ignore[arg-type]
        return self._run_cache

    def _test_index(self, index: int) -> int:
        n = len(self._loaded()["images"])
        if not 0 <= index < n:
            raise UnknownItem(f"test image {index} does not exist; the run's test split has images 0..{n - 1}")
        return index

    def run_image_png(self, index: int) -> bytes:
        from PIL import Image

        img = self._loaded()["images"][self._test_index(index)]
        a = img.permute(1, 2, 0).numpy()
        buf = io.BytesIO()
        Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
        return buf.getvalue()

    def run_predict(self, index: int) -> dict[str, Any]:
        from cnnlab.web.features import predict_with_features

        r = self._loaded()
        i = self._test_index(index)
        return predict_with_features(r, i)


def _public(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in ("spec_text", "keras_text")}


def _as_tuple(v: Any) -> tuple[int, ...]:
    return v if isinstance(v, tuple) else (v,)


MAX_METRICS_BYTES = 4 << 20        # a run's metrics.csv: one short line per epoch


def read_metrics(path: Path) -> list[dict[str, float]]:
    """A run's ``metrics.csv`` (a regular file of the run, never through a link), every value a number."""
    from cnnlab.files import read_run_file

    try:
        text = read_run_file(path, MAX_METRICS_BYTES).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        return [{str(k)[:40]: float(v) for k, v in row.items() if k is not None and v not in (None, "")}
                for row in rows]
    except (UnicodeDecodeError, csv.Error, ValueError, TypeError) as err:
        raise CnnlabError(f"{path}: not the metrics cnnlab writes ({type(err).__name__}); the run folder is "
                          "damaged") from None


def _check_choices(optimizer: str, precision: str) -> None:
    from cnnlab.vocab import OPTIMIZERS, PRECISIONS

    if optimizer not in OPTIMIZERS:
        raise BadValue(f"optimizer '{optimizer[:30]}' is not one of {', '.join(OPTIMIZERS)}")
    if precision not in PRECISIONS:
        raise BadValue(f"precision '{precision[:30]}' is not one of {', '.join(PRECISIONS)}")


def thin(values: list[int], points: int) -> list[int]:
    """At most ``points`` values: the maximum of each of ``points`` equal buckets (the peak survives)."""
    if len(values) <= points:
        return list(values)
    step = len(values) / points
    return [max(values[int(k * step):max(int((k + 1) * step), int(k * step) + 1)]) for k in range(points)]


def load_run_for_page(run: Path) -> dict[str, Any]:
    """Model, mean/std and the test images (and labels or masks) of a classification or semantic run."""
    from cnnlab.train.runs import open_run

    opened = open_run(run)
    if opened.task_name not in ("classification", "semantic"):
        raise CnnlabError(f"{run}: explore shows classification and semantic runs; this is a {opened.task_name} run "
                          "(use 'cnnlab segment eval/predict')")
    test = opened.load_data().test
    images, truth = test.images, test.labels if opened.task_name == "classification" else test.masks
    if getattr(test, "sizes", None) is not None:      # images of different sizes: each shown at its own size
        pairs = [test.pair(i) for i in range(len(test))]
        images, truth = [x for x, _ in pairs], [m for _, m in pairs]
    return {"task": opened.task_name, "model": opened.model, "mean": opened.mean, "std": opened.std,
            "images": images, "truth": truth, "classes": opened.classes}


__all__ = ["BadValue", "Explorer", "UnknownItem", "load_run_for_page", "parse_input", "thin"]
