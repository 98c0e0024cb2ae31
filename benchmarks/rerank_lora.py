"""LoRA-trained verbalizer re-ranking (LlamaRec recipe, SmolLM2-135M) against the retriever alone
and the zero-shot re-ranker, on one seeded sample of test users, full-catalog HR/NDCG@5/10/20.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rerank_lora.py --dataset ml-100k --users 200 \
        --train-users 600 --lora-layers 10 --lr 5e-4 --threads 1 \
        [--model-dir /tmp/rlora/ml100k-lora] [--checkpoint-dir /tmp/rlora/ckpt-ml100k]

The trained model is fitted once (checkpoints under ``--checkpoint-dir``: rerunning the command
resumes), saved to ``--model-dir`` and reloaded from there when it already holds one. Training
uses training interactions only (each training user's last training item is the label; the
candidates are the retriever's top N for the rest); validation cases pick the best state; test
users are never seen. The test sample is ``evaluate(max_cases=--users, seed=--seed)``'s, the
same for every row. Writes benchmarks/results/rerank_lora_<dataset>.{json,md} with the command,
seed, sample size, training settings and time, tokens/s, machine and load.
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
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--train-users", type=int, default=600)
    ap.add_argument("--valid-users", type=int, default=100)
    ap.add_argument("--negatives", default="retriever")
    ap.add_argument("--label-loss", default="vocab")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--lora-layers", type=int, default=10)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-batch-size", type=int, default=4)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--time-budget", type=float, default=None, help="training stops after this many seconds")
    ap.add_argument("--history-items", type=int, default=10)
    ap.add_argument("--max-title-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--checkpoint-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--baseline-rows", default=None,
                    help="a JSON file for the retriever and zero-shot rows: written by --part baselines, read "
                         "(when its settings match) by the full run, so the two can run in parallel processes")
    ap.add_argument("--part", default="all", choices=("all", "baselines"))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create, load_model
    from genrec.torch_utils import cpu_has_fast_bf16

    t_all = time.perf_counter()
    out_path = Path(a.out or f"benchmarks/results/rerank_lora_{a.dataset}.md")
    load_start = load_average()
    sp = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
    common = dict(backend="smollm2-135m", mode="verbalizer", candidates=20, seed=a.seed,
                  history_items=a.history_items, max_title_tokens=a.max_title_tokens)
    train_params = dict(train_users=a.train_users, valid_users=a.valid_users, negatives=a.negatives,
                        label_loss=a.label_loss, lora_r=a.lora_r, lora_alpha=a.lora_alpha, lora_layers=a.lora_layers,
                        lr=a.lr, epochs=a.epochs, train_batch_size=a.train_batch_size, eval_every=a.eval_every,
                        max_steps=a.max_steps, time_budget=a.time_budget, checkpoint_dir=a.checkpoint_dir, progress=True)
    key = {"dataset": a.dataset, "users": a.users, "seed": a.seed, **common}
    if a.part == "baselines":
        zero = create("llm-rerank", **common).fit(sp)
        rows = [evaluate_row("itemknn (retriever alone)", zero.retriever_, sp, a),
                evaluate_row("llm-rerank zero-shot", zero, sp, a)]
        Path(a.baseline_rows).write_text(json.dumps({"key": key, "machine": machine(), "rows": rows}, indent=1))
        return
    t = time.perf_counter()
    saved = Path(a.model_dir) if a.model_dir else None
    if saved is not None and (saved / "rerank_state.json").is_file():
        trained = load_model(saved)
        print(f"loaded the trained model from {saved}", flush=True)
    else:
        trained = create("llm-rerank", **common, **train_params).fit(sp)
        if saved is not None:
            trained.save(saved)
    train_wall = time.perf_counter() - t
    info = trained.fit_info_.get("training", {})
    print(trained.fit_info_.get("lora"), flush=True)
    print(json.dumps({k: v for k, v in info.items() if k != "history"}, default=str), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": sp.describe(), "seed": a.seed,
           "test_users": a.users, "machine": machine(), "bf16": cpu_has_fast_bf16(), "threads": a.threads,
           "load_average_start": load_start, "train_params": train_params, "training": info,
           "train_wall_seconds": round(train_wall, 1), "rows": []}
    if a.baseline_rows:  # the parallel --part baselines process may still be evaluating
        for _ in range(240):
            if Path(a.baseline_rows).is_file():
                break
            time.sleep(10)
    pre = json.loads(Path(a.baseline_rows).read_text()) if a.baseline_rows and Path(a.baseline_rows).is_file() else None
    if pre is not None and pre["key"] == json.loads(json.dumps(key)):
        out["rows"] = [dict(r, note="evaluated by --part baselines in a parallel process") for r in pre["rows"]]
    else:
        zero = create("llm-rerank", **common).fit(sp)
        out["rows"] = [evaluate_row("itemknn (retriever alone)", zero.retriever_, sp, a),
                       evaluate_row("llm-rerank zero-shot", zero, sp, a)]
    out["rows"].append(evaluate_row(f"llm-rerank LoRA ({info.get('train_users', '?')} train users)", trained, sp, a))
    out["load_average_end"] = load_average()
    out["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    out_path.write_text(markdown(out))
    print(out_path.read_text())


def evaluate_row(name: str, m, sp, a) -> dict:
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average

    t = time.perf_counter()
    rep = evaluate(m, sp, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
    sec = time.perf_counter() - t
    row = {"model": name, "users": len(rep.per_case), "seconds": round(sec, 1),
           "users_per_s": round(len(rep.per_case) / sec, 3), "load_average": load_average(),
           **{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS}, **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS}}
    if hasattr(m, "rerank_stats"):
        row["top_from_retriever_rank"] = m.rerank_stats["top_from_retriever_rank"]
    print(json.dumps(row), flush=True)
    return row


def markdown(out: dict) -> str:
    cols = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]
    tr, p, m = out["training"], out["train_params"], out["machine"]
    n = out["rows"][0]["users"]
    lines = [f"# LoRA-trained verbalizer re-ranking, {out['dataset']} `loo`, {n} seeded test users", "",
             f"Command: `{out['command']}`  ",
             f"Sample: `evaluate(max_cases={out['test_users']}, seed={out['seed']})`, the same users for every row; "
             "full-catalog ranking (HR@K = Recall@K, one target per user); item kNN's top 20 re-ranked by "
             "SmolLM2-135M-Instruct (verbalizer: letter scores, one forward pass).  ",
             f"Training: {tr.get('train_users')} seeded training users (last training item = label, "
             f"{p['negatives']} negatives), loss `{p['label_loss']}` at the answer position, LoRA r={p['lora_r']} "
             f"alpha={p['lora_alpha']} on q,v of the last {p['lora_layers'] or 'all'} blocks, lr {p['lr']}, "
             f"{tr.get('epochs_run')} epoch(s), batch {p['train_batch_size']}, {tr.get('steps')} steps, "
             f"precision {tr.get('precision')}; {tr.get('train_seconds')} s training ({tr.get('tokens_per_s')} "
             f"tokens/s), stop: {tr.get('stop_reason')}; best validation NDCG@10 (re-ranked top 20, "
             f"{tr.get('valid_cases')} validation cases) {fmt(tr.get('best_valid'))} vs "
             f"{fmt((tr.get('valid_before') or {}).get('ndcg@10'))} zero-shot; adapter kept: {tr.get('adapter_kept')}.  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores, bf16 {out['bf16']}, "
             f"{out['threads']} torch thread(s); load average at start {out['load_average_start']}, at end "
             f"{out['load_average_end']} (shared CPU: times are under load).  ",
             f"Wall time {out['wall_seconds']} s (training and loading {out['train_wall_seconds']} s).", "",
             "| model | " + " | ".join(cols) + " | users/s |", "|---" * (len(cols) + 2) + "|"]
    for r in out["rows"]:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + f" | {r['users_per_s']:.2f} |")
    if any(r.get("note") for r in out["rows"]):
        lines += ["", "The retriever and zero-shot rows were evaluated by `--part baselines` (same settings and "
                  "users) in a separate process running in parallel with training, so their users/s are under "
                  "other load."]
    lines += ["", "Validation during training (step: loss, NDCG@10): " + ", ".join(
        f"{h['step']}: {h['loss']:.3f}, {h.get('ndcg@10', float('nan')):.4f}" for h in tr.get("history", [])) + ".",
        "", f"With {n} users one hit is {1 / max(n, 1):.4f} of HR: differences of a few hits are noise.", ""]
    return "\n".join(lines)


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


if __name__ == "__main__":
    main()
