"""GenRec instruction-tuned (``genrec-llm``) on a real dataset's ``loo`` split: constrained beam
search against BIGRec grounding, the paper's own exact-match protocol beside the full ranking, the
valid-generation rate, and pop / item kNN / SASRec on the same seeded test users.

    OMP_NUM_THREADS=1 python benchmarks/genrec_llm.py --dataset ml-100k --users 500 \
        --param lm=small --param domain=movies --time-budget 3000 [--phase fit|eval|all]

``--phase fit`` trains (checkpoints under ``--work``; rerunning resumes) and saves the model;
``--phase eval`` loads it and evaluates; ``all`` does both. The test users are
``evaluate(max_cases=--users, seed=--seed)``'s sample, the same for every row. Writes
benchmarks/results/genrec_llm_<dataset>[<suffix>].{json,md} with the command, machine, load
averages, wall times, training time, tokens/s, users/s and peak memory.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import sys
import time
from pathlib import Path

KS = (5, 10)
DOMAIN = {"ml-100k": "movies"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--users", type=int, default=500, help="seeded test users (all when fewer)")
    ap.add_argument("--param", action="append", default=[], help="genrec-llm key=value")
    ap.add_argument("--time-budget", type=float, default=None, help="training seconds")
    ap.add_argument("--phase", choices=("fit", "eval", "all"), default="all")
    ap.add_argument("--baselines", default="pop,itemknn,sasrec")
    ap.add_argument("--sasrec-budget", type=float, default=900.0, help="SASRec training seconds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suffix", default="")
    ap.add_argument("--work", default="/tmp/genllm")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create, load_model, parse_params

    tag = f"{a.dataset}{a.suffix}"
    work = Path(a.work)
    model_dir, ckpt = work / f"model_{tag}", work / f"ckpt_{tag}"
    fit_card = work / f"fit_{tag}.json"
    sp = load_split(DataConfig(dataset=a.dataset, split="loo"), seed=a.seed)
    params = {"domain": DOMAIN.get(a.dataset, "products"), "seed": a.seed, "threads": a.threads,
              **parse_params(a.param, "genrec-llm")}
    if a.time_budget:
        params["time_budget"] = a.time_budget
    if a.phase in ("fit", "all"):
        load0, t = load_average(), time.perf_counter()
        model = create("genrec-llm", checkpoint_dir=str(ckpt), checkpoint_every=200, **params).fit(sp)
        model.save(model_dir)
        fit_card.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "params": params,
                                        "fit_seconds": round(time.perf_counter() - t, 1), "fit_info": model.fit_info_,
                                        "load_average_start": load0, "load_average_end": load_average(),
                                        "peak_memory_mb": _peak()}, indent=1, default=str))
        print(fit_card.read_text(), flush=True)
        if a.phase == "fit":
            return
    t_all, load_start = time.perf_counter(), load_average()
    fit = json.loads(fit_card.read_text())
    model = load_model(model_dir)
    rows = []
    for decoding in ("constrained", "grounded"):
        model.set_params(decoding=decoding)
        rows.append(_genrec_row(model, sp, a, decoding))
        print(json.dumps(rows[-1]), flush=True)
    for name in [b for b in a.baselines.split(",") if b]:
        rows.append(_baseline_row(name, sp, a, create))
        print(json.dumps(rows[-1]), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "fit_command": fit["command"], "dataset": a.dataset,
           "split": sp.describe(), "seed": a.seed, "users": rows[0]["users"], "machine": machine(),
           "threads": a.threads, "load_average_start": load_start, "load_average_end": load_average(),
           "eval_wall_seconds": round(time.perf_counter() - t_all, 1), "params": fit["params"],
           "fit": {k: fit[k] for k in ("fit_seconds", "fit_info", "load_average_start", "load_average_end",
                                       "peak_memory_mb")},
           "rows": rows}
    path = Path(f"benchmarks/results/genrec_llm_{tag}.md")
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    path.write_text(markdown(out, a))
    print(path.read_text())


def _peak() -> float:
    from genrec.eval.runcard import peak_memory_mb

    return round(peak_memory_mb(), 1)


def _genrec_row(model, sp, a, decoding: str) -> dict:
    """Full-ranking metrics through evaluate(), and the paper's exact-match protocol from the same
    generations (each list's ``why`` holds every beam's text)."""
    import numpy as np

    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import reset_peak_memory
    from genrec.models.genrec_llm.decoding import exact_match_rank

    reset_peak_memory(f"genrec-llm {decoding}")
    t = time.perf_counter()
    rep = evaluate(model, sp, ks=KS, max_cases=a.users, seed=a.seed, progress=True, batch_size=64)
    sec = time.perf_counter() - t
    index = {i: n for n, i in enumerate(model.item_ids_)}
    exact, top_valid, beam_valid, n_beams = [], 0, 0, []
    for case in rep.per_case:
        why = case.get("why") or {}
        texts = [q["query"] for q in why.get("queries", [])]
        valid = (why.get("extra") or {}).get("valid", [])
        j = index.get(case["target"])
        exact.append(exact_match_rank(texts, model.response_texts_[j]) if j is not None else 0)
        top_valid += bool(valid[:1] and valid[0])
        beam_valid += sum(valid)
        n_beams.append(len(texts))
    ranks = np.asarray(exact)
    n = len(ranks)
    paper = {}
    for k in KS:
        hit = (ranks > 0) & (ranks <= k)
        paper[f"HR@{k}"] = float(hit.mean())
        paper[f"NDCG@{k}"] = float((hit / np.log2(np.where(hit, ranks, 1) + 1)).mean())
    return {"model": f"genrec-llm {decoding}", "users": n, "seconds": round(sec, 1), "users_per_s": round(n / sec, 3),
            **{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS}, **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS},
            "paper_protocol": paper, "valid_top1": top_valid / n, "valid_beams": beam_valid / max(sum(n_beams), 1),
            "beams_per_user": float(np.mean(n_beams)), "peak_memory_mb": _peak()}


def _baseline_row(name: str, sp, a, create) -> dict:
    from genrec.eval.evaluate import evaluate
    from genrec.eval.runcard import reset_peak_memory

    params: dict = {}
    if name == "sasrec":
        params = {"time_budget": a.sasrec_budget, "threads": a.threads, "progress": False, "seed": a.seed}
    reset_peak_memory(name)
    t = time.perf_counter()
    m = create(name, **params).fit(sp)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    rep = evaluate(m, sp, ks=KS, max_cases=a.users, seed=a.seed, progress=False)
    sec = time.perf_counter() - t
    return {"model": name, "params": params, "users": len(rep.per_case), "fit_seconds": round(fit_s, 1),
            "seconds": round(sec, 1), "users_per_s": round(len(rep.per_case) / sec, 3),
            **{f"HR@{k}": rep.table[f"recall@{k}"] for k in KS}, **{f"NDCG@{k}": rep.table[f"ndcg@{k}"] for k in KS},
            "fit_info": getattr(m, "fit_info_", None), "peak_memory_mb": _peak()}


def markdown(out: dict, a) -> str:
    cols = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]
    m, f, fi = out["machine"], out["fit"], out["fit"]["fit_info"] or {}
    n = out["users"]
    lines = [f"# GenRec instruction-tuned (`genrec-llm`), {out['dataset']} `loo`, {n} seeded test users", "",
             f"Fit: `{out['fit_command']}`  ",
             f"Evaluation: `{out['command']}`  ",
             f"Split: {out['split']}  ",
             f"Sample: `evaluate(max_cases={a.users}, seed={a.seed})`, the same users for every row; full-catalog "
             "ranking, history excluded (HR@K = Recall@K, one target per user).  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores"
             + (f" ({' '.join(m['cpu_flags'])})" if m.get("cpu_flags") else "")
             + f", {out['threads']} torch thread(s). Shared by other jobs: load average (1, 5, 15 min) "
             f"{f['load_average_start']} -> {f['load_average_end']} during the fit, "
             f"{out['load_average_start']} -> {out['load_average_end']} during the evaluation; timings are "
             "comparisons under that load.  ",
             f"Model parameters: `{json.dumps(out['params'], default=str)}`  ",
             f"Training: {fi.get('train_examples')} examples ({fi.get('train_tokens')} tokens), {fi.get('steps')} steps, "
             f"{fi.get('epochs_run')} epoch(s) begun, stop: {fi.get('stop_reason')}, precision {fi.get('precision')}, "
             f"{fi.get('train_seconds')} s training ({f['fit_seconds']} s fit in all), {fi.get('tokens_per_s')} tokens/s, "
             f"peak memory {f['peak_memory_mb']} MB.  ",
             f"Evaluation wall time {out['eval_wall_seconds']} s.", "",
             "## Full ranking (generated items first in beam order, then the grounding order)", "",
             "| model | " + " | ".join(cols) + " | users/s | valid top-1 | valid beams | beams/user | peak MB |",
             "|---" * (len(cols) + 6) + "|"]
    for r in out["rows"]:
        extra = (f" | {r['valid_top1']:.3f} | {r['valid_beams']:.3f} | {r['beams_per_user']:.1f}"
                 if "valid_top1" in r else " | – | – | –")
        lines.append(f"| {r['model']} | " + " | ".join(f"{r[c]:.4f}" for c in cols)
                     + f" | {r['users_per_s']:.2f}{extra} | {r['peak_memory_mb']:.0f} |")
    lines += ["", "## GenRec's own protocol (exact title match of the beams, history not excluded)", "",
              "| decoding | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in out["rows"]:
        if "paper_protocol" in r:
            lines.append(f"| {r['model']} | " + " | ".join(f"{r['paper_protocol'][c]:.4f}" for c in cols) + " |")
    hist = fi.get("valid_history") or []
    if hist:
        lines += ["", "Validation (response loss on seeded validation cases; valid = -loss): "
                  + "; ".join(f"step {h['step']}: train {h['loss']:.3f}, valid {h.get('valid', float('nan')):.3f}"
                              for h in hist) + "."]
    sas = next((r for r in out["rows"] if r["model"] == "sasrec"), None)
    if sas:
        lines += ["", f"SASRec: default parameters, {sas['params'].get('time_budget')} s training budget "
                  f"(fit {sas['fit_seconds']} s; {sas.get('fit_info')})."]
    lines += ["", "valid top-1 / valid beams: share of the first beam / of all beams that are exactly a catalog "
              "title (grounded decoding generates free text; constrained decoding can only write titles). "
              f"With {n} users one hit is {1 / max(n, 1):.4f} of HR.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
