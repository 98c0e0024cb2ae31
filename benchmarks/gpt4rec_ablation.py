"""GPT4Rec training/decoding choices side by side on one split (same seed, same test users).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gpt4rec_ablation.py --dataset demo --epochs 8 \
        --configs '{"default": {}, "titles-loss": {"template_loss": false}}' --out benchmarks/results/gpt4rec_ablation_demo.json

Each config is a dict of GPT4Rec parameters over the shared ones (``--epochs``, ``--lm``); every
model is evaluated with m=10 queries at K=10/20/40 (one merge per K, as the paper) on all test users.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="demo")
    ap.add_argument("--lm", default="tiny")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--configs", required=True, help="JSON: {name: {param: value}}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average, machine
    from genrec.models.gpt4rec import GPT4Rec

    sp = load_split(DataConfig(dataset=a.dataset, split="user"), seed=a.seed)
    out = {"command": "python " + " ".join(sys.argv), "split": sp.describe(), "machine": machine(),
           "load_average_at_start": load_average(), "rows": []}
    for name, params in json.loads(a.configs).items():
        kw = {"lm": a.lm, "epochs": a.epochs, "num_queries": 10, "patience": None, "seed": a.seed, "progress": False,
              **({"domain": "movies"} if a.dataset.startswith("ml-") else {}), **params}
        t = time.perf_counter()
        model = GPT4Rec(**kw).fit(sp)
        fit_s = round(time.perf_counter() - t, 1)
        rep = evaluate(model, sp, ks=(10, 20, 40), seed=a.seed, progress=False)
        shown = sp.test[:2]
        row = {"config": name, "params": params, "fit_seconds": fit_s, "best_epoch": model.best_epoch_,
               "valid_per_epoch": [h.get("valid") for h in model.train_history_],
               "loss_per_epoch": [round(h["loss"], 3) for h in model.train_history_],
               **{k: v for k, v in rep.table.items() if k.startswith(("recall", "ndcg"))},
               "examples": [{"history": [sp.catalog[i].title for i in c.history[-3:]], "target": sp.catalog[c.target].title,
                             "queries": [q for q, _ in qs[:4]]}
                            for c, qs in zip(shown, model.generate_queries([list(c.history) for c in shown]))]}
        out["rows"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "examples"}), flush=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    out["load_average_at_end"] = load_average()
    Path(a.out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
