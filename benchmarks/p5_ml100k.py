"""P5-style multi-task prompts on MovieLens 100K ``loo`` (or another dataset): one scratch GPT-2
trained on the sequential, direct, yes/no and rating tasks, evaluated per task and per template
group (seen in training vs held out), beside popularity and SASRec on the same split and users.

    OMP_NUM_THREADS=1 python benchmarks/p5_ml100k.py --model-dir /tmp/p5/ml100k --time-budget 2400 \
        --users 300 --threads 1 [--dataset ml-100k] [--param key=value ...] [--phase all|train|eval]

``--phase train`` fits P5 (checkpoints under MODEL_DIR/checkpoints: an interrupted run resumes)
and saves it to MODEL_DIR; ``eval`` loads it and evaluates; ``all`` does both (a saved model in
MODEL_DIR is reused). Every task is evaluated on one seeded sample of ``--users`` test users:

- sequential: full-catalog HR/NDCG@5/10 (``evaluate(max_cases, seed)``): constrained beam
  search, then a popularity fill; each template separately;
- direct: HR@1/5 (and NDCG@5) of the target among 20 candidates (target + 19 seeded non-history
  items, :func:`genrec.eval.candidates.candidate_lists`), P5 scoring each candidate's likelihood;
- yes/no: AUC of P(Yes) for the target against ``--negatives`` seeded non-history items per user;
- rating (datasets with explicit ratings): RMSE/MAE of the expected rating of the test target.

Writes benchmarks/results/p5_<dataset>.{json,md} with the command, seed, sample, machine, load
averages and wall times.
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

KS = (5, 10)
BASE = dict(lm="tiny", epochs=1, lr=2e-3, batch_size=32, sequential_examples=10, direct_examples=2,
            yesno_examples=4, rating_examples=4, max_history=10, candidates=20, beams=20, vocab_size=4096, valid_users=200,
            progress=True)


def args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--phase", choices=("all", "train", "eval"), default="all")
    ap.add_argument("--time-budget", type=float, default=2700.0, help="P5 training seconds")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--sasrec-budget", type=float, default=900.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--out", default=None)
    return ap.parse_args()


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    from scipy.stats import rankdata

    s = np.concatenate([pos, neg])
    r = rankdata(s)
    return float((r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def train(a, split) -> dict:
    from genrec.models.registry import create, parse_params

    params = {**BASE, "seed": a.seed, "threads": a.threads, "time_budget": a.time_budget,
              "checkpoint_dir": str(Path(a.model_dir) / "checkpoints"), **parse_params(a.param, "p5")}
    t = time.perf_counter()
    model = create("p5", **params).fit(split)
    model.save(a.model_dir)
    info = {"fit_seconds": round(time.perf_counter() - t, 1), "params": params, "fit_info": model.fit_info_}
    (Path(a.model_dir) / "bench_fit.json").write_text(json.dumps(info, indent=1, default=str))
    print(json.dumps(info, default=str), flush=True)
    return info


def yesno_pairs(split, cases, n_neg: int, seed: int) -> list[tuple[list[str], str, int]]:
    """(history, item, label) per sampled user: the target (1) and ``n_neg`` non-history items (0)."""
    from genrec.models.p5.examples import sample_others

    ids = split.catalog.ids
    out = []
    for n, c in enumerate(cases):
        rng = np.random.default_rng([seed, 7, n])
        banned = {split.catalog.index_of(i) for i in c.history} | {split.catalog.index_of(c.target)}
        out.append((list(c.history), c.target, 1))
        out += [(list(c.history), ids[j], 0) for j in sample_others(rng, len(ids), banned, n_neg)]
    return out


def baseline_scores(model, pairs) -> np.ndarray:
    """A ranking baseline's score of each (history, item) pair (its full-catalog score)."""
    from genrec.eval.candidates import score_candidates

    return np.array([s[0] for s in score_candidates(model, [p[0] for p in pairs], [[p[1]] for p in pairs])])


def evaluate_all(a, split, model, fit: dict) -> dict:
    import torch

    from genrec.eval.candidates import candidate_lists, evaluate_candidates
    from genrec.eval.evaluate import evaluate
    from genrec.models.registry import create
    from genrec.prompts.tasks import family

    rows: list[dict] = []
    sample = evaluate(create("pop").fit(split), split, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
    users = {r["user"] for r in sample.per_case}
    cases = [c for c in split.test if c.user in users]
    t = time.perf_counter()
    sasrec = create("sasrec", epochs=100, patience=5, progress=False, seed=a.seed, threads=a.threads,
                    time_budget=a.sasrec_budget).fit(split)
    baselines = {"pop": create("pop").fit(split), "sasrec": sasrec}
    sasrec_s = round(time.perf_counter() - t, 1)
    torch.set_num_threads(a.threads)

    def add(task, model_name, template, group, metrics, seconds):
        rows.append({"task": task, "model": model_name, "template": template, "group": group,
                     **{k: round(float(v), 4) for k, v in metrics.items()}, "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)

    def groups(task):
        fam = family(task)
        return [(t.name, "seen") for t in fam.seen] + [(t.name, "held_out") for t in fam.held_out]

    # sequential: full catalog
    for name, b in baselines.items():
        t = time.perf_counter()
        rep = evaluate(b, split, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
        add("sequential", name, "-", "-", {**{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS},
                                            **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS}},
            time.perf_counter() - t)
    beams_named = {}
    for tmpl, group in groups("sequential"):
        model.template = tmpl
        t = time.perf_counter()
        rep = evaluate(model, split, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
        filled = [n for r in rep.per_case for n in r.get("notes", []) if "filled by" in n]
        beams_named[tmpl] = len(filled)
        add("sequential", "p5", tmpl, group, {**{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS},
                                               **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS}},
            time.perf_counter() - t)
    model.template = "seq-1"

    # direct: 20 candidates
    ccs = candidate_lists(split, 20, seed=a.seed, max_cases=None)
    ccs = [c for c in ccs if c.case.user in users]

    def direct_metrics(rep):
        return {"HR@1": rep.table["recall@1"], "HR@5": rep.table["recall@5"], "NDCG@5": rep.table["ndcg@5"]}

    for name, b in baselines.items():
        t = time.perf_counter()
        rep = evaluate_candidates(b, split, 20, ks=(1, 5), cases=ccs, progress=False, name=name)
        add("direct", name, "-", "-", direct_metrics(rep), time.perf_counter() - t)
    for tmpl, group in groups("direct"):
        t = time.perf_counter()
        scorer = _Scorer(model, tmpl)
        rep = evaluate_candidates(scorer, split, 20, ks=(1, 5), cases=ccs, progress=False, name=f"p5 {tmpl}")
        add("direct", "p5", tmpl, group, direct_metrics(rep), time.perf_counter() - t)

    # yes/no: AUC with sampled negatives
    pairs = yesno_pairs(split, cases, a.negatives, a.seed)
    labels = np.array([p[2] for p in pairs])
    for name, b in baselines.items():
        t = time.perf_counter()
        s = baseline_scores(b, pairs)
        add("yesno", name, "-", "-", {"AUC": auc(s[labels == 1], s[labels == 0])}, time.perf_counter() - t)
    for tmpl, group in groups("yesno"):
        t = time.perf_counter()
        s = model.prob_yes([p[0] for p in pairs], [p[1] for p in pairs], template=tmpl)
        add("yesno", "p5", tmpl, group, {"AUC": auc(s[labels == 1], s[labels == 0]),
                                         "mean P(Yes) pos": float(s[labels == 1].mean()),
                                         "mean P(Yes) neg": float(s[labels == 0].mean())}, time.perf_counter() - t)

    # rating
    rating_note = None
    if getattr(split, "ratings", None) and "rating" in model.tasks_trained_:
        from genrec.data.ratings import rating_cases
        from genrec.eval.rating import BiasBaseline, GlobalMean, evaluate_ratings

        rcs = [c for c in rating_cases(split) if c.user in users]
        for b in (GlobalMean(), BiasBaseline()):
            t = time.perf_counter()
            add("rating", b.name, "-", "-", evaluate_ratings(b.fit(split), rcs), time.perf_counter() - t)
        for tmpl, group in groups("rating"):
            t = time.perf_counter()
            add("rating", "p5", tmpl, group, evaluate_ratings(_Rater(model, tmpl), rcs), time.perf_counter() - t)
    else:
        rating_note = "no explicit ratings in this split (or the model was trained without them): rating not evaluated"
    return {"rows": rows, "users": len(cases), "sasrec_fit_seconds": sasrec_s, "sasrec_fit_info": sasrec.fit_info_,
            "sequential_users_with_popularity_fill": beams_named, "rating_note": rating_note}


class _Scorer:
    """P5's direct task with one template, in the candidate protocol's ``score_candidates`` form."""

    def __init__(self, model, template: str) -> None:
        self.model, self.template, self.name = model, template, f"p5 {template}"

    def score_candidates(self, histories, candidates):
        return self.model.score_candidates(histories, candidates, template=self.template)


class _Rater:
    def __init__(self, model, template: str) -> None:
        self.model, self.template = model, template

    def predict_ratings(self, users, items):
        return self.model.predict_ratings(users, items, template=self.template)


def _attach_ratings(a, split) -> None:
    """MovieLens 100K's explicit ratings as ``split.ratings`` ({user: {item: rating}}) when the
    loader does not keep them yet (genrec.data.ratings is being added on another branch)."""
    if getattr(split, "ratings", None) or a.dataset != "ml-100k":
        return
    path = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k" / "u.data"
    table: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        u, i, r, _ = line.split("\t")
        table.setdefault(u, {})[i] = float(r)
    split.ratings = table


def markdown(out: dict) -> str:
    return json.dumps(out, indent=1, default=str)


def main() -> None:
    a = args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import load_model

    t_all = time.perf_counter()
    load_start = load_average()
    split = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
    _attach_ratings(a, split)
    saved = (Path(a.model_dir) / "genrec_model.json").is_file()
    if a.phase == "train" or (a.phase == "all" and not saved):
        fit = train(a, split)
    else:
        fit = json.loads((Path(a.model_dir) / "bench_fit.json").read_text())
    if a.phase == "train":
        return
    model = load_model(a.model_dir)
    res = evaluate_all(a, split, model, fit)
    out = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": split.describe(),
           "seed": a.seed, "users": res["users"], "machine": machine(), "threads": a.threads,
           "load_average_start": load_start, "load_average_end": load_average(),
           "eval_wall_seconds": round(time.perf_counter() - t_all, 1), "p5_fit": fit, **res}
    path = Path(a.out or f"benchmarks/results/p5_{a.dataset.replace('-', '')}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    path.write_text(markdown(out))
    print(path.read_text())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
