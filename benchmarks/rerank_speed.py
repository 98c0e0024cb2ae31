"""Speed of verbalizer re-ranking (20 candidates, one forward pass per user) with SmolLM2-135M:
users/s per setting (prompts per forward pass, title tokens, history items, precision, threads).

    .venv/bin/python benchmarks/rerank_speed.py [--users 16] [--settings default] [--dataset ml-100k]

Every setting re-ranks the same seeded sample of ML-100K ``loo`` test histories (item kNN's top
20) through ``LLMRerank.recommend`` (the model's own path: prompts, tokenizer, backend batching),
after one warm-up call. Precision: ``fp32``; ``bf16`` = bf16 autocast (genrec's default where the
CPU probe says it pays, :func:`genrec.torch_utils.cpu_has_fast_bf16`); ``bf16w`` = the weights
themselves cast to bf16 (no per-call casts). The model's top-10 lists of each setting are
compared with the fp32 reference setting's (``same_top10``: share of users with an identical
list), since lower precision can reorder near-ties. Writes benchmarks/results/rerank_speed.{json,md}
with the command, machine, bf16 probe, load averages and wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import sys
import time
from pathlib import Path

# (name, prompts per forward pass, title tokens, history items, precision, threads)
GRID = {
    "default": [
        ("before: bs8 t32 h10 fp32 1 thread", 8, 32, 10, "fp32", 1),
        ("bs8 t32 h10 fp32 2 threads", 8, 32, 10, "fp32", 2),
        ("bs8 t32 h10 bf16 2 threads", 8, 32, 10, "bf16", 2),
        ("bs8 t32 h10 bf16w 2 threads", 8, 32, 10, "bf16w", 2),
        ("bs1 t32 h10 bf16 2 threads", 1, 32, 10, "bf16", 2),
        ("bs4 t32 h10 bf16 2 threads", 4, 32, 10, "bf16", 2),
        ("bs16 t32 h10 bf16 2 threads", 16, 32, 10, "bf16", 2),
        ("bs8 t16 h10 bf16 2 threads", 8, 16, 10, "bf16", 2),
        ("bs8 t16 h5 bf16 2 threads", 8, 16, 5, "bf16", 2),
        ("bs8 t16 h5 bf16w 2 threads", 8, 16, 5, "bf16w", 2),
        ("bs8 t16 h5 bf16 1 thread", 8, 16, 5, "bf16", 1),
    ],
    "quick": [
        ("bs8 t32 h10 fp32 2 threads", 8, 32, 10, "fp32", 2),
        ("bs8 t32 h10 bf16 2 threads", 8, 32, 10, "bf16", 2),
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--settings", default="default", choices=sorted(GRID))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/rerank_speed.md")
    a = ap.parse_args()
    import torch

    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create
    from genrec.models.rerank.prompts import PromptMaker
    from genrec.torch_utils import cpu_has_fast_bf16
    from genrec.training.validation import sample_valid

    t_all = time.perf_counter()
    load_start = load_average()
    sp = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
    cases = sample_valid(sp.test, a.users, a.seed)
    hists = [list(c.history) for c in cases]
    model = create("llm-rerank", backend="smollm2-135m", mode="verbalizer", candidates=20, seed=a.seed,
                   bf16=False).fit(sp)
    llm = model.llm
    fp32_state = {k: v.clone() for k, v in llm.model.state_dict().items()}
    rows, ref = [], None
    for name, bs, title, hist, prec, threads in GRID[a.settings]:
        torch.set_num_threads(threads)
        if prec == "bf16w":
            llm.model.to(torch.bfloat16)
        else:
            llm.model.load_state_dict(fp32_state)
            llm.model.to(torch.float32)
        llm.bf16 = prec == "bf16"
        llm.batch_size = model.batch_size = bs
        model._maker = PromptMaker("verbalizer", hist, title, llm.tokenizer)
        model.recommend(hists[:bs], k=10)  # warm-up: kernels, tokenizer caches
        t = time.perf_counter()
        got = model.recommend(hists, k=10)
        sec = time.perf_counter() - t
        # history and template tokens: the candidates counted as one-token placeholders
        tokens = sum(len(llm.encode(model._maker.render(h, ["x"] * 20))) for h in hists)
        if ref is None:
            ref = got.items
        row = {"setting": name, "batch_size": bs, "title_tokens": title, "history_items": hist, "precision": prec,
               "threads": threads, "users": len(hists), "seconds": round(sec, 2),
               "users_per_s": round(len(hists) / sec, 3), "prompt_tokens_mean": round(tokens / len(hists)),
               "same_top10_as_first": round(sum(x == y for x, y in zip(got.items, ref)) / len(hists), 3),
               "load_average": load_average()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": "loo", "seed": a.seed,
           "machine": machine(), "bf16_probe_pays": cpu_has_fast_bf16(), "load_average_start": load_start,
           "load_average_end": load_average(), "wall_seconds": round(time.perf_counter() - t_all, 1), "rows": rows}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    path.write_text(markdown(out))
    print(path.read_text())


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = [f"# Verbalizer re-ranking speed, SmolLM2-135M, {out['rows'][0]['users']} {out['dataset']} `loo` test users",
             "", f"Command: `{out['command']}`  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores; bf16 probe says bf16 pays: "
             f"{out['bf16_probe_pays']}; load average at start {out['load_average_start']}, at end "
             f"{out['load_average_end']} (other engineers share the CPU: compare rows, not absolute values).  ",
             f"Wall time {out['wall_seconds']} s. 20 candidates per user (item kNN's top 20), one forward pass "
             "per user; `bf16` = autocast, `bf16w` = bf16 weights; `same top-10` = share of users whose "
             "top 10 equals the first row's; `prompt tokens` = history and template tokens per user, "
             "the 20 candidate titles not counted (they add about as many again on ML-100K).", "",
             "| setting | prompts/pass | title tokens | history | precision | threads | prompt tokens | users/s "
             "| same top-10 | load (1 min) |", "|---" * 10 + "|"]
    for r in out["rows"]:
        lines.append(f"| {r['setting']} | {r['batch_size']} | {r['title_tokens']} | {r['history_items']} | "
                     f"{r['precision']} | {r['threads']} | {r['prompt_tokens_mean']} | {r['users_per_s']:.2f} | "
                     f"{r['same_top10_as_first']:.2f} | {r['load_average'][0]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
