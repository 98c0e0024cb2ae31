"""What a model was trained on, and whether evaluation cases leak into it.

A saved model records its training provenance (:func:`training_record`): the dataset,
preprocessing, split protocol and seed, cold items, fingerprints (sha256) of the training
sequences and of the catalog's item ids, and, in a side file, a sorted array of 64-bit hashes of
every trained (user, item) pair and of every trained item. :func:`check_cases` decides per case
whether the model saw the case's target in that user's training data, without the training
data itself: 8 bytes per interaction (a false match needs a 64-bit collision).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from genrec.errors import GenrecError

PAIRS_FILE = "training_pairs.npz"


class LeakedEvaluationError(GenrecError):
    """Evaluation cases whose targets the model was trained on (or items it does not know)."""


def _h64(keys: Sequence[str]) -> np.ndarray:
    """64-bit hashes of strings (blake2b, 8 bytes): stable across processes, unlike ``hash()``."""
    out = np.empty(len(keys), dtype=np.uint64)
    for n, k in enumerate(keys):
        out[n] = int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little")
    return out


def _pair_keys(user: str, items: Sequence[str]) -> list[str]:
    return [f"{user}\x1f{i}" for i in items]


def sequences_sha256(seqs) -> str:
    """sha256 over the sorted (user, item sequence) pairs: equal iff the training data is equal."""
    h = hashlib.sha256()
    for u in sorted(seqs.users):
        h.update(u.encode() + b"\x1e" + "\x1f".join(seqs[u]).encode() + b"\x1d")
    return h.hexdigest()


def ids_sha256(ids) -> str:
    return hashlib.sha256("\x1f".join(sorted(ids)).encode()).hexdigest()


def training_record(split) -> dict:
    """The JSON part of a model's provenance (``genrec_model.json["trained_on"]``)."""
    info = split.info
    pre = info.get("preprocess")
    cold = sorted(split.cold_items)
    return {
        "dataset": info.get("dataset"),
        "synthetic": info.get("synthetic"),
        "preprocess": pre.get("name") if isinstance(pre, dict) else pre,
        "preprocess_steps": pre,
        "min_rating": info.get("min_rating"),
        "split": split.protocol,
        "seed": split.seed,
        "cold_items": len(cold),
        "cold_items_sha256": ids_sha256(cold) if cold else None,
        "train_users": len(split.train),
        "train_interactions": split.train.num_interactions(),
        "train_sha256": sequences_sha256(split.train),
        "items": len(split.catalog),
        "items_sha256": ids_sha256(split.catalog.ids),
        "pairs_file": PAIRS_FILE,
    }


def training_hashes(seqs) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique hashes of every trained (user, item) pair and of every trained item."""
    keys = [k for u in seqs.users for k in _pair_keys(u, seqs[u])]
    return np.unique(_h64(keys)), np.unique(_h64(sorted(seqs.item_set())))


def save_hashes(seqs, folder: Path) -> None:
    pairs, items = training_hashes(seqs)
    np.savez(folder / PAIRS_FILE, pairs=pairs, items=items)


def load_hashes(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    f = Path(folder) / PAIRS_FILE
    if not f.is_file():
        return None
    with np.load(f) as z:
        return z["pairs"], z["items"]


@dataclass
class LeakCheck:
    """The outcome of :func:`check_cases` for one model and one set of cases."""

    status: str  # "clean", "LEAKED", "same training data" or "unchecked"
    cases: int = 0
    leaked: int = 0
    example: str | None = None
    unknown_targets: int = 0
    cold_targets_trained: int = 0
    differs: list[str] = field(default_factory=list)
    trained_on: dict | None = None

    def to_dict(self) -> dict:
        return {"status": self.status, "cases": self.cases, "cases_trained_on": self.leaked,
                "example": self.example, "targets_unknown_to_model": self.unknown_targets,
                "cold_targets_trained_on": self.cold_targets_trained, "differs": self.differs,
                "trained_on": self.trained_on}

    def message(self, name: str, which: str) -> str:
        """One line: what leaked, what differs between training and evaluation, what to do."""
        parts = []
        if self.leaked:
            parts.append(f"{self.leaked:,} of {self.cases:,} {which} targets were in that user's training data "
                         f"(e.g. {self.example})")
        if self.cold_targets_trained:
            parts.append(f"{self.cold_targets_trained:,} cold-start targets are items it was trained on")
        differs = f"; training vs evaluation: {', '.join(self.differs)}" if self.differs else ""
        return (f"{name} was trained on the targets it is evaluated on: {'; '.join(parts)}{differs}. Evaluate it on "
                "the split it was trained with, or pass --allow-leak to proceed (the report then says LEAKED)")


def describe_split(split) -> dict:
    """The fields of :func:`training_record` that name a split, for the 'what differs' line."""
    info = split.info
    pre = info.get("preprocess")
    return {"dataset": info.get("dataset"), "preprocess": pre.get("name") if isinstance(pre, dict) else pre,
            "min_rating": info.get("min_rating"), "split": split.protocol, "seed": split.seed,
            "cold_items": len(split.cold_items)}


def differences(trained: dict, split) -> list[str]:
    now = describe_split(split)
    return [f"{k} {trained.get(k)!r} vs {v!r}" for k, v in now.items() if trained.get(k) != v]


def check_cases(model, split, cases: Sequence) -> LeakCheck:
    """Whether ``model`` was trained on the targets of ``cases`` (of ``split``).

    A case leaks when its (user, target) pair is in the model's training data and the target is
    not already in the case's history (a repeat the history shows is fair game, and ranking
    excludes it anyway). Cold-start targets the model trained on leak too. A model fitted in this
    process on ``split``'s own training data is clean by the split's leakage check.
    """
    fitted_on = getattr(model, "_trained_split", None)
    if fitted_on is not None and fitted_on.train is split.train:
        return LeakCheck("same training data", len(cases))
    if fitted_on is not None:
        cache = model.__dict__.get("_provenance_cache")
        if cache is None or cache[0] is not fitted_on:
            cache = model._provenance_cache = (fitted_on, training_record(fitted_on), training_hashes(fitted_on.train))
        trained, hashes = cache[1], cache[2]
    else:
        trained = getattr(model, "_trained_on", None)
        hashes = load_hashes(model._trained_on_dir) if trained is not None else None
        if trained is None or hashes is None:
            return LeakCheck("unchecked", len(cases))
    pairs, items = hashes
    check = LeakCheck("clean", len(cases), differs=differences(trained, split), trained_on=trained)
    catalog = getattr(model, "catalog", None)
    if catalog is not None:
        check.unknown_targets = sum(1 for c in cases if c.target not in catalog)
    suspects = [c for c in cases if c.target not in c.history]
    hit = np.isin(_h64([f"{c.user}\x1f{c.target}" for c in suspects]), pairs)
    check.leaked = int(hit.sum())
    if check.leaked:
        c = suspects[int(np.flatnonzero(hit)[0])]
        check.example = f"user {c.user} -> {c.target}"
    cold = split.cold_items
    if cold and split.info.get("view"):
        targets = sorted({c.target for c in cases if c.target in cold})
        trained_items = set(np.array(targets)[np.isin(_h64(targets), items)].tolist()) if targets else set()
        check.cold_targets_trained = sum(1 for c in cases if c.target in trained_items)
    if check.leaked or check.cold_targets_trained:
        check.status = "LEAKED"
    return check
