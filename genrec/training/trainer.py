"""The trainer: one loop for every PyTorch model, on ``accelerate``.

``accelerate`` gives the precision policy (autocast; a GradScaler for fp16) and
DDP wrapping when launched distributed (torchrun, ``accelerate launch``, ``genrec train --nproc``:
see :mod:`genrec.training.distributed`; each process then takes every n-th
batch of an epoch, cut to equal counts), and ``no_sync`` during gradient accumulation. The loop
itself is written here rather than taken from ``transformers.Trainer``: genrec's models feed it
their own batch lists (packed LM rows, length buckets, per-batch negatives) and need exact
mid-epoch resume and early stopping on recommendation metrics.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from genrec.training import checkpoint as ckpt_io
from genrec.training.config import FitResult, TrainerConfig
from genrec.training.distributed import maybe_die
from genrec.training.module import TrainableModule
from genrec.training.stopping import EarlyStopping


def make_accelerator(precision: str, device):
    """An ``Accelerator`` for ``precision`` ("bf16", "fp16", "fp32") on ``device``'s kind."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    from genrec.training.distributed import init_process_group

    init_process_group(device.type)  # ours, not accelerate's: it sets the timeout (see distributed.py)
    # accelerate keeps one process-wide state and refuses a second Accelerator with another
    # precision, but one process fits many models (evaluate -m sasrec -m genrec-seq2seq): reset
    # the precision part, keeping the process group (PartialState) a DDP launch set up.
    AcceleratorState._reset_state(reset_partial_state=False)
    try:
        # find_unused_parameters: a loss may leave parts of a network out (a phase, a head), and DDP
        # without it fails on the next step; its cost (one graph walk per step) is small here.
        return Accelerator(cpu=device.type == "cpu", device_placement=False,
                           mixed_precision="no" if precision == "fp32" else precision,
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    except ValueError as e:
        raise ValueError(f"precision {precision!r} is not available on {device}: {e}") from e


class Trainer:
    """Train a :class:`TrainableModule` under a :class:`TrainerConfig`; :meth:`fit` returns the
    trained network (best evaluated state restored, eval mode) and a :class:`FitResult`."""

    def __init__(self, config: TrainerConfig) -> None:
        config.check()
        self.config = config

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, module: TrainableModule) -> tuple[Any, FitResult]:
        import torch

        from genrec.torch_utils import pick_device, resolve_precision

        cfg = self.config
        device = pick_device(cfg.device)
        precision = resolve_precision(cfg.precision, device)
        acc = make_accelerator(precision, device)
        if acc.num_processes > 1:
            device = acc.device
        cuda = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
        # The training's torch generator (weights init, dropout) is seeded here and checkpointed;
        # fork_rng gives the caller's global state back untouched afterwards.
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(cfg.seed)
            if acc.num_processes == 1:
                return self._fit(module, acc, device, precision)
            try:
                return self._fit(module, acc, device, precision)
            except RuntimeError as e:  # DistError is one; gloo reports a lost peer as a plain RuntimeError
                from genrec.training.distributed import DistributedError, is_collective_failure

                if not is_collective_failure(e):
                    raise

                raise DistributedError(
                    f"{cfg.desc}: rank {acc.process_index} of {acc.num_processes}: another training process failed "
                    f"or stopped answering ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]}); "
                    "see that process's log") from e

    def _fit(self, module: TrainableModule, acc, device, precision: str) -> tuple[Any, FitResult]:
        import torch

        cfg = self.config
        net = module.build().to(device)
        opt = module.optimizer(net)
        first = [] if cfg.max_epochs == 0 else self._shard(module.batches(0, self._epoch_rng(0)), acc)
        steps_per_epoch = max(1, math.ceil(len(first) / cfg.grad_accum))
        horizon = steps_per_epoch * cfg.max_epochs if cfg.max_epochs is not None else int(cfg.max_steps or 1)
        sched = module.scheduler(opt, max(horizon, 1))
        # The optimizer always goes through accelerate (fp16's GradScaler steps it). The model only
        # under DDP: in one process prepare() would only wrap forward in a second autocast and an
        # fp32 cast of every output, which the loss (run under acc.autocast()) does not need.
        opt = acc.prepare_optimizer(opt)
        # Under DDP the loss runs inside the wrapper's forward (distributed.loss_runner), so every
        # model's gradients are all-reduced whatever parts of its network the loss calls; `net`
        # stays the bare network (checkpoints, validation and the result use it).
        runner = None
        if acc.num_processes > 1:
            from genrec.training.distributed import loss_runner

            runner = acc.prepare_model(loss_runner(module, net))
        fingerprint = self._fingerprint(module, precision, acc, horizon if sched is not None else None)
        stopper = EarlyStopping(cfg.patience, cfg.min_delta, cfg.smoothing)
        st: dict[str, Any] = {"step": 0, "epoch": 0, "pos": 0, "elapsed": 0.0, "samples": 0, "history": [],
                              "best_step": None, "best_epoch": None, "best_metric": None, "loss_sum": 0.0,
                              "loss_n": 0, "last_eval_step": 0, "epoch_len": len(first), "train_s": 0.0}
        best_state = None
        folder = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
        resumed = None
        if folder is not None and (folder / ckpt_io.CHECKPOINT_FILE).is_file():
            saved = ckpt_io.load(folder / ckpt_io.CHECKPOINT_FILE)
            ckpt_io.check_fingerprint(folder / ckpt_io.CHECKPOINT_FILE, saved["fingerprint"], fingerprint)
            ckpt_io.load_trained_state(acc.unwrap_model(net), saved["model"], folder / ckpt_io.CHECKPOINT_FILE)
            opt.load_state_dict(saved["optimizer"])
            if sched is not None and saved.get("scheduler") is not None:
                sched.load_state_dict(saved["scheduler"])
            if acc.scaler is not None and saved.get("scaler") is not None:
                acc.scaler.load_state_dict(saved["scaler"])
            torch.set_rng_state(saved["torch_rng"])
            if saved.get("cuda_rng") and device.type == "cuda":
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            st.update(saved["progress"])
            stopper.load_state_dict(saved["stopper"])
            if st["best_step"] is not None and (folder / ckpt_io.BEST_FILE).is_file():
                best_state = torch.load(folder / ckpt_io.BEST_FILE, map_location="cpu", weights_only=True)
            resumed = st["step"]
            del saved

        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_steps or horizon, initial=st["step"], desc=cfg.desc, unit="step",
                   disable=not cfg.progress or not acc.is_main_process, mininterval=1.0, leave=False)
        t0, base = time.perf_counter(), st["elapsed"]
        samples_this_run, train_s_this_run = 0, 0.0
        reason = self._limit(st, stopper, base, runner)
        while reason is None:
            ep = st["epoch"]
            batches = first if ep == 0 else self._shard(module.batches(ep, self._epoch_rng(ep)), acc)
            st["epoch_len"] = len(batches)
            if not batches:
                raise ValueError(f"{cfg.desc}: the model gave no training batches for epoch {ep + 1}")
            net.train()
            while True:
                ts = time.perf_counter()
                pos = st["pos"]
                micro = batches[pos:pos + cfg.grad_accum]
                for j, b in enumerate(micro):
                    sync = j == len(micro) - 1
                    rng = np.random.default_rng([cfg.seed, ep, pos + j])
                    with contextlib.nullcontext() if sync or runner is None else acc.no_sync(runner):
                        with acc.autocast():
                            loss = module.loss(net, b, rng) if runner is None else runner(b, rng)
                        acc.backward(loss / len(micro))
                    st["loss_sum"] += float(loss.detach())
                    st["loss_n"] += 1
                    n = module.count(b)
                    st["samples"] += n
                    samples_this_run += n
                if runner is not None:
                    maybe_die(st["step"] + 1)
                if cfg.max_grad_norm:
                    acc.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
                opt.step()
                if sched is not None and not acc.optimizer_step_was_skipped:
                    sched.step()
                opt.zero_grad(set_to_none=True)
                st["step"] += 1
                st["pos"] += len(micro)
                end = st["pos"] >= len(batches)
                if end:
                    st["epoch"], st["pos"] = ep + 1, 0
                train_s_this_run += time.perf_counter() - ts
                st["train_s"] += time.perf_counter() - ts
                bar.update(1)
                if st["step"] % 10 == 0 or end:
                    bar.set_postfix(loss=f"{st['loss_sum'] / max(st['loss_n'], 1):.4f}", refresh=False)
                if (cfg.eval_every and st["step"] % cfg.eval_every == 0) or (cfg.eval_every is None and end):
                    best_state = self._evaluate(module, net, acc, st, stopper, best_state, folder, base + time.perf_counter() - t0)
                reason = self._limit(st, stopper, base + time.perf_counter() - t0, runner)
                if reason is not None and st["last_eval_step"] != st["step"]:
                    best_state = self._evaluate(module, net, acc, st, stopper, best_state, folder, base + time.perf_counter() - t0)
                    reason = self._limit(st, stopper, base + time.perf_counter() - t0, runner)
                every = cfg.checkpoint_every
                if folder is not None and (reason is not None or (every and st["step"] % every == 0)
                                           or (not every and end)):
                    st["elapsed"] = base + time.perf_counter() - t0
                    self._save(folder, fingerprint, net, opt, sched, acc, st, stopper, device)
                if reason is not None or end:
                    break
        bar.close()
        st["elapsed"] = base + time.perf_counter() - t0
        net = acc.unwrap_model(net, keep_fp32_wrapper=False)
        if best_state is not None:
            ckpt_io.load_trained_state(net, best_state, "the best validation state")
        net.eval()
        res = FitResult(history=st["history"], steps=st["step"],
                        epochs_run=st["epoch"] + (1 if st["pos"] else 0), best_epoch=st["best_epoch"],
                        best_step=st["best_step"], best_metric=st["best_metric"], stop_reason=reason or "max_epochs",
                        precision=precision, train_seconds=st["elapsed"], samples=st["samples"],
                        samples_per_s=samples_this_run / max(train_s_this_run, 1e-9), resumed_from_step=resumed)
        return net, res

    # -- pieces ----------------------------------------------------------------------------------
    def _epoch_rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, epoch])

    @staticmethod
    def _shard(batches, acc) -> list:
        """This process's batches: every n-th, cut so that every process takes as many steps."""
        batches = list(batches)
        n = acc.num_processes
        return batches if n == 1 else batches[acc.process_index::n][:len(batches) // n]

    def _limit(self, st: dict, stopper: EarlyStopping, elapsed: float, runner=None) -> str | None:
        reason = self._limit_here(st, stopper, elapsed)
        cfg = self.config
        if runner is not None and (cfg.time_budget is not None or cfg.patience is not None):
            from genrec.training.distributed import agree

            reason = agree(reason)  # wall time and validation may differ by rank: rank 0 decides for all
        return reason

    def _limit_here(self, st: dict, stopper: EarlyStopping, elapsed: float) -> str | None:
        cfg = self.config
        if stopper.should_stop and st["step"] >= cfg.min_steps:
            return "early_stopping"
        if cfg.max_steps is not None and st["step"] >= cfg.max_steps:
            return "max_steps"
        if cfg.max_epochs is not None and st["epoch"] >= cfg.max_epochs:
            return "max_epochs"
        if cfg.time_budget is not None and elapsed >= cfg.time_budget:
            return "time_budget"
        return None

    def _evaluate(self, module, net, acc, st: dict, stopper: EarlyStopping, best_state, folder, elapsed: float):
        import torch

        cfg = self.config
        inner = acc.unwrap_model(net)
        inner.eval()
        tv = time.perf_counter()
        with torch.no_grad():
            metrics = module.validate(inner)
        inner.train()
        epoch_f = st["epoch"] + st["pos"] / max(st["epoch_len"], 1)
        row: dict[str, Any] = {"step": st["step"], "epoch": round(epoch_f, 3),
                               "loss": st["loss_sum"] / max(st["loss_n"], 1)}
        st["loss_sum"], st["loss_n"], st["last_eval_step"] = 0.0, 0, st["step"]
        if metrics is not None:
            if cfg.valid_metric not in metrics:
                raise ValueError(f"valid_metric {cfg.valid_metric!r} is not one of the validation metrics "
                                 f"({', '.join(metrics)})")
            row.update({k: float(v) for k, v in metrics.items()})
            if stopper.update(metrics[cfg.valid_metric]):
                st.update(best_step=st["step"], best_epoch=math.ceil(epoch_f - 1e-9),
                          best_metric=float(metrics[cfg.valid_metric]))
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in ckpt_io.trained_state(inner).items()}
                if folder is not None and acc.is_main_process:
                    ckpt_io.atomic_save(best_state, folder / ckpt_io.BEST_FILE)
        now = elapsed + time.perf_counter() - tv
        row.update(valid_seconds=round(time.perf_counter() - tv, 3),
                   seconds=round(now - st.get("last_eval_elapsed", 0.0), 2), elapsed=round(now, 2))
        st["last_eval_elapsed"] = now
        st["history"].append(row)
        if cfg.progress and acc.is_main_process:
            from tqdm.auto import tqdm

            tqdm.write(f"{cfg.desc} " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                 for k, v in row.items()))
        return best_state

    def _fingerprint(self, module: TrainableModule, precision: str, acc, horizon: int | None) -> dict:
        """What a checkpoint must match to resume exactly. ``horizon``: the learning-rate schedule's
        length in steps (None without a scheduler): a run with more epochs has another schedule, so
        resuming a shorter run's checkpoint would jump the learning rate; it is refused instead."""
        cfg = self.config
        return {"module": module.fingerprint(), "seed": cfg.seed, "grad_accum": cfg.grad_accum, "lr_schedule_steps": horizon,
                "eval_every": cfg.eval_every, "valid_metric": cfg.valid_metric, "precision": precision,
                "max_grad_norm": cfg.max_grad_norm, "processes": acc.num_processes}

    def _save(self, folder: Path, fingerprint: dict, net, opt, sched, acc, st: dict, stopper, device) -> None:
        import torch

        if not acc.is_main_process:
            return
        ckpt_io.atomic_save({
            "fingerprint": fingerprint, "model": ckpt_io.trained_state(acc.unwrap_model(net)),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched is not None else None,
            "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
            "progress": copy.deepcopy(st), "stopper": stopper.state_dict(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        }, folder / ckpt_io.CHECKPOINT_FILE)
