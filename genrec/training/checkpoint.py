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
