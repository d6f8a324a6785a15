"""Training state in one safetensors file: tensors as tensors, everything else as JSON metadata.

Nothing is pickled, so loading a checkpoint cannot run code. The file is
written atomically (temporary file, fsync, rename): a crash leaves the previous
checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import load_file, save

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_bytes

META_KEY = "cnnlab"
DIGEST_KEY = "cnnlab.blake2b"   # a digest of every tensor's name, dtype, shape and bytes
META_DIGEST_KEY = "cnnlab.blake2b.meta"   # a digest of the metadata JSON (epoch, step, optimizer settings …)


def meta_digest(text: str) -> str:
    """BLAKE2b of the metadata JSON as written: an edited epoch, step or scheduler key changes it."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).hexdigest()


def _check_meta(path: Path, metadata: dict[str, str]) -> None:
    expected = metadata.get(META_DIGEST_KEY)
    if expected is not None and meta_digest(metadata.get(META_KEY, "")) != expected:
        raise CheckpointError(f"{path}: its metadata does not match the digest written with it (the file was "
                              "changed or damaged); restore a good copy or retrain")


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """BLAKE2b of the tensors in name order: a flipped byte, a relabelled dtype or shape changes it."""
    h = hashlib.blake2b(digest_size=32)
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _check(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> None:
    """The digest matches (files written before digests existed have none) and no weight is NaN or ±inf."""
    _check_meta(path, metadata or {})
    expected = (metadata or {}).get(DIGEST_KEY)
    if expected is not None and tensor_digest(tensors) != expected:
        raise CheckpointError(f"{path}: its tensors do not match the digest written with them (the file was "
                              "changed or damaged); restore a good copy or retrain")
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor '{name}' holds NaN or infinite values; the weights are unusable "
                                  "(the training diverged: lower --lr, or restore a good copy)")


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    text = json.dumps(meta)
    atomic_write_bytes(path, save(tensors, metadata={META_KEY: text, DIGEST_KEY: tensor_digest(tensors),
                                                     META_DIGEST_KEY: meta_digest(text)}))


class CheckpointError(CnnlabError):
    """A checkpoint or weights file is missing, truncated, corrupted or from another model."""


def _flatten_optimizer(state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    plain: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        plain["state"][str(idx)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{idx}.{key}"] = value.detach().cpu().contiguous()
                plain["state"][str(idx)][key] = {"tensor": f"optimizer.{idx}.{key}"}
            else:
                plain["state"][str(idx)][key] = value
    return plain


def _unflatten_optimizer(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = {}
    for idx, entry in plain["state"].items():
        state[int(idx)] = {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in entry.items()}
    return {"param_groups": plain["param_groups"], "state": state}


def save_weights(path: Path, model: torch.nn.Module, meta: dict[str, Any] | None = None) -> None:
    """The model's state dict (parameters and buffers) as a safetensors file, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _save(path, tensors, meta or {})


def _require_regular(path: Path) -> None:
    """A weights or state file that is a regular file of its run (not a link, FIFO or device: a FIFO would block)."""
    from cnnlab.files import open_in_run

    if not Path(path).exists() and not Path(path).is_symlink():
        return                          # the readers' own "no such file" messages follow
    os.close(open_in_run(path))


def load_weights(path: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load weights saved by :func:`save_weights` into ``model``; returns its metadata."""
    _require_regular(path)
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        meta = json.loads(metadata.get(META_KEY, "{}"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err}); it is truncated or corrupted") from None
    _check(path, tensors, metadata)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not fit this model ({first})") from None
    return meta


def save_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler | None, meta: dict[str, Any]) -> None:
    """Model, optimizer, scheduler, RNG state and ``meta`` (epoch, step, history …) in one file, atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():   # dropout on a GPU draws from these
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    doc = dict(meta)
    doc["optimizer"] = _flatten_optimizer(optimizer.state_dict(), tensors)
    doc["scheduler"] = scheduler.state_dict() if scheduler is not None else None
    _save(path, tensors, doc)


def load_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote (RNG included); returns the metadata."""
    _require_regular(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint here") from None
    try:
        tensors = st_load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
        _check_meta(Path(path), header["__metadata__"])
        doc = json.loads(header["__metadata__"][META_KEY])
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise CheckpointError(f"{path}: the checkpoint is truncated or corrupted ({err}); "
                              "nothing was changed — restore a good copy or start a new run") from None
    _check(path, tensors, header["__metadata__"])
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_sd)
        optimizer.load_state_dict(_unflatten_optimizer(doc["optimizer"], tensors))
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: the checkpoint does not match this model/optimizer ({first})") from None
    if scheduler is not None and doc.get("scheduler") is not None:
        scheduler.load_state_dict(doc["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(len([k for k in tensors if k.startswith("rng.cuda.")]))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[:torch.cuda.device_count()])
    return doc


def read_weights_meta(path: Path) -> dict[str, Any]:
    """The metadata of a weights file written by :func:`save_weights` (its header only, digest checked)."""
    from safetensors import safe_open

    _require_regular(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        _check_meta(Path(path), metadata)
        meta = json.loads(metadata.get(META_KEY, "{}"))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(err)[:120]}); it is truncated or "
                              "corrupted") from None
    return meta if isinstance(meta, dict) else {}


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of a state file written by :func:`save_state`, read from its header only."""
    _require_regular(path)
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len < 1 << 30:
                raise ValueError(f"header length {header_len}")
            header = json.loads(f.read(header_len))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            size = os.fstat(f.fileno()).st_size
        if size != 8 + header_len + end:
            raise ValueError(f"{size} bytes where the header announces {8 + header_len + end}")
        _check_meta(Path(path), header["__metadata__"])
        return json.loads(header["__metadata__"][META_KEY])
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no checkpoint here") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{path}: the checkpoint is truncated or corrupted ({err}); "
                              "nothing was changed — restore a good copy or start a new run") from None
