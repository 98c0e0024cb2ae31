"""Rating prediction on MovieLens 100K: RMSE/MAE of SVD (scikit-surprise) against the global mean,
the user/item bias model, and SmolLM2-135M-Instruct zero-shot (Chat-Rec's rating task).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rating_ml100k.py --sample 300 --threads 1

Two splits: the ``loo`` split's test targets with their ratings (each user's last rating in time:
943 cases), and a seeded random 80/20 split of all rating pairs (the usual protocol). The LLM is
slow, so it rates a fixed seeded sample (``--sample``) of the ``loo`` test ratings; every predictor
is also scored on that same sample. Checkpointed: the LLM's distributions are saved after every
batch under ``--work`` and a rerun with the same arguments resumes. Writes
benchmarks/results/rating_ml-100k.{json,md} with the command, machine, load and wall times.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=300, help="loo test ratings the LLM rates (seeded sample)")
    ap.add_argument("--backend", default="smollm2-135m")
    ap.add_argument("--history-items", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-llm", action="store_true", help="skip the LLM rows")
    ap.add_argument("--work", default="/tmp/genrec-rating-ml100k", help="checkpoint folder")
    ap.add_argument("--out", default="benchmarks/results/rating_ml-100k.md")
    a = ap.parse_args()
    from genrec.data.ratings import random_rating_split, rating_cases
    from genrec.eval.rating import BiasBaseline, GlobalMean, rating_metrics
    from genrec.eval.runcard import load_average, machine, package_versions
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create

    t_all, load_start = time.perf_counter(), load_average()
    loo = load_split(DataConfig(dataset="ml-100k", split="loo"), seed=a.seed)
    cases = rating_cases(loo)
    rng = np.random.default_rng(a.seed)
    sample = [cases[i] for i in sorted(rng.choice(len(cases), min(a.sample, len(cases)), replace=False))]
    from genrec.data.registry import load_dataset

    rnd = random_rating_split(load_dataset("ml-100k", None, preprocess="standard"), 0.2, seed=a.seed)
    rnd_cases = rating_cases(rnd)
    rows: list[dict] = []

    def predictors(split):
        return [("global mean", GlobalMean()), ("user + item bias (surprise BaselineOnly)", BiasBaseline()),
                ("svd (surprise SVD, 100 factors, 20 epochs)", create("svd", seed=a.seed))]

    for split_name, split, test in (("loo", loo, cases), ("random 80/20", rnd, rnd_cases)):
        for name, p in predictors(split):
            t = time.perf_counter()
            p.fit(split)
            fit_s = time.perf_counter() - t
            row = {"split": split_name, "model": name, "fit_seconds": round(fit_s, 2),
                   "all": rating_metrics(p.predict_ratings([c.user for c in test], [c.item for c in test]),
                                         [c.rating for c in test])}
            if split_name == "loo":
                row["sample"] = rating_metrics(p.predict_ratings([c.user for c in sample], [c.item for c in sample]),
                                               [c.rating for c in sample])
            rows.append(row)
            print(json.dumps(row), flush=True)
    llm: dict = {}
    if not a.no_llm:
        llm = run_llm(a, loo, sample)
        for key, label in (("expected", "expected rating"), ("argmax", "most likely digit")):
            rows.append({"split": "loo", "model": f"{a.backend} zero-shot ({label})", "fit_seconds": None,
                         "all": None, "sample": rating_metrics(llm.pop(key), [c.rating for c in sample])})
            print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "dataset": "ml-100k", "preprocess": "standard",
           "loo_split": loo.describe(), "random_split": {k: v for k, v in rnd.describe().items() if k != "preprocess"},
           "seed": a.seed, "sample": len(sample), "loo_cases": len(cases), "random_cases": len(rnd_cases),
           "machine": machine(), "threads": a.threads, "versions": package_versions(),
           "load_average_start": load_start, "load_average_end": load_average(),
           "wall_seconds": round(time.perf_counter() - t_all, 1), "llm": llm, "rows": rows}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    from genrec.eval.report import write_keeping_notes
    from genrec.experiments.writer import MARKER

    write_keeping_notes(path, markdown(out, a), MARKER)
    print(path.read_text())


def run_llm(a, split, sample) -> dict:
    """The LLM's distributions over 1..5 for ``sample``, resumed from ``--work`` when present."""
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.llm_rating import RATING, LLMRater, argmax_rating, expected_rating
    from genrec.llm.local import HFBackend

    t = time.perf_counter()
    backend = HFBackend.load(a.backend, batch_size=a.batch_size)
    load_s = time.perf_counter() - t
    rater = LLMRater(backend, split.catalog, split.ratings, history_items=a.history_items, batch_size=a.batch_size)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"dist_{a.backend}_{a.seed}_{len(sample)}_{a.history_items}.npy"
    dist = np.load(ckpt) if ckpt.is_file() else np.full((len(sample), 5), np.nan)
    todo = [n for n in range(len(sample)) if np.isnan(dist[n]).any()]
    print(f"LLM: {len(sample) - len(todo)} of {len(sample)} ratings from the checkpoint {ckpt}", flush=True)
    t = time.perf_counter()
    for s in range(0, len(todo), a.batch_size):
        idx = todo[s:s + a.batch_size]
        dist[idx] = rater.distributions([sample[n] for n in idx], progress=False)
        np.save(ckpt, dist)
        print(f"  LLM ratings {len(sample) - len(todo) + s + len(idx)}/{len(sample)} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    secs = time.perf_counter() - t
    am = argmax_rating(dist)
    return {"expected": expected_rating(dist), "argmax": am, "backend": backend.describe(),
            "prompt_template": RATING.text, "example_prompt": rater.prompt(sample[0])[0]["content"],
            "history_items": a.history_items, "load_seconds": round(load_s, 1), "seconds": round(secs, 1),
            "seconds_per_prompt": round(secs / max(len(todo), 1), 3), "prompts_run": len(todo),
            "argmax_counts": {str(d): int((am == d).sum()) for d in range(1, 6)},
            "mean_distribution": [round(float(x), 4) for x in dist.mean(axis=0)],
            "true_counts": {str(d): int(sum(c.rating == d for c in sample)) for d in range(1, 6)}}


def markdown(out: dict, a) -> str:
    m = out["machine"]
    lines = ["# Rating prediction: MovieLens 100K, RMSE / MAE", "",
             f"Command: `{out['command']}`  ",
             f"Data: ml-100k (`standard` preprocessing: every rating kept, one per user-item pair), seed {out['seed']}. "
             f"`loo`: each user's last rating in time is the test case ({out['loo_cases']} cases; training: "
             f"the ratings before the validation item). `random 80/20`: a seeded random 20% of all rating pairs "
             f"({out['random_cases']:,} cases). Sample: a seeded {out['sample']} of the `loo` test ratings, "
             "the same for every row.  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores, {out['threads']} torch thread(s); "
             f"load average {out['load_average_start']} at the start, {out['load_average_end']} at the end "
             f"(a shared machine: timings are comparisons).  ",
             f"Wall time {out['wall_seconds']} s.", "",
             "| split | model | RMSE (all) | MAE (all) | RMSE (sample) | MAE (sample) | fit s |",
             "|---|---|---|---|---|---|---|"]

    def f(r, part, key):
        return f"{r[part][key]:.4f}" if r.get(part) else "–"

    for r in out["rows"]:
        lines.append(f"| {r['split']} | {r['model']} | {f(r, 'all', 'rmse')} | {f(r, 'all', 'mae')} | "
                     f"{f(r, 'sample', 'rmse')} | {f(r, 'sample', 'mae')} | "
                     + ("–" if r["fit_seconds"] is None else f"{r['fit_seconds']:.1f}") + " |")
    llm = out.get("llm") or {}
    if llm:
        lines += ["", f"LLM: `{a.backend}` through genrec's local backend, one forward pass per prompt, next-token "
                  f"scores of \"1\"..\"5\" renormalised; the last {llm['history_items']} rated history items in the "
                  f"prompt (titles cleaned and quoted by the `rating-zero-shot` template). "
                  f"{llm['prompts_run']} prompts in {llm['seconds']} s ({llm['seconds_per_prompt']} s per prompt, "
                  f"batches of {a.batch_size}; model load {llm['load_seconds']} s).  ",
                  f"Most likely digit over the sample (1..5): {llm['argmax_counts']}; true ratings: "
                  f"{llm['true_counts']}; mean distribution over 1..5: {llm['mean_distribution']}.", "",
                  "Example prompt (the first sampled case):", "", "```", llm["example_prompt"], "```"]
    return "\n".join(lines) + "\n\n"


if __name__ == "__main__":
    main()
