"""Does the LLM's ranking step (``genrec serve --chat-llm-rank N``) make ``POST /chat`` answers
better? MovieLens 100K, ``loo`` split: HR@10 and NDCG@10 of the held-out item, with and without it.

The request is synthetic. For each user of a fixed seeded sample of test users, the message is
built only from the held-out target's genres (the catalog's categories), e.g. "a comedy, romance
movie", and the user's history before the target (the loo test case's history) is sent as
``history``; the answer's top 10 is compared with the target. So this measures whether the LLM,
shown that genre request and the top N fused candidates' titles (:mod:`genrec.serve.chat_rank`),
puts the user's next movie higher than the fusion did: whether it can tell a movie's genres from
its title and weigh them against the candidates' order. It does not measure real conversational
requests (no wording beyond genres, no "like X but Y", no follow-up turns), and many movies share
a target's genres, so absolute numbers are low: the point is the paired difference on the same users.

Configurations, in one in-process service (the same LLM, search and served model; only
``llm_rank`` differs, switched between the two calls of each user):

- ``fused``: the LLM writes the search query; the answer is the fused order (``llm_rank`` 0);
- ``llm-rank N``: the same, then the LLM re-orders the top N of the fused list (one forward pass).

Both ask for ``k = max(10, N)`` items and score the top 10, so with N > 10 the ranking step can
bring an item from places 11..N into the top 10 (the service ranks only what it returns). The
served model is itemknn fitted on the split. Reported: HR@10, NDCG@10, the paired bootstrap 95%
interval of the per-user difference (``llm-rank`` minus ``fused``), users/s per configuration
(time in ``/chat`` calls; TestClient, so no HTTP), how often the ranking call failed or left
letters unscored, machine, load average, command, seed and U. Writes
``benchmarks/results/chat_rank_quality_ml-100k.{json,md}`` (``--out`` to change).

Run (a quick check: ``--backend scratch --users 8``)::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/chat_rank_quality.py \\
        --users 200 --seed 0 --backend smollm2-135m --threads 1 --llm-rank 20
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATASET = "ml-100k"
TOP = 10
OUT = Path(__file__).parent / "results" / f"chat_rank_quality_{DATASET}"


def genre_request(genres: Sequence[str]) -> str:
    """The synthetic message: "a comedy, romance movie" from the item's genres ("a movie" when it
    has none but "unknown")."""
    words = [g.lower() for g in genres if g and g.lower() != "unknown"]
    if not words:
        return "a movie"
    text = ", ".join(words)
    return f"{'an' if text[0] in 'aeiou' else 'a'} {text} movie"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200, help="test users in the seeded sample (U)")
    ap.add_argument("--seed", type=int, default=0, help="the split's and the sample's seed")
    ap.add_argument("--backend", default="smollm2-135m", help="the chat LLM (scratch for a quick check)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--llm-rank", type=int, default=20, help="N: how many fused candidates the LLM re-orders")
    ap.add_argument("--out", default=str(OUT), help="output path without suffix (.json and .md are written)")
    a = ap.parse_args(argv)
    from genrec.serve.chatting import check_llm_rank

    if a.users < 1:
        ap.error(f"--users must be >= 1, got {a.users}")
    if a.threads < 1:
        ap.error(f"--threads must be >= 1, got {a.threads}")
    try:
        check_llm_rank(a.llm_rank)
    except ValueError as e:
        ap.error(f"--llm-rank {e}")
    if a.llm_rank == 0:
        ap.error("--llm-rank 0 would compare the fused order with itself; give 2..26")
    return a


def load(seed: int) -> Any:
    """The ML-100K loo split, or None (with the reason on stderr) when the dataset is not here."""
    from genrec.errors import GenrecError
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split

    try:
        return load_split(DataConfig(dataset=DATASET, split="loo"), seed=seed)
    except GenrecError as e:
        if "not found" not in str(e):
            raise
        print(f"skipped: the {DATASET} dataset is not available ({e})", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> None:
    a = parse_args(argv)
    split = load(a.seed)
    if split is None:
        return
    import numpy as np
    import torch

    from chat_turns import in_process
    from rerank_eval import rank_of

    from genrec.eval.runcard import load_average, machine, package_versions
    from genrec.models.registry import create
    from genrec.serve.chatting import ChatConfig

    torch.set_num_threads(a.threads)
    started, t_all, load_start = datetime.now(timezone.utc), time.perf_counter(), load_average()
    cases = list(split.test)
    sample = [cases[i] for i in np.random.default_rng(a.seed).permutation(len(cases))[:a.users].tolist()]
    model = create("itemknn").fit(split)
    k = max(TOP, a.llm_rank)
    configs = {"fused": 0, f"llm-rank {a.llm_rank}": a.llm_rank}
    base = ChatConfig(backend=a.backend, llm_rank=a.llm_rank)
    rows: list[dict] = []
    seconds = dict.fromkeys(configs, 0.0)
    with in_process(model, base) as (client, app, startup):
        engine = app.state.chat
        for n, case in enumerate(sample, 1):
            message = genre_request(split.catalog[case.target].categories)
            row: dict[str, Any] = {"user": case.user, "target": case.target, "message": message}
            for name, llm_rank in configs.items():
                engine.config = replace(base, llm_rank=llm_rank)
                t = time.perf_counter()
                r = client.post("/chat", json={"message": message, "history": list(case.history), "k": k})
                seconds[name] += time.perf_counter() - t
                if r.status_code != 200:
                    raise RuntimeError(f"user {case.user}, {name}: /chat answered {r.status_code}: {r.text[:300]}")
                d = r.json()
                ids = [x["item_id"] for x in d["items"]]
                row[name] = {"rank": rank_of(ids[:TOP], case.target), "rank_in_k": rank_of(ids, case.target),
                             "llm_query": next((q["query"] for q in d["queries"] if q["source"] == "llm"), None),
                             "rank_error": d["llm"]["rank_error"],
                             "unscored_note": any("gave no score" in x for x in d["notes"])}
            rows.append(row)
            if n % 10 == 0 or n == len(sample):
                print(f"{n}/{len(sample)} users, load {load_average()}", file=sys.stderr, flush=True)
    res = summarize(rows, configs, seconds)
    res.update({
        "command": "python " + " ".join(shlex.quote(x) for x in (sys.argv if argv is None else
                                                                   ["benchmarks/chat_rank_quality.py", *argv])),
        "dataset": DATASET, "split": "loo", "seed": a.seed, "users": len(sample), "backend": a.backend,
        "llm_rank": a.llm_rank, "k": k, "top": TOP, "served_model": "itemknn", "threads": a.threads,
        "startup_seconds": round(startup, 2), "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - t_all, 1), "machine": machine(),
        "load_average_start": load_start, "load_average_end": load_average(), "versions": package_versions(),
        "split_info": split.describe(), "rows": rows})
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, ensure_ascii=False, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}", file=sys.stderr)


def summarize(rows: list[dict], configs: dict[str, int], seconds: dict[str, float]) -> dict:
    """Per-configuration HR/NDCG@10 and users/s, and the paired difference of the ranked one."""
    from rerank_eval_report import _ndcg10, paired_ci

    n = len(rows)
    out: dict[str, Any] = {"configs": {}}
    for name in configs:
        ranks = [r[name]["rank"] for r in rows]
        out["configs"][name] = {
            f"HR@{TOP}": sum(1 for x in ranks if x) / n, f"NDCG@{TOP}": sum(_ndcg10(x) for x in ranks) / n,
            "users_per_second": round(n / seconds[name], 3) if seconds[name] else None,
            "seconds": round(seconds[name], 1),
            "rank_errors": sum(1 for r in rows if r[name]["rank_error"]),
            "unscored_notes": sum(1 for r in rows if r[name]["unscored_note"])}
    fused, ranked = list(configs)
    diff = {}
    for metric, f in ((f"HR@{TOP}", lambda x: float(x > 0)), (f"NDCG@{TOP}", _ndcg10)):
        mean, lo, hi = paired_ci([f(r[ranked]["rank"]) - f(r[fused]["rank"]) for r in rows])
        diff[metric] = {"mean": mean, "ci95": [lo, hi]}
    moved = [r for r in rows if r[ranked]["rank"] != r[fused]["rank"]]
    out["difference"] = {"of": f"{ranked} minus {fused}", **diff, "bootstrap": "paired, 2000 resamples, seed 0",
                         "users_target_moved": len(moved),
                         "users_up": sum(1 for r in moved if _ndcg10(r[ranked]["rank"]) > _ndcg10(r[fused]["rank"])),
                         "users_down": sum(1 for r in moved if _ndcg10(r[ranked]["rank"]) < _ndcg10(r[fused]["rank"]))}
    return out


def markdown(res: dict) -> str:
    m, d = res["machine"], res["difference"]
    L = [f"# POST /chat with and without the LLM's ranking step ({res['dataset']}, {res['split']})", "",
         f"Command: `{res['command']}`  ",
         f"Date (UTC): {res['started_utc']}; wall {res['wall_seconds']:.0f} s; service start-up "
         f"{res['startup_seconds']:.1f} s.  ",
         f"Machine: {m.get('cpu', m.get('processor'))}, {m.get('cpus')} CPUs, {res['threads']} torch thread(s); "
         f"load average (1, 5, 15 min) {res['load_average_start']} at the start, {res['load_average_end']} at "
         "the end (a shared machine: users/s compare the configurations, they are not absolute).  ",
         f"Data: {res['users']} test users (a seeded sample, seed {res['seed']}); LLM {res['backend']}; served "
         f"model {res['served_model']}; k={res['k']} asked, the top {res['top']} scored.", "",
         "The request is synthetic: the held-out item's genres as a message (\"a comedy, romance movie\"), the "
         "user's history before it as `history`. It measures whether the LLM, given a genre request and the "
         "candidates' titles, places the user's next movie higher than the fusion did; not real conversational "
         "requests.", "",
         f"| configuration | HR@{res['top']} | NDCG@{res['top']} | users/s | ranking call failed | letters unscored |",
         "|---|---|---|---|---|---|"]
    hr, ndcg = f"HR@{res['top']}", f"NDCG@{res['top']}"
    for name, c in res["configs"].items():
        L.append(f"| {name} | {c[hr]:.4f} | {c[ndcg]:.4f} | {c['users_per_second']} | {c['rank_errors']} | "
                 f"{c['unscored_notes']} |")
    L += ["", f"Difference ({d['of']}, per user, {d['bootstrap']}):", ""]
    for metric in (hr, ndcg):
        lo, hi = d[metric]["ci95"]
        L.append(f"- {metric}: {d[metric]['mean']:+.4f} (95% CI {lo:+.4f} to {hi:+.4f})")
    L.append(f"- the target's place changed for {d['users_target_moved']} users: up for {d['users_up']}, "
             f"down for {d['users_down']}")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
