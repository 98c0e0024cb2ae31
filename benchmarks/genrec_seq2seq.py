"""Benchmark GenRec seq2seq (Cao & Lio, 2024) on leave-one-out, full ranking, with/without pretraining.

    python benchmarks/genrec_seq2seq.py --dataset amazon-beauty --tag pretrain \
        --pretrain-epochs 3 --finetune-epochs 2

Writes ``benchmarks/results/genrec_seq2seq_<dataset>_<tag>.json`` (one run) and rewrites
``benchmarks/results/genrec_seq2seq_<dataset>.md`` from every JSON of that dataset, beside the
paper's numbers. Data are read from ../shared/datasets (never copied into the repository).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

METRICS = ("hr@5", "ndcg@5", "hr@10", "ndcg@10")


def paper(dataset: str) -> dict | None:
    """GenRec's Table 2 row for ``dataset`` (genrec.experiments.anchors), as hr@K / ndcg@K."""
    from genrec.experiments.anchors import ANCHORS

    rows = ANCHORS.get(f"genrec-table2-{dataset}")
    return {k.replace("recall@", "hr@"): v for k, v in rows[0].metrics.items()} if rows else None


def load(name: str):
    """The dataset through the registry (the sequences.txt loader), preprocessed 'standard'."""
    from genrec.data.registry import load_dataset

    return load_dataset(name, preprocess="standard")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--tag", default="pretrain", help="run name, e.g. pretrain / nopretrain")
    ap.add_argument("--pretrain-epochs", type=int, default=3)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--max-len", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--finetune-sample", type=float, default=1.0, help="fraction of prefixes per epoch")
    ap.add_argument("--init-std", type=float, default=0.1)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--valid-sample", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-users", type=int, default=2000, help="users timed for top-10 inference")
    ap.add_argument("--checkpoint-dir", default=None)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    import numpy as np

    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import load_average, machine, package_versions, peak_memory_mb
    from genrec.models.seq2seq import GenRecSeq2Seq
    from genrec.torch_utils import set_threads

    set_threads(a.threads)
    t_all = time.perf_counter()
    load_start = load_average()
    ds = load(a.dataset)
    split = make_split(ds, "loo", seed=a.seed)
    model = GenRecSeq2Seq(pretrain_epochs=a.pretrain_epochs, finetune_epochs=a.finetune_epochs, lr=a.lr,
                          batch_size=a.batch_size, d_model=a.d_model, layers=a.layers, heads=a.heads,
                          dropout=a.dropout, max_len=a.max_len, patience=a.patience,
                          valid_users=a.valid_sample, seed=a.seed, checkpoint_dir=a.checkpoint_dir,
                          progress=not a.no_progress, threads=a.threads,
                          finetune_sample=a.finetune_sample, init_std=a.init_std)
    t0 = time.perf_counter()
    model.fit(split)
    fit_s = time.perf_counter() - t0
    rep = evaluate(model, split, ks=(5, 10), which="test", progress=not a.no_progress, fit_seconds=fit_s)
    table = {"hr@5": rep.table["recall@5"], "ndcg@5": rep.table["ndcg@5"],
             "hr@10": rep.table["recall@10"], "ndcg@10": rep.table["ndcg@10"]}
    rng = np.random.default_rng(a.seed)
    pick = rng.choice(len(split.test), min(a.speed_users, len(split.test)), replace=False)
    hist = [list(split.test[i].history) for i in pick]
    t1 = time.perf_counter()
    model.recommend(hist, k=10)
    speed = len(hist) / (time.perf_counter() - t1)
    epochs = model.history_
    per_phase = {ph: [e["seconds"] for e in epochs if e["phase"] == ph] for ph in ("pretrain", "finetune")}
    out = {
        "dataset": a.dataset, "tag": a.tag, "protocol": "loo, full ranking over all items, history items excluded",
        "command": "python benchmarks/" + Path(__file__).name + " " + shlex.join(
            argv if argv is not None else sys.argv[1:]),
        "params": model.get_params(), "bf16": model.bf16_, "split": split.describe(),
        "metrics": {k: round(v, 5) for k, v in table.items()},
        "paper": paper(a.dataset),
        "epochs": epochs, "fit_info": model.fit_info_,
        "seconds_per_epoch": {ph: round(sum(v) / len(v), 1) for ph, v in per_phase.items() if v},
        "fit_seconds": round(fit_s, 1), "train_seconds_all_epochs": round(sum(e["seconds"] for e in epochs), 1), "eval_seconds": rep.run_card["eval_seconds"],
        "inference_users_per_s_top10": round(speed, 1), "peak_memory_mb": round(peak_memory_mb(), 1),
        "wall_seconds": round(time.perf_counter() - t_all, 1),
        "machine": {**machine(), "load_average_start": load_start,
                    "load_average_end": load_average()},
        "versions": package_versions(), "python": platform.python_version(),
        "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"genrec_seq2seq_{a.dataset}_{a.tag}.json").write_text(json.dumps(out, indent=1))
    write_markdown(a.dataset)
    print(json.dumps({k: out[k] for k in ("metrics", "seconds_per_epoch", "fit_seconds", "wall_seconds",
                                          "inference_users_per_s_top10", "peak_memory_mb")}, indent=1))
    return out


def _load_note(m: dict) -> str:
    if "load_average_start" in m:
        return f"load average {m['load_average_start'][0]} at start, {m['load_average_end'][0]} at end"
    return m.get("note", "load not recorded")


def write_markdown(dataset: str) -> Path:
    """Rebuild the dataset's results page from its run JSONs (hand-written notes kept below a marker)."""
    from genrec.eval.report import write_keeping_notes

    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"genrec_seq2seq_{dataset}_*.json"))]
    md = RESULTS / f"genrec_seq2seq_{dataset}.md"
    marker = "<!-- notes below are kept when the tables are regenerated -->"
    lines = [f"# GenRec seq2seq on {dataset}", "",
             "Leave-one-out (last item test, second last validation), full ranking over every catalog item, "
             "history items excluded; HR@k = Recall@k with one target. Generated by "
             "`benchmarks/genrec_seq2seq.py`. Times depend on what else ran on the 2 cores: each run's "
             "load average, as measured during the run, is listed with its command.", "",
             "| run | pretrain ep. | finetune ep. (best) | HR@5 | NDCG@5 | HR@10 | NDCG@10 | s/epoch pre / fine "
             "| train s | users/s top-10 | peak MB | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    published = paper(dataset)
    if published:
        lines.append("| paper (GenRec, Table 2) | 10 | 25 | " + " | ".join(f"{published[m]:.4f}" for m in METRICS)
                     + " | | | | | |")
    for r in runs:
        p, m, spe = r["params"], r["metrics"], r["seconds_per_epoch"]
        fine = sum(1 for e in r["epochs"] if e["phase"] == "finetune")
        frac = f" x {p['finetune_sample']}" if p.get("finetune_sample", 1.0) < 1 else ""
        lines.append(f"| {r['tag']} | {p['pretrain_epochs']} | {fine}{frac} ({r['fit_info'].get('best_epoch')}) | "
                     + " | ".join(f"{m[k]:.4f}" for k in METRICS)
                     + f" | {spe.get('pretrain', '-')} / {spe.get('finetune', '-')} | {r['train_seconds_all_epochs']} | "
                       f"{r['inference_users_per_s_top10']} | {r['peak_memory_mb']} | {r['wall_seconds']} |")
    lines += ["", "train s = sum of the epochs' training time (validation excluded), also when a run was resumed "
              "from its checkpoint; wall s = this process (a resumed run's wall time excludes earlier epochs).",
              "", "Exact commands, seeds and settings:", ""]
    for r in runs:
        p = r["params"]
        lines.append(f"- `{r['tag']}`: `{r['command']}` (seed {p['seed']}; d_model {p['d_model']}, layers "
                     f"{p['layers']}, heads {p['heads']}, max_len {p['max_len']}, lr {p['lr']}, batch "
                     f"{p['batch_size']}, dropout {p['dropout']}, init_std {p['init_std']}, finetune_sample {p['finetune_sample']}, bf16 {r['bf16']}; finished {r['finished_utc']} "
                     f"UTC; {r['machine'].get('cpu', '')}, {r['machine'].get('cpus')} CPUs; {_load_note(r['machine'])}; torch "
                     f"{r['versions'].get('torch')}, transformers {r['versions'].get('transformers')})")
        lines.append("  - epochs: " + "; ".join(
            f"{e['phase'][:3]} {e['epoch']}: loss {e['loss']}, valid NDCG@10 {e['valid_ndcg@10']}, {e['seconds']} s"
            for e in r["epochs"]))
    return write_keeping_notes(md, "\n".join(lines) + "\n\n", marker)


if __name__ == "__main__":
    main()
