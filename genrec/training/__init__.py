"""One trainer for every PyTorch model in genrec (SASRec, BERT4Rec, GenRec seq2seq, GPT4Rec's LM).

A model describes what it needs as a :class:`~genrec.training.module.TrainableModule` (build the
network, the epoch's batches, a batch loss, validation metrics, a fingerprint), in the spirit of
RecBole's ``calculate_loss``; :class:`~genrec.training.trainer.Trainer` does the rest on
``accelerate``: steps or epochs, gradient accumulation, early stopping on one named validation
metric, best-state restore, a time budget, fingerprinted checkpoints with exact resume, progress
and the precision policy. :mod:`genrec.training.lora` plugs LoRA (peft) into the same trainer.

Modules: ``config`` (TrainerConfig, FitResult), ``stopping`` (the early-stopping rule),
``checkpoint`` (fingerprinted checkpoints), ``trainer``, ``module``, ``distributed`` (DDP: process
group with a timeout, the loss run through the DDP wrapper, `--nproc` re-launch), ``validation`` (ranking
metrics of validation cases), ``lora``. torch and accelerate are imported only by the modules
that need them, so importing this package is cheap.
"""

from genrec.training.config import FitResult, TrainerConfig
from genrec.training.stopping import EarlyStopping

__all__ = ["EarlyStopping", "FitResult", "TrainerConfig"]
