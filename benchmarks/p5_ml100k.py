"""P5-style multi-task prompts on MovieLens 100K ``loo`` (or another dataset): one scratch GPT-2
trained on the sequential, direct, yes/no and rating tasks, evaluated per task and per template
group (seen in training vs held out), beside popularity and SASRec on the same split and users.

    OMP_NUM_THREADS=1 python benchmarks/p5_ml100k.py --model-dir /tmp/p5/ml100k --phase train \
        --time-budget 2700 --threads 1                     # fit P5, save it to MODEL_DIR
    OMP_NUM_THREADS=1 python benchmarks/p5_ml100k.py --model-dir /tmp/p5/ml100k --phase baselines \
        --users 120 --threads 1                            # pop + SASRec on every task -> MODEL_DIR_baselines.json
    OMP_NUM_THREADS=1 python benchmarks/p5_ml100k.py --model-dir /tmp/p5/ml100k --phase eval \
        --users 120 --threads 1                            # P5 on every task, the page

(``--phase all`` does the missing ones in turn; the phases can run at the same time on a shared
machine.) Training checkpoints go to MODEL_DIR/checkpoints, so an interrupted fit resumes. Every
task is evaluated on one seeded sample of ``--users`` test users:

- sequential: full-catalog HR/NDCG@5/10: constrained beam search, then a popularity fill;
- direct: HR@1/5 (and NDCG@5) of the target among 20 candidates (target + 19 seeded non-history
  items, :func:`genrec.eval.candidates.candidate_lists`), P5 scoring each candidate's likelihood;
- yes/no: AUC of P(Yes) for the target against ``--negatives`` seeded non-history items per user;
- rating (datasets with explicit ratings): RMSE/MAE of the expected rating of the test target,
  beside the global mean and the user/item bias baseline of :mod:`genrec.eval.rating`.

Template groups: ``seen`` rotates the templates used in training over the users, ``held_out`` is
the template never trained on. Writes benchmarks/results/p5_<dataset>.{json,md} with the
commands, seed, sample, machine, load averages and wall times of the three phases.
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
    ap.add_argument("--phase", choices=("all", "train", "baselines", "eval", "page"), default="all")
    ap.add_argument("--time-budget", type=float, default=2700.0, help="P5 training seconds")
    ap.add_argument("--users", type=int, default=150)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--sasrec-budget", type=float, default=600.0)
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

    from genrec.eval.runcard import load_average

    load0 = load_average()
    params = {**BASE, "seed": a.seed, "threads": a.threads, "time_budget": a.time_budget,
              "checkpoint_dir": str(Path(a.model_dir) / "checkpoints"), **parse_params(a.param, "p5")}
    t = time.perf_counter()
    model = create("p5", **params).fit(split)
    model.save(a.model_dir)
    info = {"fit_seconds": round(time.perf_counter() - t, 1), "params": params, "fit_info": model.fit_info_,
            "command": "python " + " ".join(sys.argv), "load_average_start": load0,
            "load_average_end": load_average()}
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


def sample_cases(split, a):
    """The seeded test users every task and model is evaluated on (evaluate()'s own sample)."""
    from genrec.eval.evaluate import evaluate
    from genrec.models.registry import create

    rep = evaluate(create("pop").fit(split), split, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
    users = {r["user"] for r in rep.per_case}
    return [c for c in split.test if c.user in users]


def _row(task, model, template, group, metrics, seconds) -> dict:
    row = {"task": task, "model": model, "template": template, "group": group,
           **{k: round(float(v), 4) for k, v in metrics.items()}, "seconds": round(seconds, 1)}
    print(json.dumps(row), flush=True)
    return row


def _seq_metrics(ranks: np.ndarray) -> dict:
    from genrec.eval.metrics import rank_metrics

    out = {}
    for k in KS:
        m = rank_metrics(ranks, k)
        out[f"HR@{k}"], out[f"NDCG@{k}"] = float(m["recall"].mean()), float(m["ndcg"].mean())
    return out


def _direct_metrics(rep) -> dict:
    return {"HR@1": rep.table["recall@1"], "HR@5": rep.table["recall@5"], "NDCG@5": rep.table["ndcg@5"]}


def evaluate_baselines(a, split, cases) -> dict:
    """pop and SASRec (and the rating baselines) on every task, same users and candidates."""
    from genrec.eval.candidates import candidate_lists, evaluate_candidates
    from genrec.eval.evaluate import evaluate
    from genrec.models.registry import create

    rows = []
    t = time.perf_counter()
    sasrec = create("sasrec", epochs=100, patience=5, progress=False, seed=a.seed, threads=a.threads,
                    time_budget=a.sasrec_budget).fit(split)
    sasrec_s = round(time.perf_counter() - t, 1)
    users = {c.user for c in cases}
    ccs = [c for c in candidate_lists(split, 20, seed=a.seed) if c.case.user in users]
    pairs = yesno_pairs(split, cases, a.negatives, a.seed)
    labels = np.array([p[2] for p in pairs])
    for name, b in (("pop", create("pop").fit(split)), ("sasrec", sasrec)):
        t = time.perf_counter()
        rep = evaluate(b, split, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
        rows.append(_row("sequential", name, "-", "-", {**{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS},
                                                         **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS}},
                         time.perf_counter() - t))
        t = time.perf_counter()
        rep = evaluate_candidates(b, split, 20, ks=(1, 5), cases=ccs, progress=False, name=name)
        rows.append(_row("direct", name, "-", "-", _direct_metrics(rep), time.perf_counter() - t))
        t = time.perf_counter()
        s = baseline_scores(b, pairs)
        rows.append(_row("yesno", name, "-", "-", {"AUC": auc(s[labels == 1], s[labels == 0])},
                         time.perf_counter() - t))
    if getattr(split, "ratings", None):
        from genrec.data.ratings import rating_cases
        from genrec.eval.rating import BiasBaseline, GlobalMean, evaluate_ratings

        rcs = [c for c in rating_cases(split) if c.user in users]
        for r in (GlobalMean(), BiasBaseline()):
            t = time.perf_counter()
            rows.append(_row("rating", r.name, "-", "-", evaluate_ratings(r.fit(split), rcs), time.perf_counter() - t))
    return {"rows": rows, "sasrec_fit_seconds": sasrec_s, "sasrec_fit_info": sasrec.fit_info_}


def evaluate_p5(a, split, cases, model) -> dict:
    """P5 on every task, per template group: ``seen`` rotates the seen templates over the users
    (user n gets template n mod #seen), ``held_out`` uses the held-out template."""
    from genrec.eval.candidates import candidate_lists, evaluate_candidates
    from genrec.prompts.tasks import family

    rows = []
    users = {c.user for c in cases}

    def groups(task):
        fam = family(task)
        return [("seen", [t.name for t in fam.seen]), ("held_out", [t.name for t in fam.held_out])]

    beam_share = {}
    for group, names in groups("sequential"):
        t = time.perf_counter()
        ranks = np.zeros(len(cases), dtype=np.int64)
        counts = []
        for n, c in enumerate(cases):
            items = model.recommend([list(c.history)], k=max(KS), template=names[n % len(names)]).items[0]
            counts += model.beam_counts
            ranks[n] = items.index(c.target) + 1 if c.target in items else 10**9
        beam_share[group] = round(float(np.mean(counts)), 2)
        rows.append(_row("sequential", "p5", "/".join(names), group, _seq_metrics(ranks), time.perf_counter() - t))
    ccs = [c for c in candidate_lists(split, 20, seed=a.seed) if c.case.user in users]
    for group, names in groups("direct"):
        t = time.perf_counter()
        rep = evaluate_candidates(_Scorer(model, names), split, 20, ks=(1, 5), cases=ccs, progress=False,
                                  name=f"p5 {group}")
        rows.append(_row("direct", "p5", "/".join(names), group, _direct_metrics(rep), time.perf_counter() - t))
    pairs = yesno_pairs(split, cases, a.negatives, a.seed)
    labels = np.array([p[2] for p in pairs])
    for group, names in groups("yesno"):
        t = time.perf_counter()
        s = np.concatenate([model.prob_yes([p[0]], [p[1]], template=names[(n // (1 + a.negatives)) % len(names)])
                            for n, p in enumerate(pairs)])
        rows.append(_row("yesno", "p5", "/".join(names), group,
                         {"AUC": auc(s[labels == 1], s[labels == 0]), "mean P(Yes) target": s[labels == 1].mean(),
                          "mean P(Yes) sampled": s[labels == 0].mean()}, time.perf_counter() - t))
    if getattr(split, "ratings", None) and "rating" in model.tasks_trained_:
        from genrec.data.ratings import rating_cases
        from genrec.eval.rating import rating_metrics

        rcs = [c for c in rating_cases(split) if c.user in users]
        for group, names in groups("rating"):
            t = time.perf_counter()
            pred = np.concatenate([model.predict_ratings([c.user], [c.item], template=names[n % len(names)])
                                   for n, c in enumerate(rcs)])
            rows.append(_row("rating", "p5", "/".join(names), group, rating_metrics(pred, [c.rating for c in rcs]),
                             time.perf_counter() - t))
    return {"rows": rows, "sequential_mean_items_from_beams": beam_share}


class _Scorer:
    """P5's direct task in the candidate protocol's ``score_candidates`` form, the templates
    rotated over the cases."""

    def __init__(self, model, templates: list[str]) -> None:
        self.model, self.templates, self.n = model, templates, 0

    def score_candidates(self, histories, candidates):
        out = []
        for h, c in zip(histories, candidates):
            out += self.model.score_candidates([h], [c], template=self.templates[self.n % len(self.templates)])
            self.n += 1
        return out


def _load(x) -> str:
    return str(x) if x is not None else "not recorded"


def markdown(out: dict) -> str:
    fit, m = out["p5_fit"], out["machine"]
    fi = fit.get("fit_info", {})
    b = out["baselines"]
    per_epoch = -(-int(fi.get("train_examples", 0)) // int(fit["params"].get("batch_size", 32)))
    planned = max(1, per_epoch * int(fit["params"].get("epochs", 1)))
    lines = [f"# P5-style multi-task prompts, {out['dataset']} `loo`, {out['users']} seeded test users", "",
             f"Command: `{out['command']}`  ",
             f"P5 training command (its last run): `{fit.get('command') or 'not recorded'}`  ",
             f"Baselines command: `{b.get('command', '')}`  ",
             f"Split: {out['split']}  ",
             f"Sample: `evaluate(max_cases={out['users']}, seed={out['seed']})`'s test users, the same for every task "
             f"and model; seed {out['seed']}.  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores, {out['threads']} torch thread(s), shared "
             f"with other jobs. Load average (1, 5, 15 min): training (last run) "
             f"{_load(fit.get('load_average_start'))} -> {_load(fit.get('load_average_end'))}; baselines {b.get('load_average_start')} -> {b.get('load_average_end')}; "
             f"P5 evaluation {out['load_average_start']} -> {out['load_average_end']}. Timings under this load are "
             "comparisons, not speeds.  ",
             f"Wall time: P5 training {fi.get('train_seconds')} s summed over its runs (the last run, which resumed "
             f"from the checkpoint when an earlier one hit its time budget, took {fit['fit_seconds']} s with "
             f"example building; {fi.get('steps')} optimizer steps of the {planned} planned "
             f"for {fit['params'].get('epochs')} epoch(s), i.e. {fi.get('steps', 0) / planned:.2f} of them; stop: "
             f"{fi.get('stop_reason')}, "
             f"{fi.get('tokens_per_s')} tokens/s, precision {fi.get('precision')}); baselines {b.get('seconds')} s "
             f"(SASRec fit {b.get('sasrec_fit_seconds')} s); P5 evaluation {out['p5_eval_seconds']} s.  ",
             f"P5: scratch GPT-2 `{fit['params'].get('lm')}`, {fi.get('train_examples')} training examples "
             f"({fi.get('examples_per_task')}), parameters `{json.dumps(fit['params'], default=str)}`.", "",
             "Tasks: **sequential**: full-catalog ranking, history excluded; P5 by catalog-constrained beam search "
             f"({fit['params'].get('beams')} beams), the rest of the list by training popularity (mean items from "
             f"beams in the top 10: {out['sequential_mean_items_from_beams']}). **direct**: the target among 20 "
             "candidates (19 seeded non-history items, `genrec.eval.candidates`); P5 scores each candidate's "
             f"likelihood as the answer. **yes/no**: AUC of P(Yes) for the target against {out['negatives']} seeded "
             "non-history item(s) per user (baselines: their score of the item). **rating**: RMSE/MAE of the expected "
             "rating of the test target (MovieLens explicit ratings). Template groups: `seen` rotates the templates "
             "used in training over the users; `held_out` is the template never trained on (P5's zero-shot "
             "prompt generalisation).", ""]
    for task, cols in (("sequential", ["HR@5", "HR@10", "NDCG@5", "NDCG@10"]), ("direct", ["HR@1", "HR@5", "NDCG@5"]),
                       ("yesno", ["AUC", "mean P(Yes) target", "mean P(Yes) sampled"]), ("rating", ["rmse", "mae", "n"])):
        rows = [r for r in out["rows"] if r["task"] == task]
        if not rows:
            continue
        lines += [f"## {task}", "", "| model | templates | group | " + " | ".join(cols) + " | seconds |",
                  "|---" * (len(cols) + 4) + "|"]
        for r in rows:
            vals = " | ".join("–" if r.get(c) is None else (f"{r[c]:.4f}" if c != "n" else str(int(r[c])))
                              for c in cols)
            lines.append(f"| {r['model']} | {r['template']} | {r['group']} | {vals} | {r['seconds']} |")
        lines.append("")
    n = out["users"]
    lines += [f"With {n} users one hit is {1 / n:.3f} of HR: differences of a few hits are noise.", ""]
    return "\n".join(lines)


def main() -> None:
    a = args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import load_model

    if a.phase == "page":  # rewrite the page from the results JSON (after a change of the page's layout)
        path = Path(a.out or f"benchmarks/results/p5_{a.dataset.replace('-', '')}.md")
        path.write_text(markdown(json.loads(path.with_suffix(".json").read_text())))
        return
    t_all = time.perf_counter()
    load_start = load_average()
    split = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
    model_dir = Path(a.model_dir)
    base_file = model_dir.with_name(model_dir.name + "_baselines.json")
    if a.phase == "train" or (a.phase == "all" and not (model_dir / "genrec_model.json").is_file()):
        train(a, split)
    if a.phase == "train":
        return
    cases = sample_cases(split, a)
    if a.phase == "baselines" or (a.phase == "all" and not base_file.is_file()):
        t = time.perf_counter()
        base = evaluate_baselines(a, split, cases)
        base.update(seconds=round(time.perf_counter() - t, 1), load_average_end=load_average(),
                    load_average_start=load_start, command="python " + " ".join(sys.argv))
        base_file.write_text(json.dumps(base, indent=1, default=str))
    if a.phase == "baselines":
        return
    base = json.loads(base_file.read_text())
    fit = json.loads((model_dir / "bench_fit.json").read_text())
    model = load_model(model_dir)
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    res = evaluate_p5(a, split, cases, model)
    out = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": split.describe(),
           "seed": a.seed, "users": len(cases), "negatives": a.negatives, "machine": machine(), "threads": a.threads,
           "load_average_start": load_start, "load_average_end": load_average(),
           "p5_eval_seconds": round(time.perf_counter() - t, 1), "eval_wall_seconds": round(time.perf_counter() - t_all, 1),
           "p5_fit": fit, "baselines": {k: v for k, v in base.items() if k != "rows"},
           "rows": base["rows"] + res["rows"], "sequential_mean_items_from_beams": res["sequential_mean_items_from_beams"]}
    path = Path(a.out or f"benchmarks/results/p5_{a.dataset.replace('-', '')}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    path.write_text(markdown(out))
    print(path.read_text())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
