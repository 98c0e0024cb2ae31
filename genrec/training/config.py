"""What the trainer is told (:class:`TrainerConfig`) and what it reports (:class:`FitResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STOP_REASONS = ("early_stopping", "max_epochs", "max_steps", "time_budget")


@dataclass
class TrainerConfig:
    """How to train. Limits: training stops at the first of ``max_epochs``, ``max_steps``
    (optimizer steps) and ``time_budget`` (seconds of training and validation, summed over
    resumed runs), or by early stopping.

    - ``eval_every``: validate every this many optimizer steps; ``None``: at each epoch end.
      Training that stops between evaluations is validated once more at the end.
    - Early stopping on ``valid_metric`` (higher is better): stop when the metric (smoothed:
      ``smoothing`` is the weight of the past in an exponential moving average, 0 = raw) has not
      risen by more than ``min_delta`` for ``patience`` evaluations, but never before ``min_steps``
      steps. ``patience=None`` never stops early. The best evaluated state (raw metric) is
      restored at the end.
    - ``grad_accum``: micro-batches per optimizer step (an epoch's last step may have fewer).
    - ``precision``: ``None``/``"auto"``, ``True``, ``False`` or a name
      (:func:`genrec.torch_utils.resolve_precision`).
    - ``checkpoint_dir``: a checkpoint is written every ``checkpoint_every`` steps (0: at each
      epoch end) and when training stops; a later fit with the same fingerprint resumes exactly
      (same batches, same random draws, same optimizer and scheduler state).
    """

    max_epochs: int | None = 10
    max_steps: int | None = None
    min_steps: int = 0
    time_budget: float | None = None
    eval_every: int | None = None
    valid_metric: str = "ndcg@10"
    patience: int | None = None
    min_delta: float = 0.0
    smoothing: float = 0.0
    grad_accum: int = 1
    max_grad_norm: float | None = None
    precision: bool | str | None = "auto"
    device: str | None = None
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = True
    desc: str = "train"

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError("give max_epochs or max_steps (training needs an end)")
        for name in ("max_epochs", "max_steps", "eval_every", "patience"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < (0 if name == "max_epochs" else 1)):
                raise ValueError(f"{name} must be a positive integer or None; got {v!r}")
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1; got {self.grad_accum!r}")
        if self.min_steps < 0 or self.min_delta < 0:
            raise ValueError("min_steps and min_delta must be >= 0")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1); got {self.smoothing!r}")
        if self.time_budget is not None and self.time_budget < 0:
            raise ValueError(f"time_budget must be >= 0 seconds; got {self.time_budget!r}")


@dataclass
class FitResult:
    """What happened. ``history``: one row per evaluation (or per epoch without validation)."""

    history: list[dict] = field(default_factory=list)
    steps: int = 0
    epochs_run: int = 0
    best_epoch: int | None = None
    best_step: int | None = None
    best_metric: float | None = None
    stop_reason: str = "max_epochs"
    precision: str = "fp32"
    train_seconds: float = 0.0
    samples: int = 0
    samples_per_s: float = 0.0
    resumed_from_step: int | None = None

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason == "early_stopping"

    def fit_info(self) -> dict[str, Any]:
        """The ``fit_info_`` contract every torch model fills (printed in the run card)."""
        return {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch, "stop_reason": self.stop_reason,
                "precision": self.precision, "steps": self.steps, "train_seconds": round(self.train_seconds, 2)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
