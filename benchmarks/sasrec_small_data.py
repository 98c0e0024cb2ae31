"""Default SASRec against popularity on small data (issue 17, "Defaults that work on small data").

ML-100K, `loo` split (standard preprocessing), and seeded random subsamples of its users of the
size of the MovieLens latest-small set (671 users; the catalog keeps the items they rated).
SASRec runs with its default parameters (plus ``--param key=value`` overrides for experiments);
HR@10 (= Recall@10 with one target) and NDCG@10 on all test cases, full ranking.

    OMP_NUM_THREADS=1 python benchmarks/sasrec_small_data.py [--subsamples 3] [--users 671] \\
        [--param sasrec.KEY=VALUE] [--out benchmarks/results]

On a shared machine the data sets can run as separate processes and be collected afterwards:
``--only full`` / ``--only 0`` ... with ``--rows DIR`` (one JSON per data set), then
``--collect DIR --out benchmarks/results`` writes the page from them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def subsample(ds, n_users: int, seed: int):
    """``n_users`` users drawn with a local generator; the catalog keeps only their items."""
    import numpy as np

    from genrec.data.dataset import Dataset
    from genrec.data.sequences import Sequences

    users = sorted(ds.sequences.items)
    pick = sorted(np.random.default_rng(seed).choice(len(users), n_users, replace=False))
    items = {users[i]: ds.sequences.items[users[i]] for i in pick}
    used = {i for s in items.values() for i in s}
    return Dataset(f"{ds.name}-sub{n_users}-s{seed}", ds.catalog.subset(sorted(used)), Sequences(items), dict(ds.info))


def run(ds, params: dict, seed: int) -> dict:
    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.models.baselines.pop import PopRec
    from genrec.models.baselines.sasrec import SASRec

    split = make_split(ds, "loo", seed=seed)
    row = {"data": ds.name, "users": len(ds.sequences), "items": len(ds.catalog)}
    for name, model in (("pop", PopRec()), ("sasrec", SASRec(**{"progress": False, "seed": seed, **params}))):
        t = time.perf_counter()
        model.fit(split)
        fit_s = time.perf_counter() - t
        table = evaluate(model, split, ks=(10,), progress=False).table
        row[name] = {"hr@10": round(table["recall@10"], 4), "ndcg@10": round(table["ndcg@10"], 4),
                     "fit_s": round(fit_s, 1)}
        if name == "sasrec":
            row[name]["fit_info"] = model.fit_info_
            row[name]["valid_curve"] = [(h["step"], round(h.get("ndcg@10", float("nan")), 4)) for h in model.fit_history_]
        print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--subsamples", type=int, default=3)
    ap.add_argument("--users", type=int, default=671)
    ap.add_argument("--full", action=argparse.BooleanOptionalAction, default=True, help="also all of ML-100K")
    ap.add_argument("--param", action="append", default=[], help="sasrec.KEY=VALUE (JSON value)")
    ap.add_argument("--out", default=None, help="folder for sasrec_small_data.{json,md}")
    ap.add_argument("--only", default=None, help="'full' or a subsample seed: run just that data set")
    ap.add_argument("--rows", default=None, help="folder to write this run's rows and metadata to (JSON)")
    ap.add_argument("--collect", default=None, help="write the page from the --rows files of a folder")
    a = ap.parse_args()
    if a.collect:
        parts = [json.loads(f.read_text()) for f in sorted(Path(a.collect).glob("*.json"))]
        parts.sort(key=lambda p: (p["rows"][0]["users"] < 900, p["rows"][0]["data"]))
        rows = [r for p in parts for r in p["rows"]]
        meta = dict(parts[0]["meta"])
        meta["command"] = "; ".join(p["meta"]["command"] for p in parts) + " (in parallel); then python " + " ".join(sys.argv)
        meta["wall_s"] = max(p["meta"]["wall_s"] for p in parts)
        meta["load_average_start"] = [p["meta"]["load_average_start"] for p in parts]
        meta["load_average_end"] = [p["meta"]["load_average_end"] for p in parts]
        meta["subsample_seeds"] = sorted({s for p in parts for s in p["meta"]["subsample_seeds"]})
        write(Path(a.out), meta, rows)
        return
    import torch

    from genrec.data.registry import load_dataset
    from genrec.eval.runcard import load_average, machine

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    params = {}
    for p in a.param:
        k, v = p.split("=", 1)
        params[k.removeprefix("sasrec.")] = json.loads(v)
    load0, t0 = load_average(), time.perf_counter()
    ds = load_dataset("ml-100k", a.data_dir, preprocess="standard")
    seeds = list(range(a.subsamples))
    if a.only is not None:
        a.full, seeds = a.only == "full", [] if a.only == "full" else [int(a.only)]
    sets = ([ds] if a.full else []) + [subsample(ds, a.users, s) for s in seeds]
    rows = [run(d, params, seed=0) for d in sets]
    meta = {"command": "python " + " ".join(shlex.quote(x) for x in sys.argv),
            "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"), "split": "loo", "split_seed": 0,
            "model_seed": 0, "subsample_seeds": seeds, "sasrec_params": params or "defaults",
            "machine": machine(), "load_average_start": load0, "load_average_end": load_average(),
            "threads": torch.get_num_threads(), "wall_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps(meta))
    if a.rows:
        Path(a.rows).mkdir(parents=True, exist_ok=True)
        (Path(a.rows) / f"{a.only or 'all'}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if a.out:
        write(Path(a.out), meta, rows)


def write(out: Path, meta: dict, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sasrec_small_data.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    lines = ["# Default SASRec vs popularity on small data (ML-100K `loo` and 671-user subsamples)", "",
             f"Command: `{meta['command']}`  ", f"Date (UTC): {meta['date_utc']}; split `loo` seed 0, model seed 0, "
             f"subsample seeds {meta['subsample_seeds']}; SASRec parameters: {meta['sasrec_params']}.  ",
             f"Machine: {meta['machine'].get('cpu', '?')}, {meta['machine'].get('cpus')} CPUs, "
             f"{meta['threads']} torch thread(s); load average {meta['load_average_start']} at start, "
             f"{meta['load_average_end']} at end; wall time {meta['wall_s']} s.", "",
             "| data | users | items | pop HR@10 | pop NDCG@10 | SASRec HR@10 | SASRec NDCG@10 | SASRec steps | "
             "best epoch | stop | fit s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, s, fi = r["pop"], r["sasrec"], r["sasrec"]["fit_info"]
        lines.append(f"| {r['data']} | {r['users']} | {r['items']} | {p['hr@10']:.4f} | {p['ndcg@10']:.4f} | "
                     f"**{s['hr@10']:.4f}** | **{s['ndcg@10']:.4f}** | {fi['steps']} | {fi['best_epoch']} | "
                     f"{fi['stop_reason']} | {s['fit_s']} |")
    lines += ["", "HR@10 equals Recall@10 here (one target per case). All test cases, full ranking over the "
              "catalog, history items excluded. Subsamples draw users with `numpy.random.default_rng(seed)`. "
              "SASRec steps: optimizer steps until the default stopping rule ended training (validation at most "
              "every 50 steps, patience 5 validations, never before 500 steps); best epoch: the one whose state "
              "was kept. fit s: wall seconds of `fit` on this machine at the load averages above."]
    (out / "sasrec_small_data.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
