"""The early-stopping rule: patience counted in evaluations, a minimum improvement, optional
smoothing. Pure Python, so it is tested without a model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class EarlyStopping:
    """Feed it each evaluation's metric (higher is better) with :meth:`update`.

    The patience counter resets when the (exponentially smoothed, ``smoothing`` = weight of the
    past) metric exceeds the reference by more than ``min_delta``; ``should_stop`` once it has
    not for ``patience`` evaluations (never with ``patience=None``). :meth:`update` returns whether
    the *raw* value is the best so far: that state is the one to keep.
    """

    patience: int | None = None
    min_delta: float = 0.0
    smoothing: float = 0.0
    best: float = -math.inf
    reference: float = -math.inf
    smoothed: float | None = None
    bad: int = 0

    def update(self, value: float) -> bool:
        value = float(value)
        if math.isnan(value):
            value = -math.inf
        self.smoothed = value if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * value
        if self.smoothed > self.reference + self.min_delta:
            self.reference, self.bad = self.smoothed, 0
        else:
            self.bad += 1
        if value > self.best:
            self.best = value
            return True
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
