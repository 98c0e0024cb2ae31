"""Training speed through genrec/training vs the hand-written loops it replaced, side by side.

SASRec training sequences/s (ML-100K `loo`, 3 epochs, no validation) and the scratch GPT-2's
training tokens/s (demo shop, GPT4Rec examples, 1 epoch), each measured in a fresh process per
run, old and new code interleaved (old, new, old, new, ...) so that load changes hit both.

    git worktree add --detach /tmp/old <commit before the trainer>
    OMP_NUM_THREADS=1 python benchmarks/trainer_speed.py --old /tmp/old [--reps 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_sasrec(data_dir: str | None) -> dict:
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split
    from genrec.models.baselines.sasrec import SASRec

    split = make_split(load_dataset("ml-100k", data_dir, preprocess="standard"), "loo", seed=0)
    params = inspect.signature(SASRec).parameters
    kw = dict(epochs=3, patience=None, progress=False, threads=1, seed=0)
    kw["valid_users" if "valid_users" in params else "valid_cases"] = 0
    m = SASRec(**kw)
    n_seq = sum(1 for s in split.train.items.values() if len(s) >= 2)
    t, c = time.perf_counter(), time.process_time()
    m.fit(split)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    info = getattr(m, "fit_info_", {})
    return {"seconds": secs, "samples_per_s": 3 * n_seq / secs, "samples_per_cpu_s": 3 * n_seq / cpu,
            "precision": info.get("precision", "auto")}


def child_lm(n_examples: int = 400, batch: int = 16) -> dict:
    from genrec.data.loaders.demo import make_demo_shop
    from genrec.data.splits import make_split
    from genrec.lm.scratch import build_model, train_tokenizer
    from genrec.lm.train import TrainConfig, build_examples, train_lm
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    sp = make_split(make_demo_shop().preprocess("gpt4rec"), "user", seed=0)
    tok = train_tokenizer(sp.catalog.titles + [gpt4rec_template().words()] * 50, vocab_size=4096)
    b = PromptBuilder(tok)
    tid = dict(zip(sp.catalog.ids, b.titles_ids(sp.catalog.titles)))
    ex = build_examples(b, [[tid[i] for i in s] for s in sp.train.items.values()], augment_prefixes=True)[:n_examples]
    n_tokens = sum(len(x) for x, _ in ex)
    m = build_model("tiny", tok, n_positions=232, seed=0)
    t, c = time.perf_counter(), time.process_time()
    res = train_lm(m, ex, TrainConfig(epochs=1, batch_size=batch, row_len=232, progress=False, seed=0),
                   pad_id=tok.eos_token_id, device="cpu")
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": secs, "tokens_per_s": n_tokens / secs, "tokens_per_cpu_s": n_tokens / cpu,
            "precision": getattr(res, "fit_info", {}).get("precision", "auto")}


def run_child(tree: Path, task: str, data_dir: str | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    code = (f"import sys, json, torch; torch.set_num_threads(1); sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
            f"import trainer_speed as t; print(json.dumps(t.child_{task}({'' if task == 'lm' else repr(data_dir)})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tree), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree} {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="a checkout of the code before the trainer")
    ap.add_argument("--new", default=str(ROOT))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from genrec.eval.runcard import load_average, machine

    trees = {"old": Path(a.old).resolve(), "new": Path(a.new).resolve()}
    commits = {k: subprocess.run(["git", "-C", str(p), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip() for k, p in trees.items()}
    load0, t0 = load_average(), time.perf_counter()
    runs: dict = {f"{k}/{task}": [] for k in trees for task in ("sasrec", "lm")}
    for rep in range(a.reps):
        for task in ("sasrec", "lm"):
            for k, tree in trees.items():
                r = run_child(tree, task, a.data_dir)
                runs[f"{k}/{task}"].append(r)
                print(rep, k, task, json.dumps(r), flush=True)
    key = {"sasrec": "samples_per_s", "lm": "tokens_per_s"}
    summary = {}
    for name, rs in runs.items():
        k = key[name.split("/")[1]]
        kc = k.replace("_per_s", "_per_cpu_s")  # per CPU second of the process: less sensitive to load
        summary[name] = {"median": round(statistics.median(r[k] for r in rs), 1), "all": [round(r[k], 1) for r in rs],
                         "cpu_median": round(statistics.median(r[kc] for r in rs), 1),
                         "cpu_all": [round(r[kc], 1) for r in rs], "precision": rs[0]["precision"]}
    meta = {"command": "python " + " ".join(sys.argv), "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "commits": commits, "machine": machine(), "load_average_start": load0, "load_average_end": load_average(),
            "wall_s": round(time.perf_counter() - t0, 1), "threads": 1, "summary": summary}
    print(json.dumps(meta, indent=1))
    if a.out:
        write(Path(a.out), meta)


def write(out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "trainer_speed.json").write_text(json.dumps(meta, indent=1))
    s = meta["summary"]
    lines = ["# Training speed: genrec/training vs the loops it replaced", "",
             f"Command: `{meta['command']}`  ", f"Date (UTC): {meta['date_utc']}; old code {meta['commits']['old']}, "
             f"new code {meta['commits']['new']}; seed 0; 1 torch thread; each number a fresh process, old and new "
             "interleaved.  ", f"Machine: {meta['machine'].get('cpu', '?')}, {meta['machine'].get('cpus')} CPUs; load "
             f"average {meta['load_average_start']} at start, {meta['load_average_end']} at end (shared machine: "
             f"compare old and new, not absolute numbers); wall time {meta['wall_s']} s.", "",
             "Per wall second and per CPU second of the training process (`time.process_time`; on a loaded "
             "machine the CPU-second rate is the steadier comparison).", "",
             "| what | old (median) | new (median) | new / old | old runs | new runs | precision (new) |",
             "|---|---|---|---|---|---|---|"]
    for task, label in (("sasrec", "SASRec training sequences/s (ML-100K loo, 3 epochs)"),
                        ("lm", "scratch GPT-2 training tokens/s (demo shop, 1 epoch)")):
        o, n = s[f"old/{task}"], s[f"new/{task}"]
        lines.append(f"| {label}, per wall s | {o['median']} | {n['median']} | {n['median'] / o['median']:.2f} | "
                     f"{o['all']} | {n['all']} | {n['precision']} |")
        lines.append(f"| {label}, per CPU s | {o['cpu_median']} | {n['cpu_median']} | "
                     f"{n['cpu_median'] / o['cpu_median']:.2f} | {o['cpu_all']} | {n['cpu_all']} | {n['precision']} |")
    (out / "trainer_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
