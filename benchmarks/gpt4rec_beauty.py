"""GPT4Rec on Amazon Beauty (user split, gpt4rec preprocessing): Recall@K for the paper's (m, K)
grid (Table 1) and Diversity/Coverage@K (Table 3), with a stated (possibly reduced) budget.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/gpt4rec_beauty.py --lm tiny --epochs 10 \
        --threads 2 --checkpoint-dir /tmp/g4r_beauty_ckpt --save-dir /tmp/g4r_beauty_model \
        --out benchmarks/results/gpt4rec_beauty_10ep.json

``--checkpoint-dir`` makes training resumable (run the same command again after an interruption);
``--model-dir`` skips training and evaluates a model saved by ``--save-dir``. Besides GPT4Rec the
script evaluates a reference that needs no language model: the user's own last m history titles
used as the m queries (same BM25, same merge, same k1/b grid); a useful LM must beat it.

The paper fine-tunes GPT-2 (117M) on all training users; a reduced budget (fewer training users,
fewer epochs, a smaller scratch LM, a sample of test users) is reported as such.
"""

from __future__ import annotations

import argparse
import json
import time

from genrec.experiments.anchors import ANCHORS

# GPT4Rec's own row of its Table 1 (K = m), from the package's table of published numbers.
_PAPER_ROW = next(a for a in ANCHORS["gpt4rec-table1-beauty"] if a.label.startswith("GPT4Rec"))
PAPER = {(int(k.split("@")[1]),) * 2: v for k, v in _PAPER_ROW.metrics.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm", default="tiny")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-users", type=int, default=0, help="0 = all")
    ap.add_argument("--test-users", type=int, default=500, help="0 = all")
    ap.add_argument("--valid-users", type=int, default=200)
    ap.add_argument("--ms", default="5,10,20,40")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--patience", type=int, default=0, help="0 = train every epoch")
    ap.add_argument("--target-only-loss", action="store_true")
    ap.add_argument("--decode", default="beam", help="beam (the paper), branch, greedy or sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-dir", default=None)
    ap.add_argument("--save-dir", default=None)
    ap.add_argument("--model-dir", default=None, help="evaluate this saved model instead of training")
    ap.add_argument("--out", default="benchmarks/results/gpt4rec_beauty.json")
    ap.add_argument("--render", default=None, help="only write the Markdown page of this results JSON "
                    "(and evaluate the tuned classical baselines on the same test users)")
    a = ap.parse_args()
    if a.render:
        render(a.render)
        return
    import torch

    torch.set_num_threads(a.threads)
    from genrec.data.sequences import Sequences
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average, machine
    from genrec.models.registry import load_model
    from genrec.models.gpt4rec import GPT4Rec
    from genrec.models.title_bm25 import TitleBM25

    t0 = time.perf_counter()
    sp = load_split(DataConfig(dataset="amazon-beauty", split="user", preprocess="gpt4rec"), seed=a.seed)
    full_train = len(sp.train)
    if a.train_users and a.train_users < len(sp.train):
        users = sorted(sp.train.users)[: a.train_users]
        sp.train = Sequences({u: sp.train[u] for u in users}, None, list(sp.train.log) + [f"first {a.train_users} users"])
    out = {"args": vars(a), "split": sp.describe(), "train_users_used": len(sp.train),
           "train_users_available": full_train, "machine": machine(),
           "load_average_at_start": load_average()}
    if a.model_dir:
        model = load_model(a.model_dir)
        if model.decode != a.decode:  # k1/b were tuned for the saved decoding: tune them again
            model.decode = a.decode
            model.retune_search(sp)
        out["loaded_from"] = a.model_dir
    else:
        model = GPT4Rec(lm=a.lm, num_queries=10, epochs=a.epochs, valid_users=a.valid_users, augment_prefixes=False,
                        target_only_loss=a.target_only_loss, lr=a.lr, decode=a.decode, patience=a.patience or None, seed=a.seed,
                        checkpoint_dir=a.checkpoint_dir, progress=True)
        t = time.perf_counter()
        model.fit(sp)
        out["fit_seconds"] = time.perf_counter() - t
        if a.save_dir:
            model.save(a.save_dir)
    out["train_history"] = model.train_history_
    out["best_epoch"] = model.best_epoch_
    out["k1"], out["b"] = model.k1_, model.b_
    out["load_average_after_fit"] = load_average()
    model.num_queries = 10
    shown = sp.test[:5]
    out["examples"] = [{"history": [sp.catalog[i].title for i in c.history[-5:]], "target": sp.catalog[c.target].title,
                        "queries": [[q, round(s, 3)] for q, s in qs]}
                       for c, qs in zip(shown, model.generate_queries([list(c.history) for c in shown]))]
    reference = TitleBM25(num_queries=10).fit(sp)
    out["reference_k1_b"] = [reference.k1_, reference.b_]
    out["results"], out["reference_results"] = {}, {}
    n_cases = a.test_users or None
    for m in [int(x) for x in a.ms.split(",")]:
        ks = [k for k in (5, 10, 20, 40) if k >= m]
        for name, rec, store in (("gpt4rec", model, out["results"]), ("title-bm25", reference, out["reference_results"])):
            rec.num_queries = m
            t = time.perf_counter()
            rep = evaluate(rec, sp, ks=ks, max_cases=n_cases, seed=a.seed, progress=False)
            row = dict(rep.table)
            row["eval_seconds"] = time.perf_counter() - t
            store[str(m)] = row
            print(name, m, json.dumps({k: round(v, 4) for k, v in row.items()
                                       if k.startswith(("recall", "diversity_categories", "coverage_categories"))}), flush=True)
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    out["total_seconds"] = time.perf_counter() - t0
    out["load_average_at_end"] = load_average()
    out["paper_recall"] = {f"K={k},m={m}": v for (m, k), v in PAPER.items()}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("results")}, indent=1, default=str))


BASELINES = "benchmarks/results/baselines_amazon-beauty_user.json"
SEQUENTIAL = "benchmarks/results/sequential/baselines_amazon-beauty_user.json"


def render(path: str) -> None:
    """Markdown page for a results JSON of this script: Table 1 (Recall@K per m) and Table 3
    (Diversity/Coverage), with the tuned baselines re-evaluated on the same sampled test users."""
    from pathlib import Path

    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.report import write_keeping_notes
    from genrec.models.registry import create

    d = json.loads(Path(path).read_text())
    a = d["args"]
    sp = load_split(DataConfig(dataset="amazon-beauty", split="user", preprocess="gpt4rec"), seed=a["seed"])
    n = a["test_users"] or len(sp.test)
    same = {}
    for r in json.loads(Path(BASELINES).read_text())["results"]:
        t = time.perf_counter()
        model = create(r["model"], **r["params"]).fit(sp)
        same[r["model"]] = evaluate(model, sp, ks=(5, 10, 20, 40), max_cases=n, seed=a["seed"], progress=False).table
        print(r["model"], round(time.perf_counter() - t, 1), "s", flush=True)
    seq = {r["model"]: r["metrics"] for r in json.loads(Path(SEQUENTIAL).read_text())["results"]}
    ms = sorted(int(m) for m in d["results"])
    ks = (5, 10, 20, 40)

    def cell(row: dict | None, key: str) -> str:
        return f"{row[key]:.4f}" if row and key in row else "-"

    hist = d.get("train_history", [])
    lines = [f"# GPT4Rec on Amazon Beauty, GPT4Rec's user split ({Path(path).name})", "",
             f"Command: `python benchmarks/gpt4rec_beauty.py {' '.join(f'--{k.replace(chr(95), chr(45))} {v}' for k, v in a.items() if v not in (None, False) and k != 'render')}`  ",
             f"Page: `python benchmarks/gpt4rec_beauty.py --render {path}`  ",
             f"Split: seed {a['seed']}, {d['split']['train_users']:,} training users ({d['train_users_used']:,} used), "
             f"{d['split']['test_cases']:,} test cases of which **{n} sampled** (seed {a['seed']}) for GPT4Rec, title-bm25 "
             f"and the baselines in Table 1; {d['split']['items']:,} items, full ranking, history excluded.  ",
             f"LM: `{a['lm']}` scratch GPT-2 + BPE tokenizer trained on the titles, {a['epochs']} epochs, lr {a['lr']}, "
             f"best epoch by validation Recall@10 ({a['valid_users']} users): {d.get('best_epoch')}; BM25 k1={d['k1']}, b={d['b']} "
             f"(grid on the validation users).  ",
             f"Machine: {d['machine'].get('cpu', d['machine'])}, 2 cores; load average at start {d.get('load_average_at_start')}, "
             f"after fit {d.get('load_average_after_fit')}, at end {d.get('load_average_at_end')}; "
             f"fit {d.get('fit_seconds', 0) / 60:.1f} min, total {d.get('total_seconds', 0) / 60:.1f} min.", "",
             "Training per epoch (loss, validation Recall@10, tokens/s): " + "; ".join(
                 f"{h['epoch']}: {h['loss']:.3f}, {h.get('valid')}, {h['tokens_per_s']:,.0f}" for h in hist), "",
             "## Table 1: Recall@K (each K its own merge of m queries, as the paper)", "",
             "| model | m | " + " | ".join(f"R@{k}" for k in ks) + " | " + " | ".join(f"N@{k}" for k in ks) + " |",
             "|---|---|" + "---|" * (2 * len(ks))]
    for m in ms:
        for name, res in (("GPT4Rec", d["results"]), ("title-bm25 (no LM)", d["reference_results"])):
            row = res[str(m)]
            lines.append(f"| {name} | {m} | " + " | ".join(cell(row, f"recall@{k}") for k in ks) + " | "
                         + " | ".join(cell(row, f"ndcg@{k}") for k in ks) + " |")
    for name, row in same.items():
        lines.append(f"| {name} (same {n} users) | - | " + " | ".join(cell(row, f"recall@{k}") for k in ks) + " | "
                     + " | ".join(cell(row, f"ndcg@{k}") for k in ks) + " |")
    for name, row in seq.items():
        lines.append(f"| {name} (all {d['split']['test_cases']:,} users) | - | " + " | ".join(cell(row, f"recall@{k}") for k in ks)
                     + " | " + " | ".join(cell(row, f"ndcg@{k}") for k in ks) + " |")
    lines.append("| *paper GPT4Rec (GPT-2 117M), K=m* | | " + " | ".join(f"*{PAPER[(k, k)]:.4f}*" for k in (5, 10, 20, 40))
                 + " | | | | |")
    lines += ["", "## Table 3: Diversity@K and Coverage@K (categories / brands), GPT4Rec with m = K", "",
              "| K | model | Diversity cat. | Coverage cat. | Diversity brand | Coverage brand |", "|---|---|---|---|---|---|"]
    for k in ks:
        if str(k) in d["results"]:
            for name, res in (("GPT4Rec", d["results"]), ("title-bm25", d["reference_results"])):
                row = res[str(k)]
                lines.append(f"| {k} | {name} | {cell(row, f'diversity_categories@{k}')} | {cell(row, f'coverage_categories@{k}')} | "
                             f"{cell(row, f'diversity_brand@{k}')} | {cell(row, f'coverage_brand@{k}')} |")
            for name in ("itemknn", "pop"):
                row = same.get(name)
                lines.append(f"| {k} | {name} | {cell(row, f'diversity_categories@{k}')} | {cell(row, f'coverage_categories@{k}')} | "
                             f"{cell(row, f'diversity_brand@{k}')} | {cell(row, f'coverage_brand@{k}')} |")
    if d.get("examples"):
        lines += ["", "## Queries for the first test users (m = 10, best first)", ""]
        for ex in d["examples"][:3]:
            lines.append(f"- history (last 5): {' | '.join(ex['history'])}  ")
            lines.append(f"  target: {ex['target']}  ")
            lines.append("  queries: " + " | ".join(f"{q} ({s})" for q, s in ex["queries"][:5]))
    write_keeping_notes(Path(path).with_suffix(".md"), "\n".join(lines) + "\n\n",
                        "<!-- notes below are written by hand -->")


if __name__ == "__main__":
    main()
