"""The textbook memory figures (Géron, *Hands-On ML*, ch. 14, exercise 2).

* **Inference** (one instance): the parameters, plus the largest sum of two
  consecutive layer outputs — while a layer computes, its input and its output
  must both be in memory; everything before can be released. The input counts
  as layer 0. For a mini-batch the pair is held for every instance, the
  parameters once (the book's exercise: "predict ... a mini-batch of 50").
* **Training** (one mini-batch): every layer's output for every instance must be
  kept for backpropagation, plus the input batch, plus the parameters.

Both are "optimistic bare minimums": they leave out gradients (as large as the
parameters), optimizer state (0, 1 or 2 more copies of the parameters for SGD,
momentum, Adam), the tensors autograd really saves (which are not always the
layer outputs: a ReLU after a convolution saves its own output, a max-pool its
indices, batch norm its statistics) and temporaries in the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextbookMemory:
    """Exact byte counts; ``outputs[0]`` is the input, ``outputs[i]`` layer i's output."""

    bytes_per_element: int
    param_bytes: int
    outputs: tuple[int, ...]           # bytes per instance, input first
    batch_size: int
    inference_pair: tuple[int, int]    # the two consecutive layers that set the peak

    @property
    def inference_activation_bytes(self) -> int:
        i, j = self.inference_pair
        return self.outputs[i] + (self.outputs[j] if j != i else 0)

    @property
    def inference_bytes(self) -> int:
        return self.param_bytes + self.inference_activation_bytes

    @property
    def batch_inference_bytes(self) -> int:
        """Inference for the whole mini-batch: the largest consecutive pair × batch, + the parameters."""
        return self.param_bytes + self.batch_size * self.inference_activation_bytes

    @property
    def activation_bytes_per_instance(self) -> int:
        return sum(self.outputs)

    @property
    def training_activation_bytes(self) -> int:
        return self.batch_size * self.activation_bytes_per_instance

    @property
    def training_bytes(self) -> int:
        return self.training_activation_bytes + self.param_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "inference_bytes": self.inference_bytes,
            "batch_inference_bytes": self.batch_inference_bytes,
            "training_bytes": self.training_bytes,
            "param_bytes": self.param_bytes,
            "input_bytes": self.outputs[0],
            "inference_peak_layers": list(self.inference_pair),
            "inference_activation_bytes": self.inference_activation_bytes,
            "training_activation_bytes": self.training_activation_bytes,
        }


def textbook_memory(outputs: list[int], param_bytes: int, batch_size: int,
                    bytes_per_element: int) -> TextbookMemory:
    """Textbook memory from per-instance output bytes (input first) and parameter bytes."""
    if len(outputs) == 1:
        pair = (0, 0)
    else:
        pair = max(((i, i + 1) for i in range(len(outputs) - 1)),
                   key=lambda p: outputs[p[0]] + outputs[p[1]])
    return TextbookMemory(bytes_per_element, param_bytes, tuple(outputs), batch_size, pair)
