"""docs/spec.md stays true: every layer type and field is documented."""

from __future__ import annotations

from pathlib import Path

from cnnlab.layers.activations import ACTIVATION_NAMES
from cnnlab.spec import LAYER_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text(encoding="utf-8")


def test_every_layer_type_and_field_documented():
    for kind, cls in LAYER_TYPES.items():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{kind}` |")), None)
        assert row is not None, f"docs/spec.md has no row for {kind}"
        for field in cls.field_names():
            if field != "name":
                assert f"`{field}`" in row, f"docs/spec.md: {kind} row lacks field {field}"


def test_every_activation_documented():
    for name in ACTIVATION_NAMES:
        assert f"`{name}`" in DOC
