"""Errors for user mistakes.

Everything a user can get wrong (a malformed spec, a bad shape, a missing file)
raises a :class:`CnnlabError` subclass whose message names the place (file,
layer index, field) and says what would fix it. The CLI prints the message on
one line and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class of every error caused by user input."""


class SpecError(CnnlabError):
    """A network spec is malformed or describes an impossible network.

    The message is assembled from the parts that locate the mistake, so every
    caller reports it the same way::

        examples/bad.yaml: layer 2 (conv): field 'kernel': must be ... (got -3)
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        layer: int | None = None,
        layer_type: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.layer = layer
        self.layer_type = layer_type
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        parts: list[str] = []
        if self.source:
            parts.append(self.source)
        if self.layer is not None:
            parts.append(f"layer {self.layer}" + (f" ({self.layer_type})" if self.layer_type else ""))
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.reason)
        return ": ".join(parts)

    def with_source(self, source: str) -> "SpecError":
        """Return the same error located in ``source`` (a file name)."""
        return SpecError(
            self.reason, source=source, layer=self.layer, layer_type=self.layer_type, field=self.field
        )


class ShapeError(CnnlabError):
    """A tensor shape given by the user does not parse or does not fit."""


class TargetError(CnnlabError):
    """A TARGET (spec file, zoo name or ``module:callable``) cannot be resolved."""


class OpsInputError(CnnlabError):
    """Numbers typed in for ``cnnlab ops`` are malformed or inconsistent."""
