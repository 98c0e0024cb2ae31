"""What a model gives the trainer: :class:`TrainableModule` (as RecBole's ``calculate_loss``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch


class TrainableModule(ABC):
    """A model's training recipe. The trainer calls, in order:

    - :meth:`build` once, after seeding the training's torch generator: returns the network
      (may return one built earlier, e.g. for a second training phase);
    - :meth:`optimizer` (and :meth:`scheduler`, given the planned number of steps);
    - per epoch :meth:`batches` with a generator seeded by (seed, epoch): the epoch's batches,
      a list so that a resumed run can skip the ones already done;
    - per batch :meth:`loss` with a generator seeded by (seed, epoch, batch number), so
      negatives and masks do not depend on what ran before (exact resume);
    - :meth:`validate` at each evaluation: metrics by name (higher is better), or ``None``
      when there is nothing to validate on;
    - :meth:`fingerprint`: what a checkpoint must match to be resumed (model configuration and
      a hash of the training data); the trainer adds its own settings.

    Random draws come only from the generators passed in (and dropout from the torch generator
    the trainer seeds and checkpoints), never from numpy's or Python's global state.
    """

    @abstractmethod
    def build(self) -> "torch.nn.Module":
        """The network to train."""

    @abstractmethod
    def optimizer(self, net: "torch.nn.Module") -> "torch.optim.Optimizer":
        """The optimizer over ``net``'s trainable parameters."""

    def scheduler(self, optimizer: "torch.optim.Optimizer", total_steps: int) -> Any:
        """A learning-rate scheduler stepped after each optimizer step, or None."""
        return None

    @abstractmethod
    def batches(self, epoch: int, rng: "np.random.Generator") -> Sequence[Any]:
        """The batches of epoch ``epoch`` (0-based), in order."""

    @abstractmethod
    def loss(self, net: "torch.nn.Module", batch: Any, rng: "np.random.Generator") -> "torch.Tensor":
        """The mean loss of one batch (a scalar tensor, before any accumulation scaling)."""

    def validate(self, net: "torch.nn.Module") -> dict[str, float] | None:
        """Validation metrics by name, higher is better; None: no validation."""
        return None

    def fingerprint(self) -> dict:
        """JSON-able description of the model configuration and training data."""
        return {}

    def count(self, batch: Any) -> int:
        """How many samples (or tokens) ``batch`` holds, for the throughput figure."""
        try:
            return len(batch)
        except TypeError:
            return 1
