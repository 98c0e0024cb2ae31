"""The recipe every run shares: load a dataset, preprocess it, split it."""

from __future__ import annotations

from genrec.data.splits import Split
from genrec.experiments.config import DataConfig


def preprocess_for(dataset: str, split: str | None, preprocess: str | None) -> tuple[str, str]:
    """``(split, preprocess)`` with the dataset's defaults filled in (the registry's per-split preset)."""
    from genrec.data.registry import spec

    s = spec(dataset)
    split = split or s.default_split
    return split, preprocess or s.default_preprocess.get(split, "standard")


def load_split(data: DataConfig, seed: int = 0) -> Split:
    """The split a :class:`DataConfig` describes (seeded), with the leakage check the split runs."""
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split

    protocol, pre = preprocess_for(data.dataset, data.split, data.preprocess)
    ds = load_dataset(data.dataset, data.data_dir, preprocess=pre, download=data.download)
    return make_split(ds, protocol, seed=seed, cold_items=data.cold_items)
