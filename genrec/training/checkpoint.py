"""Fingerprinted training checkpoints: written atomically, refused when the fingerprint differs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genrec.errors import GenrecError

CHECKPOINT_FILE = "trainer_state.pt"
BEST_FILE = "best_weights.pt"


class CheckpointMismatch(GenrecError):
    """A checkpoint was written for another model configuration or training data."""


def _flat(x: Any, prefix: str = "") -> dict:
    """``{"module": {"hidden": 8}}`` -> ``{"module.hidden": 8}``, JSON-normalised (tuples are lists)."""
    x = json.loads(json.dumps(x, sort_keys=True, default=str))
    out: dict = {}
    for k, v in x.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_fingerprint(path: Path, found: dict, expected: dict) -> None:
    """Raise :class:`CheckpointMismatch` naming the fields that differ."""
    found, expected = _flat(found), _flat(expected)
    if found == expected:
        return
    keys = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    diff = "; ".join(f"{k}: checkpoint {found.get(k)!r}, now {expected.get(k)!r}" for k in keys[:6])
    raise CheckpointMismatch(f"{path} was written for another model configuration or training data ({diff}); "
                             "delete it or pass another checkpoint_dir to start afresh")


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file, then rename: a crash never leaves a torn checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _frozen(net: Any) -> set[str]:
    """Names of the parameters that do not train (every alias of a tied weight)."""
    return {n for n, p in net.named_parameters(remove_duplicate=False) if not p.requires_grad}


def trained_state(net: Any) -> dict:
    """The weights a checkpoint must hold: the whole ``state_dict`` when every parameter trains; with
    frozen parameters (LoRA on a pre-trained LM), only the trainable ones and the buffers. The frozen
    base weights come back from the base model, so a LoRA checkpoint is megabytes, not the LM's size."""
    frozen = _frozen(net)
    state = net.state_dict()
    return state if not frozen else {k: v for k, v in state.items() if k not in frozen}


def load_trained_state(net: Any, state: dict, path: Path | str = "<memory>") -> None:
    """Load :func:`trained_state`'s dict; weights it leaves out must be frozen ones of ``net``."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    frozen = _frozen(net)
    bad = [k for k in missing if k not in frozen]
    if unexpected or bad:
        raise CheckpointMismatch(f"{path}: weights do not fit the model (missing trainable: {bad[:4]}, "
                                 f"unexpected: {list(unexpected)[:4]}); delete it to start afresh")
