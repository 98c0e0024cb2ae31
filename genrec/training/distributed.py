"""Data-parallel training (PyTorch DDP) for the one trainer: who am I, the process group, the
loss run through the DDP wrapper, and re-launching a command under ``torch.distributed.run``.

A run is distributed when a launcher (``torchrun``, ``accelerate launch``, ``genrec train
--nproc N``) set ``WORLD_SIZE`` > 1 and ``RANK``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``.
Rank and world size are read from the environment, so asking costs no torch import.

- :func:`init_process_group`: gloo on CPU, nccl on CUDA, with a timeout (``GENREC_DDP_TIMEOUT``
  seconds, default 600): a rank that dies or stalls makes the others fail instead of hanging.
- :func:`loss_runner`: under DDP the loss must run inside the DDP-wrapped module's forward, or
  the gradients of a loss that calls inner parts of the network (GPT4Rec's packed LM loss calls
  the transformer body and the LM head separately) are not all-reduced. The trainer wraps a
  tiny module whose ``forward`` calls ``TrainableModule.loss`` on the bare network, and wraps
  *that* in DDP: every model's loss is synchronised, whatever parts of the network it calls.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any, NoReturn, Sequence

from genrec.errors import GenrecError

TIMEOUT_ENV = "GENREC_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
# Test hook: the rank named here calls os._exit(1) before optimizer step GENREC_DDP_DIE_AT_STEP.
DIE_RANK_ENV, DIE_STEP_ENV = "GENREC_DDP_DIE_RANK", "GENREC_DDP_DIE_AT_STEP"


class DistributedError(GenrecError):
    """Another training process failed, stopped answering, or the group could not be formed."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise DistributedError(f"environment variable {name}={os.environ[name]!r} is not an integer") from None


def world_size() -> int:
    return max(_env_int("WORLD_SIZE", 1), 1)


def rank() -> int:
    return _env_int("RANK", 0)


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0)


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    """True in rank 0 (and in a plain single-process run): the one process that saves and prints."""
    return rank() == 0


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        t = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if t <= 0:
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r} must be > 0 seconds")
    return t


def init_process_group(device_type: str) -> None:
    """Join the process group (once per process) when launched distributed: nccl for CUDA (each
    process on its LOCAL_RANK's GPU), gloo otherwise, with :func:`timeout_seconds`."""
    if not is_distributed():
        return
    import datetime

    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        if name not in os.environ:
            raise DistributedError(f"WORLD_SIZE={world_size()} but {name} is not set: launch with torchrun, "
                                   "`accelerate launch` or `genrec train --nproc N`")
    # accelerate sets torch's threads to cores / local processes when OMP_NUM_THREADS is unset;
    # keep what the caller chose (--threads) instead.
    os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))
    backend = "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank())  # "cuda" then means this process's GPU everywhere
        backend = "nccl"
    try:
        dist.init_process_group(backend=backend, rank=rank(), world_size=world_size(),
                                timeout=datetime.timedelta(seconds=timeout_seconds()))
    except (RuntimeError, ValueError) as e:
        raise DistributedError(f"rank {rank()}: could not join the {backend} process group at "
                               f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}: {e}") from e
    import atexit

    atexit.register(_leave_group)


def _leave_group() -> None:
    """At exit: shut the process group down before the interpreter does. Left to interpreter
    teardown, gloo's worker threads can be destroyed while joinable, and the process aborts
    ("terminate called without an active exception", SIGABRT) after a successful run; seen on a
    loaded 2-core machine, where a rank that finished first exited while the other still saved."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except (RuntimeError, ValueError):  # exiting anyway; a failure here must not mask the run's result
            pass


def exit_worker() -> NoReturn:
    """End a rank other than 0 once training is done (it has nothing to save or print): flush, leave
    the process group, and exit 0 without interpreter teardown. Full-suite test runs saw such a rank
    abort at exit ("terminate called without an active exception", SIGABRT) after a successful run,
    from torch/gloo threads destroyed during teardown, even with the group destroyed first."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _leave_group()
    os._exit(0)


def is_collective_failure(e: BaseException) -> bool:
    """Whether ``e`` is a collective that failed because another process died or timed out."""
    import torch.distributed as dist

    text = str(e)
    return isinstance(e, dist.DistError) or any(w in text for w in ("gloo", "NCCL", "ProcessGroup", "Connection reset",
                                                                    "Connection closed", "timed out"))


def loss_runner(module: Any, net: Any) -> Any:
    """An ``nn.Module`` holding ``net`` whose ``forward(batch, rng)`` is ``module.loss(net, batch,
    rng)``: the thing to wrap in DDP (see the module docstring)."""
    import torch

    class LossRunner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, batch: Any, rng: Any) -> Any:
            return module.loss(self.net, batch, rng)

    return LossRunner()


def agree(value: Any) -> Any:
    """Rank 0's ``value`` in every process (stop decisions that depend on wall time or on a
    validation metric must not differ between ranks, or the others wait forever)."""
    if not is_distributed():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def maybe_die(step: int) -> None:
    """The test hook: exit hard (no cleanup, as a killed process) in the chosen rank."""
    if os.environ.get(DIE_RANK_ENV) == str(rank()) and str(step) == os.environ.get(DIE_STEP_ENV, "1"):
        sys.stderr.write(f"rank {rank()}: dying at step {step} ({DIE_RANK_ENV} test hook)\n")
        sys.stderr.flush()
        os._exit(1)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def relaunch(nproc: int, module: str, argv: Sequence[str]) -> int:
    """Run ``python -m module *argv`` in ``nproc`` local processes under ``torch.distributed.run``
    (torchrun: it sets the rank variables and, when one process fails, stops the others and
    fails). Returns the exit code."""
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--nnodes=1",
           "--master-addr=127.0.0.1", f"--master-port={free_port()}", "-m", module, *argv]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, said aloud
    return subprocess.call(cmd, env=env)
