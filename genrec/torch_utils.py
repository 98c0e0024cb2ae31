"""Shared PyTorch plumbing: device choice, the precision policy, seeding, threads.

Training (and its checkpoints) lives in :mod:`genrec.training`.

Imported only by models that need torch, never by ``import genrec``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random

import numpy as np
import torch


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given ("cpu", "cuda", "cuda:1", "mps"), else CUDA when present, else CPU."""
    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


# bf16 autocast must be at least this much faster than fp32 on the probe to be used.
BF16_MIN_SPEEDUP = 1.25


def bf16_matmul_speedup(n: int = 1024, reps: int = 3) -> float:
    """fp32 time / bf16-autocast time of an ``n`` x ``n`` matmul on the CPU (best of ``reps``,
    interleaved so a burst of load hits both). About 0.1-0.3 s. The operands come from a local
    ``torch.Generator``: this probe runs lazily, after a model seeded the global generator, and
    drawing from it would change that model's weights (issue 17, item 2)."""
    import time

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)

    def best(bf16: bool) -> float:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            a @ b  # warm-up (oneDNN picks and caches its kernel here)
            t = time.perf_counter()
            a @ b
            return time.perf_counter() - t

    fp32, bf16 = float("inf"), float("inf")
    for _ in range(reps):
        fp32, bf16 = min(fp32, best(False)), min(bf16, best(True))
    return fp32 / max(bf16, 1e-9)


def bf16_pays(flags: set[str], speedup=bf16_matmul_speedup) -> bool:
    """Decide from the CPU's flags, measuring only where the flags cannot tell.

    Measured on our machine kinds: AVX2 only (AMD EPYC): bf16 is emulated, about 4x *slower*, so
    never. AMX (Xeon Sapphire Rapids and later): about 5x faster, so always. AVX512-BF16 without
    AMX differs by chip: a 1024 matmul ran 2x faster on an AMD EPYC but 2x *slower* on a
    Xeon (bf16 training at parity with fp32, benchmarks/results/bf16_speed_xeon.json), so there
    ``speedup()`` is called and bf16 is used when it is at least ``BF16_MIN_SPEEDUP``.
    """
    if "amx_bf16" in flags:
        return True
    if "avx512_bf16" not in flags:
        return False
    return speedup() >= BF16_MIN_SPEEDUP


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when bf16 autocast is faster than fp32 on this CPU (:func:`bf16_pays`; decided once
    per process). ``GENREC_BF16=1`` forces it, ``GENREC_BF16=0`` disables it."""
    env = os.environ.get("GENREC_BF16")
    if env is not None:
        return env.strip() not in ("0", "false", "no", "")
    return bf16_pays(_cpu_flags())


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision where it is faster: bf16 on CUDA (fp16 if no bf16) and on CPUs where bf16
    beats fp32 (:func:`cpu_has_fast_bf16`); plain fp32 elsewhere."""
    if not enabled or os.environ.get("GENREC_BF16", "").strip() in ("0", "false", "no"):
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_bf16(bf16: bool | str | None, device) -> bool:
    """Whether to use bf16 autocast: ``True``/``False`` as given; ``None`` or ``"auto"``: on CUDA,
    and on CPUs where bf16 beats fp32 (:func:`cpu_has_fast_bf16`). ``device`` is a
    ``torch.device`` or its name."""
    if bf16 is not None and bf16 != "auto":
        return bool(bf16)
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return kind == "cuda" or (kind == "cpu" and cpu_has_fast_bf16())


def resolve_precision(bf16: bool | str | None, device) -> str:
    """The precision policy, as ``"bf16"``, ``"fp16"`` or ``"fp32"``.

    ``bf16`` may be ``False`` (fp32), ``True`` (mixed precision: bf16, or fp16 on a GPU without
    bf16; bf16 is forced on a CPU even where it is emulated), ``None``/``"auto"`` (CUDA: bf16 or
    fp16; CPU: bf16 only where it beats fp32, :func:`cpu_has_fast_bf16`; elsewhere fp32), or a
    name (``"bf16"``, ``"fp16"``, ``"fp32"``). fp16 needs a GradScaler; the trainer's
    ``accelerate`` provides it. ``GENREC_BF16=0`` turns ``auto`` into fp32.
    """
    if isinstance(bf16, str) and bf16 in ("bf16", "fp16", "fp32"):
        return bf16
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if bf16 is not None and bf16 != "auto":
        if not bf16:
            return "fp32"
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if kind == "cpu" else "fp32"
    if kind == "cuda":
        if os.environ.get("GENREC_BF16", "").strip() in ("0", "false", "no"):
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if kind == "cpu" and cpu_has_fast_bf16() else "fp32"


def autocast_for(precision: str, device):
    """The autocast context of a :func:`resolve_precision` result (for inference)."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(kind, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> None:
    """Use ``n`` intra-op threads (default: $GENREC_THREADS or all cores)."""
    n = n or int(os.environ.get("GENREC_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(n)
