"""LLM re-ranking evaluation (issue 13): retriever alone vs each re-ranking mode and prompt option
on a fixed seeded sample of test users, full-catalog HR/NDCG@5/10/20, the position-bias table,
LLM-written explanations' hallucination rate, and the LLMRank protocol (target + 19 random items).

    OMP_NUM_THREADS=1 python benchmarks/rerank_eval.py --dataset ml-100k --users 100 --small-users 30 \
        [--configs verbalizer,verbalizer+profile,...] [--backend smollm2-135m] [--threads 1]

Resumable: every chunk of users appends its rows to benchmarks/results/rerank_eval_<dataset>.cases.jsonl
(one row per config and user); a later run with more ``--users`` extends the same sample (the
sample is a seeded permutation of the test users, the first U of it). The .json/.md are rewritten
from all rows after every config (benchmarks/rerank_eval_report.py writes them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import contextlib
import copy
import json
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHUNK = 8
# name -> (kind, llm-rerank params, sample: "users" or "small")
CONFIGS: dict[str, tuple[str, dict, str]] = {
    "itemknn": ("retriever", {}, "users"),
    "sasrec": ("retriever", {}, "users"),
    "verbalizer": ("rerank", {"mode": "verbalizer"}, "users"),
    "llmrank:verbalizer": ("llmrank", {"mode": "verbalizer"}, "users"),
    "llmrank:pop": ("llmrank", {}, "users"),
    "llmrank:sasrec": ("llmrank", {}, "users"),
    "verbalizer+profile": ("rerank", {"mode": "verbalizer", "profile": "on"}, "users"),
    "verbalizer+shots3": ("rerank", {"mode": "verbalizer", "shots": 3}, "users"),
    "verbalizer+recency": ("rerank", {"mode": "verbalizer", "recency": True}, "users"),
    "verbalizer+chat": ("rerank", {"mode": "verbalizer", "chat": True}, "users"),
    "verbalizer+profile+shots3": ("rerank", {"mode": "verbalizer", "profile": "on", "shots": 3}, "users"),
    "verbalizer+boot3": ("rerank", {"mode": "verbalizer", "bootstrap": 3}, "small"),
    "llmrank:verbalizer+boot3": ("llmrank", {"mode": "verbalizer", "bootstrap": 3}, "small"),
    "llmrank:likelihood": ("llmrank", {"mode": "likelihood"}, "users"),
    "auto+verbalizer": ("rerank-auto", {"mode": "verbalizer"}, "small"),
    "listwise": ("rerank", {"mode": "listwise"}, "small"),
    "listwise+shots3": ("rerank", {"mode": "listwise", "shots": 3}, "small"),
    "likelihood": ("rerank", {"mode": "likelihood"}, "small"),
    "verbalizer+lora": ("rerank-lora", {"mode": "verbalizer"}, "users"),
    "verbalizer+llm-reasons": ("rerank", {"mode": "verbalizer", "explain": "llm", "explain_top": 1}, "small"),
}
BASE = {"mode": "verbalizer", "profile": "off", "shots": 0, "recency": False, "chat": False, "bootstrap": 0,
        "explain": "grounded", "explain_top": 1}


@contextlib.contextmanager
def locked(meta_path: Path):
    """An exclusive lock beside the results (rows appended, runs file and pages rewritten under it)."""
    import fcntl

    with open(meta_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def save_run(meta_path: Path, run: dict, **extra) -> None:
    """Write this run's entry into the runs file, re-read under a lock, so several processes
    (one per core, different configs) can extend the same results at once without losing entries."""
    with locked(meta_path):
        runs = json.loads(meta_path.read_text()) if meta_path.is_file() else {"runs": []}
        runs.update(extra)
        mine = [i for i, r in enumerate(runs["runs"]) if r.get("run_id") == run["run_id"]]
        if mine:
            runs["runs"][mine[0]] = run
        else:
            runs["runs"].append(run)
        meta_path.write_text(json.dumps(runs, indent=1, default=str))


def rank_of(items, target) -> int:
    """1-based rank of ``target`` in ``items``, 0 when absent."""
    return items.index(target) + 1 if target in items else 0


def llmrank_candidates(case, catalog_ids, seed: int, n: int = 20) -> list[str]:
    """LLMRank's protocol: the target and n-1 seeded random items not in the history, shuffled."""
    import numpy as np

    rng = np.random.default_rng([seed, zlib.crc32(case.user.encode())])
    banned = set(case.history) | {case.target}
    negs: list[str] = []
    while len(negs) < n - 1:
        x = catalog_ids[int(rng.integers(len(catalog_ids)))]
        if x not in banned and x not in negs:
            negs.append(x)
    cands = negs + [case.target]
    return [cands[i] for i in rng.permutation(n).tolist()]


class Runner:
    def __init__(self, a):
        self.a = a
        from genrec.experiments.config import DataConfig
        from genrec.experiments.recipe import load_split
        from genrec.models.registry import create

        import numpy as np

        self.sp = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
        cases = list(self.sp.test)
        order = np.random.default_rng(a.seed).permutation(len(cases)).tolist()
        self.sample = [cases[i] for i in order]
        t = time.perf_counter()
        self.model = create("llm-rerank", backend=a.backend, candidates=a.candidates, seed=a.seed,
                            batch_size=a.batch_size, retriever_valid_users=a.valid_users).fit(self.sp)
        self.fit_seconds = {"itemknn+llm": round(time.perf_counter() - t, 1)}
        self._sasrec = self._lora = None
        self.catalog_ids = sorted(it.id for it in self.sp.catalog)
        from collections import Counter

        self.pop = Counter(i for s in self.sp.train.items.values() for i in s)

    def sasrec(self):
        if self._sasrec is None:
            from genrec.models.registry import create

            t = time.perf_counter()
            self._sasrec = create("sasrec", seed=self.a.seed, time_budget=self.a.sasrec_budget,
                                  threads=self.a.threads).fit(self.sp)
            self.fit_seconds["sasrec"] = round(time.perf_counter() - t, 1)
        return self._sasrec

    def lora(self):
        """The LoRA-trained re-ranker saved by benchmarks/rerank_lora.py --model-dir (``--lora-model``)."""
        if self._lora is None:
            from genrec.models.registry import load_model

            if not self.a.lora_model:
                print("--configs verbalizer+lora needs --lora-model DIR (a model saved by benchmarks/rerank_lora.py)",
                      file=sys.stderr)
                sys.exit(2)
            self._lora = load_model(self.a.lora_model)
            if self._lora.retriever != "itemknn" or self._lora.candidates != self.a.candidates:
                print(f"--lora-model {self.a.lora_model}: its retriever/candidates differ from this run's", file=sys.stderr)
                sys.exit(2)
        return self._lora

    def lora_summary(self) -> dict:
        """The LoRA model's folder and training summary (without the per-evaluation history), for the runs file."""
        info = self.lora().fit_info_.get("training", {})
        return {"dir": self.a.lora_model, **{k: v for k, v in info.items() if k != "history"}}

    def retriever_selection(self) -> dict:
        from genrec.models.rerank.fitting import best_by_validation, validation_scores

        n = self.a.candidates
        scores = validation_scores({"itemknn": self.model.retriever_, "sasrec": self.sasrec()}, self.sp, n=n,
                                   valid_users=self.a.valid_users, seed=self.a.seed)
        return {"validation": scores, "chosen": best_by_validation(scores, n), "criterion": f"validation ndcg@{n}"}

    def run_chunk(self, name: str, cases) -> list[dict]:
        kind, params, _ = CONFIGS[name]
        hists = [list(c.history) for c in cases]
        n = self.a.candidates
        t = time.perf_counter()
        rows = [{"config": name, "user": c.user, "target": c.target} for c in cases]
        if kind == "retriever":
            ret = self.model.retriever_ if name == "itemknn" else self.sasrec()
            items = ret.recommend(hists, k=n).items
            for r, c, it in zip(rows, cases, items):
                r.update(rank=rank_of(it, c.target), ret_pos=rank_of(it[:n], c.target) or None)
        elif kind in ("rerank", "rerank-auto", "rerank-lora"):
            m = self.lora() if kind == "rerank-lora" else self.model
            if kind == "rerank-auto":
                sel = self.selection
                if sel["chosen"] != "itemknn":
                    m = copy.copy(self.model)
                    m.retriever_ = self.sasrec()
            m.reconfigure(**{**BASE, **params})
            base = m.retriever_.recommend(hists, k=n).items
            recs = m.recommend(hists, k=n, users=[c.user for c in cases])
            for r, c, it, b, w in zip(rows, cases, recs.items, base, recs.why):
                r.update(rank=rank_of(it, c.target), ret_pos=rank_of(b, c.target) or None)
                if "llm_reasons" in w.extra:
                    r["reasons"] = w.extra["llm_reasons"]
                if w.profile:
                    r["profile"] = w.profile
            if m.mode == "listwise":
                rows[0]["listwise_stats_so_far"] = {k: v for k, v in m.rerank_stats.items() if k != "examples"}
        else:
            self._llmrank(name, params, cases, rows)
        sec = (time.perf_counter() - t) / len(cases)
        for r in rows:
            r["seconds"] = round(sec, 3)
        return rows

    def _llmrank(self, name, params, cases, rows) -> None:
        known = self.sp.catalog
        cands = [llmrank_candidates(c, self.catalog_ids, self.a.seed) for c in cases]
        if name == "llmrank:pop":
            orders = [sorted(range(len(cs)), key=lambda i: (-self.pop.get(cs[i], 0), i)) for cs in cands]
        elif name == "llmrank:sasrec":
            full = self.sasrec().recommend([list(c.history) for c in cases], k=len(known)).items
            orders = []
            for cs, lst in zip(cands, full):
                pos = {x: p for p, x in enumerate(lst)}
                orders.append(sorted(range(len(cs)), key=lambda i: (pos.get(cs[i], len(pos)), i)))
        else:
            from genrec.models.rerank.ranking import Task, rank_tasks

            m = self.model.reconfigure(**{**BASE, **params})
            tasks = [Task(m._maker.shown_history([known[i].title for i in c.history]), cs, [known[i].title for i in cs])
                     for c, cs in zip(cases, cands)]
            rank_tasks(m.llm, m._maker, tasks, bootstrap=m.bootstrap, seed=m.seed)
            orders = [t.order for t in tasks]
        for r, c, cs, order in zip(rows, cases, cands, orders):
            ranked = [cs[i] for i in order]
            r.update(rank=rank_of(ranked, c.target), ret_pos=cs.index(c.target) + 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--users", type=int, default=100, help="users for the affordable configs")
    ap.add_argument("--small-users", type=int, default=30, help="users for likelihood/listwise/bootstrap/reasons")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--backend", default="smollm2-135m")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--valid-users", type=int, default=1000)
    ap.add_argument("--sasrec-budget", type=float, default=900.0, help="SASRec training time budget, seconds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--lora-model", default=None, help="verbalizer+lora: a model saved by rerank_lora.py --model-dir")
    ap.add_argument("--report-only", action="store_true", help="rewrite .json/.md from the saved rows")
    a = ap.parse_args()
    names = [x.strip() for x in a.configs.split(",") if x.strip()]
    bad = [x for x in names if x not in CONFIGS]
    if bad:
        print(f"--configs: unknown {', '.join(bad)}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
        sys.exit(2)
    out = Path(a.out or f"benchmarks/results/rerank_eval_{a.dataset}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows_path = out.with_suffix(".cases.jsonl")
    meta_path = out.with_suffix(".runs.json")
    from rerank_eval_report import write_report

    if a.report_only:
        write_report(out, rows_path, meta_path)
        return
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.runcard import load_average, machine

    t_all = time.perf_counter()
    run = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": "loo", "seed": a.seed,
           "backend": a.backend, "candidates": a.candidates, "machine": machine(), "threads": a.threads,
           "load_average_start": load_average(), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    run["run_id"] = f"{run['started_utc']} pid {os.getpid()}"
    save_run(meta_path, run)
    R = Runner(a)
    run["fit_seconds"] = R.fit_seconds
    run["split"] = R.sp.describe()
    run["llm"] = R.model.llm.describe().get("model")
    done: dict[str, set] = {}
    if rows_path.is_file():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done.setdefault(r["config"], set()).add(r["user"])

    def publish() -> None:
        """The run's entry and the pages from all rows so far (after every config)."""
        run["load_average_now"] = load_average()
        run["wall_seconds"] = round(time.perf_counter() - t_all, 1)
        save_run(meta_path, run)
        with locked(meta_path):
            write_report(out, rows_path, meta_path)

    for name in names:
        if (name == "sasrec" or CONFIGS[name][0] == "rerank-auto") and not hasattr(R, "selection"):
            R.selection = R.retriever_selection()  # fits SASRec: done when first needed
            save_run(meta_path, run, retriever_selection=R.selection)
        if CONFIGS[name][0] == "rerank-lora":
            run["lora_model"] = R.lora_summary()
        cap = a.users if CONFIGS[name][2] == "users" else min(a.small_users, a.users)
        todo = [c for c in R.sample[:cap] if c.user not in done.get(name, set())]
        print(f"{name}: {len(todo)} of {cap} users to do", flush=True)
        shown = time.perf_counter()
        for s in range(0, len(todo), CHUNK):
            rows = R.run_chunk(name, todo[s:s + CHUNK])
            with locked(meta_path), rows_path.open("a") as f:
                f.write("".join(json.dumps(r, default=str) + "\n" for r in rows))
            if time.perf_counter() - shown >= 10 or s + CHUNK >= len(todo):  # a line per ~10 s, not per chunk
                shown = time.perf_counter()
                print(f"  {name}: {s + len(rows)}/{len(todo)} ({rows[0]['seconds']} s/user, load {load_average()})",
                      flush=True)
        publish()
    if not names:
        publish()


if __name__ == "__main__":
    main()
