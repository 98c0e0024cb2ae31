"""Is bf16 autocast faster than fp32 on this CPU? Matmul GFLOP/s and scratch GPT-2 training tokens/s.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bf16_speed.py --threads 2 --out benchmarks/results/bf16_speed.json

genrec turns bf16 on by itself only where it beats fp32 (``genrec.torch_utils.cpu_has_fast_bf16``:
AMX yes, no bf16 flag no, AVX512-BF16 alone by a short matmul probe); this script measures what
that choice is worth here and records the probe and the choice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time


def _ctx(bf16: bool):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def matmul_gflops(n: int, bf16: bool, reps: int = 20) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    with _ctx(bf16):
        for _ in range(3):
            a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def train_tokens_per_s(size: str, bf16: bool, batch: int = 32, length: int = 256, steps: int = 4) -> float:
    """Forward + backward + AdamW step of a scratch GPT-2 (genrec.lm.scratch sizes), 4,096 tokens vocab."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from genrec.lm.scratch import SIZES

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=4096, n_positions=length, bos_token_id=0, eos_token_id=0,
                                       **SIZES[size]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(0, 4096, (batch, length))
    for i in range(steps + 2):
        if i == 2:
            t = time.perf_counter()
        with _ctx(bf16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return batch * length * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--out", default="benchmarks/results/bf16_speed.json")
    a = ap.parse_args()
    import torch

    from genrec.eval.runcard import load_average, machine
    from genrec.torch_utils import _cpu_flags, bf16_matmul_speedup, cpu_has_fast_bf16

    torch.set_num_threads(a.threads)
    flags = sorted(_cpu_flags() & {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"})
    out = {"command": f"python benchmarks/bf16_speed.py --threads {a.threads} --sizes {a.sizes} --out {a.out}",
           "machine": machine(), "cpu_flags": flags, "probe_speedup": round(bf16_matmul_speedup(), 2),
           "genrec_uses_bf16": cpu_has_fast_bf16(), "threads": a.threads,
           "load_average_at_start": load_average(), "matmul_gflops": {}, "train_tokens_per_s": {}}
    for n in (256, 1024):
        out["matmul_gflops"][str(n)] = {p: round(matmul_gflops(n, p == "bf16"), 1) for p in ("fp32", "bf16")}
    for size in a.sizes.split(","):
        out["train_tokens_per_s"][size] = {p: round(train_tokens_per_s(size, p == "bf16")) for p in ("fp32", "bf16")}
    out["load_average_at_end"] = load_average()
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
