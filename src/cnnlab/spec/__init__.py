"""Declarative network specs (YAML/JSON) -> validated dataclasses -> ``nn.Module``."""

from cnnlab.spec.build import SpecNet, build
from cnnlab.spec.layers import LAYER_TYPES, LayerSpec
from cnnlab.spec.network import NetworkSpec, load_spec, parse_layer, parse_spec

__all__ = ["LAYER_TYPES", "LayerSpec", "NetworkSpec", "SpecNet", "build", "load_spec",
           "parse_layer", "parse_spec"]
