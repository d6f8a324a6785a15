"""Count the bytes a PyTorch program holds, op by op, without computing anything.

``AllocationTracker`` is a ``TorchDispatchMode``: every ATen op's outputs pass
through it, so it sees each new tensor storage the moment it is created, and
a weak-reference finaliser tells it when the storage is freed (when Python
drops the last tensor using it). Run under ``FakeTensorMode`` the program
allocates nothing, yet the tracker's running total follows what PyTorch's
allocator would hold at each instant: its maximum is the peak. The same idea
as ``torch.distributed._tools.mem_tracker.MemTracker`` (a private API),
written here so the categories, the phases and the device's rounding rule
are ours to define.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from cnnlab.analysis.walk import run_op

# What a storage is for. Order = the order of the breakdown in reports.
CATEGORIES = ("parameters", "buffers", "gradients", "optimizer_state", "input",
              "activations", "temporaries", "kernel_workspace")


@dataclass
class Snapshot:
    """Live bytes per category at one instant, and where in the step that instant was."""

    phase: str
    op: str
    by_category: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_category.values())


class AllocationTracker(TorchDispatchMode):
    """Track live storage bytes by category; keep the peak and where it happened.

    ``round_bytes`` maps a request to what the allocator really reserves for it
    (identity on CPU; 512-byte blocks on CUDA). ``phase`` is set by the caller
    ("forward", "backward", ...); new storages are filed under the category the
    caller sets for the phase (``default_category``) unless re-filed later
    (a parameter's gradient is re-filed as ``gradients`` when it is accumulated).
    """

    def __init__(self, round_bytes: Callable[[int], int] = lambda n: n,
                 workspace: Callable[..., int] | None = None) -> None:
        super().__init__()
        self.round_bytes = round_bytes
        self.workspace = workspace   # (func, args, kwargs, out) -> transient bytes inside the op
        self.phase = "setup"
        self.default_category = "activations"
        self._live: dict[int, list] = {}       # id(storage) -> [bytes, category]
        self._refs: dict[int, weakref.ref] = {}
        self.current = {c: 0 for c in CATEGORIES}
        self.peak = Snapshot("setup", "", dict(self.current))
        self.peaks_by_phase: dict[str, int] = {}
        self.timeline: list[int] = []               # live total after each allocation since reset_peak

    # -- bookkeeping -------------------------------------------------------------------
    def track(self, tensors: Iterable[torch.Tensor], category: str, op: str = "",
              refile: bool = True) -> None:
        """File the storages of ``tensors`` under ``category``.

        New storages are added. A storage already tracked keeps its category
        unless ``refile`` (the op hook never re-files: a view of a parameter
        stays a parameter).
        """
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key = id(st)
            entry = self._live.get(key)
            if entry is None:
                nbytes = self.round_bytes(st.nbytes()) if st.nbytes() else 0
                self._live[key] = [nbytes, category]
                self._refs[key] = weakref.ref(st, lambda _, key=key: self._free(key))
                self.current[category] += nbytes
                self._update_peak(op)
            elif refile and entry[1] != category:
                self.current[entry[1]] -= entry[0]
                entry[1] = category
                self.current[category] += entry[0]

    def _free(self, key: int) -> None:
        entry = self._live.pop(key, None)
        self._refs.pop(key, None)
        if entry is not None:
            self.current[entry[1]] -= entry[0]

    def _update_peak(self, op: str) -> None:
        total = sum(self.current.values())
        self.timeline.append(total)
        self.peaks_by_phase[self.phase] = max(self.peaks_by_phase.get(self.phase, 0), total)
        if total > self.peak.total:
            self.peak = Snapshot(self.phase, op, dict(self.current))

    def reset_peak(self) -> None:
        """Start a new peak from what is live now (e.g. at the start of the measured step)."""
        self.peak = Snapshot(self.phase, "", dict(self.current))
        self.peaks_by_phase = {}
        self.timeline = [sum(self.current.values())]


    # -- the dispatch hook -------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = run_op(func, args, kwargs or {})  # normalisations on meta: once per layout
        flat, _ = tree_flatten(out)
        self.track((t for t in flat if isinstance(t, torch.Tensor)), self.default_category,
                   op=str(func.__name__), refile=False)
        if self.workspace is not None:
            extra = self.workspace(func, args, kwargs or {}, out)
            if extra > 0:  # live only inside the op: a peak candidate, never kept
                self.current["kernel_workspace"] = extra
                self._update_peak(f"{func.__name__} (kernel workspace)")
                self.current["kernel_workspace"] = 0
        return out
