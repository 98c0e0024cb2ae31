"""Shared PyTorch plumbing: device choice, bf16 autocast, seeding, resumable checkpoints.

Imported only by models that need torch, never by ``import genrec``.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given ("cpu", "cuda", "cuda:1", "mps"), else CUDA when present, else CPU."""
    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast: on CPU it uses AMX/AVX-512 bf16 matmuls (about 5x fp32 on this Xeon)."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> None:
    """Use ``n`` intra-op threads (default: $GENREC_THREADS or all cores)."""
    n = n or int(os.environ.get("GENREC_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(n)


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, step: int = 0, epoch: int = 0, extra: dict | None = None) -> Path:
    """Atomically write a training checkpoint (written to a temp file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": step,
        "epoch": epoch,
        "extra": extra or {},
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns ``{"step", "epoch", "extra"}``."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = state.get("rng")
    if rng:
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
    return {"step": state.get("step", 0), "epoch": state.get("epoch", 0), "extra": state.get("extra", {})}
