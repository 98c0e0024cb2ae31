"""GPT4Rec on Amazon Beauty (user split, gpt4rec preprocessing): Recall@K for the paper's (m, K)
grid (Table 1) and Diversity/Coverage@K (Table 3), with a stated (possibly reduced) budget.

    nice -n 10 .venv/bin/python benchmarks/gpt4rec_beauty.py --lm small --epochs 1 \
        --train-users 4000 --test-users 100 --out benchmarks/results/gpt4rec_beauty.json

The paper fine-tunes GPT-2 (117M) on all training users; a reduced budget (fewer training users,
fewer epochs, a smaller scratch LM, a sample of test users) is reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import time

PAPER = {(5, 5): 0.0653, (10, 10): 0.1036, (20, 20): 0.1454, (40, 40): 0.2040}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm", default="small")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-users", type=int, default=0, help="0 = all")
    ap.add_argument("--test-users", type=int, default=100)
    ap.add_argument("--valid-users", type=int, default=50)
    ap.add_argument("--ms", default="5,10,20,40")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--target-only-loss", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/gpt4rec_beauty.json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.data.registry import load_dataset
    from genrec.data.sequences import Sequences
    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import machine
    from genrec.models.gpt4rec import GPT4Rec

    t0 = time.perf_counter()
    ds = load_dataset("amazon-beauty", preprocess="gpt4rec")
    sp = make_split(ds, "user", seed=a.seed)
    full_train = len(sp.train)
    if a.train_users and a.train_users < len(sp.train):
        users = sorted(sp.train.users)[: a.train_users]
        sp.train = Sequences({u: sp.train[u] for u in users}, None, list(sp.train.log) + [f"first {a.train_users} users"])
    out = {"args": vars(a), "split": sp.describe(), "train_users_used": len(sp.train),
           "train_users_available": full_train, "machine": machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    model = GPT4Rec(lm=a.lm, num_queries=10, epochs=a.epochs, valid_users=a.valid_users, augment_prefixes=False,
                    target_only_loss=a.target_only_loss, lr=a.lr, patience=None, seed=a.seed, progress=False)
    t = time.perf_counter()
    model.fit(sp)
    out["fit_seconds"] = time.perf_counter() - t
    out["train_history"] = model.train_history_
    out["k1"], out["b"] = model.k1_, model.b_
    out["results"] = {}
    for m in [int(x) for x in a.ms.split(",")]:
        model.num_queries = m
        ks = [k for k in (5, 10, 20, 40) if k >= m]
        t = time.perf_counter()
        rep = evaluate(model, sp, ks=ks, max_cases=a.test_users, seed=a.seed, progress=False)
        row = {k: v for k, v in rep.table.items()}
        row["eval_seconds"] = time.perf_counter() - t
        out["results"][str(m)] = row
        print(m, json.dumps({k: round(v, 4) for k, v in row.items() if k.startswith(("recall", "diversity_categories", "coverage_categories"))}), flush=True)
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    out["total_seconds"] = time.perf_counter() - t0
    out["paper_recall"] = {f"K={k},m={m}": v for (m, k), v in PAPER.items()}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "results"}, indent=1, default=str))


if __name__ == "__main__":
    main()
