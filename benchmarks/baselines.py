"""Classical (and neural, when present) baselines on one split: fit, full-ranking test evaluation,
fit/eval time and peak memory per model, next to published anchors.

    python benchmarks/baselines.py --dataset amazon-beauty --split user \
        --models pop,itemknn,als,bpr,content,sasrec,bert4rec [--param als.factors=128] [--tune]

Each model runs in its own child process (this script, ``--child``), so its peak memory
(ru_maxrss: data + split + fit + evaluation) is its own. ``--tune`` first searches a small grid
per model ON THE VALIDATION CASES (coordinate descent, Recall@10 then NDCG@10), then fits with the
chosen values and evaluates once on test. Writes benchmarks/results/baselines_<dataset>_<split>.md
and .json. A model whose module does not exist yet is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from genrec.models.registry import parse_params

ROOT = Path(__file__).resolve().parents[1]
KS = (5, 10, 20, 40)

# Published numbers to read ours against (full ranking). Different preprocessing and code, so
# they are anchors, not targets.
ANCHORS = {
    ("amazon-beauty", "user"): [
        ("BERT4Rec (GPT4Rec, Li et al. 2023, Table 1)", {"recall@10": 0.0513, "recall@40": 0.1161}),
        ("YouTubeDNN (GPT4Rec Table 1)", {"recall@40": 0.1066}),
        ("FM-BPR (GPT4Rec Table 1)", {"recall@40": 0.1040}),
    ],
    ("amazon-beauty", "loo"): [
        ("SASRec, leave-one-out, full ranking (published)", {"recall@10": 0.0605, "ndcg@10": 0.0318}),
    ],
}

# Small grids for --tune (coordinate descent from the defaults, in this order).
GRIDS: dict[str, list[tuple[str, list]]] = {
    "itemknn": [("neighbors", [20, 50, 100, 200, 500]), ("shrinkage", [0.0, 5.0, 20.0, 50.0, 100.0]),
                ("recency_decay", [1.0, 0.9, 0.7, 0.5, 0.3])],
    "als": [("alpha", [1.0, 5.0, 20.0, 50.0, 100.0]), ("regularization", [0.01, 0.1, 1.0, 10.0]),
            ("factors", [32, 64, 128])],
    "bpr": [("learning_rate", [0.01, 0.05, 0.1]), ("regularization", [0.001, 0.01, 0.1]),
            ("fold_in", ["ls", "mean"]), ("fold_in_alpha", [3.0, 10.0, 30.0]),
            ("fold_in_regularization", [0.01, 0.1, 1.0])],
    "content": [("fields", [["title"], ["title", "brand"], ["title", "brand", "categories"]]),
                ("sublinear_tf", [False, True]), ("fill_popular", [False, True])],
}
# Parameters that change only how a fitted model scores: no refit needed to try them.
SCORE_ONLY = {"itemknn": {"recency_decay", "fill_popular"}, "bpr": {"fold_in", "fold_in_alpha", "fold_in_regularization"},
              "content": {"fill_popular"}}


def model_available(name: str) -> tuple[bool, str]:
    """Whether the model's module exists (SASRec/BERT4Rec may not have landed yet)."""
    from genrec.models.registry import MODELS

    if name not in MODELS:
        return False, f"unknown model {name!r}"
    module = MODELS[name].split(":")[0]
    if importlib.util.find_spec(module) is None:
        return False, f"module {module} does not exist yet: skipped"
    return True, ""


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child: one model ----------------------------------------------------------------------------

def run_child(args) -> dict:
    import inspect
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    from genrec.data.registry import load_dataset, spec
    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.models.registry import create, model_class

    t0 = time.perf_counter()
    pre = args.preprocess or spec(args.dataset).default_preprocess.get(args.split, "standard")
    split = make_split(load_dataset(args.dataset, args.data_dir, preprocess=pre), args.split, seed=args.seed)
    data_seconds = time.perf_counter() - t0
    data_mb = peak_mb()
    name = args.model
    params = parse_params(args.param, name)
    if "seed" in inspect.signature(model_class(name).__init__).parameters:
        params.setdefault("seed", args.seed)

    tuning = []
    if args.tune and name in GRIDS:
        params, tuning = tune(name, params, split, args)

    model = create(name, **params)
    t, c = time.perf_counter(), cpu_seconds()
    model.fit(split)
    fit_seconds, fit_cpu = time.perf_counter() - t, cpu_seconds() - c
    t, c = time.perf_counter(), cpu_seconds()
    report = evaluate(model, split, KS, which="test", progress=False, fit_seconds=fit_seconds)
    eval_total, eval_cpu = time.perf_counter() - t, cpu_seconds() - c
    return {
        "model": name, "params": model.get_params(), "metrics": report.table,
        "fit_seconds": round(fit_seconds, 2), "eval_seconds": report.run_card["eval_seconds"],
        "eval_total_seconds": round(eval_total, 2), "fit_cpu_seconds": round(fit_cpu, 2),
        "eval_total_cpu_seconds": round(eval_cpu, 2), "peak_memory_mb": round(peak_mb(), 1),
        "memory_after_data_mb": round(data_mb, 1), "data_seconds": round(data_seconds, 2),
        "test_cases": report.run_card["cases"], "split": report.run_card["split"], "tuning": tuning,
        "versions": report.run_card["versions"],
    }


def _valid_score(model, split, args) -> dict:
    from genrec.eval.evaluate import evaluate

    r = evaluate(model, split, (10, 40), which="valid", progress=False, attributes=(),
                 max_cases=args.tune_cases, seed=args.seed)
    return {k: round(v, 5) for k, v in r.table.items() if k.split("@")[0] in ("recall", "ndcg")}


def tune(name: str, params: dict, split, args) -> tuple[dict, list]:
    """Coordinate descent over GRIDS[name] on validation cases; fixed ``--param``s are kept."""
    from genrec.models.registry import create

    fixed = set(parse_params(args.param, name))
    best = create(name, **params).get_params()  # every parameter explicit, so trials compare
    log = []
    cache: dict[str, tuple] = {}
    fitted = None  # (fit params, model) reused when only score-time parameters change

    def key(p):
        return json.dumps(p, sort_keys=True)

    def trial(p):
        nonlocal fitted
        if key(p) in cache:
            return cache[key(p)]
        fit_p = {k: v for k, v in p.items() if k not in SCORE_ONLY.get(name, set())}
        t = time.perf_counter()
        if fitted is not None and fitted[0] == fit_p:
            model = fitted[1]
            for k, v in p.items():
                setattr(model, k, v)
        else:
            model = create(name, **p).fit(split)
            fitted = (fit_p, model)
        s = _valid_score(model, split, args)
        row = {"params": dict(p), "valid": s, "seconds": round(time.perf_counter() - t, 1)}
        log.append(row)
        print(f"  tune {name} {json.dumps({k: v for k, v in p.items() if log[0]['params'].get(k) != v})}: "
              f"R@10 {s['recall@10']:.4f} N@10 {s['ndcg@10']:.4f} ({row['seconds']} s)", file=sys.stderr, flush=True)
        cache[key(p)] = (s["recall@10"], s["ndcg@10"])
        return cache[key(p)]

    best_score = trial(best)
    for param, values in GRIDS[name]:
        if param in fixed:
            continue
        for v in values:
            cand = {**best, param: v}
            sc = trial(cand)
            if sc > best_score:
                best, best_score = cand, sc
    return best, log


# -- parent: all models, files -------------------------------------------------------------------

def machine() -> dict:
    from genrec.eval.runcard import load_average, machine as m

    info = m()
    try:
        info["load_average_at_start"] = load_average()
    except OSError:
        pass
    return info


def fmt(v, d=4):
    return "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))


def write_results(out: Path, meta: dict, rows: list[dict]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"baselines_{meta['dataset']}_{meta['split']}"
    jpath, mpath = out / f"{stem}.json", out / f"{stem}.md"
    jpath.write_text(json.dumps({**meta, "results": rows}, indent=2, default=str))
    cols = [f"recall@{k}" for k in KS] + [f"ndcg@{k}" for k in KS]
    lines = [f"# Baselines: {meta['dataset']}, `{meta['split']}` split (full ranking, test cases)", "",
             f"Command: `{meta['command']}`  ",
             f"Date (UTC): {meta['date']}; seed {meta['seed']}; total wall time {meta['wall_seconds']:.0f} s.  ",
             f"Machine: {meta['machine'].get('cpu', meta['machine'].get('processor'))}, {meta['machine'].get('cpus')} CPUs, "
             f"SHARED with other jobs (load average at start {meta['machine'].get('load_average_at_start')}); "
             "times are indicative only.  ",
             f"Split: {meta.get('split_info', {})}", "",
             "| model | " + " | ".join(c.replace("recall", "R").replace("ndcg", "N") for c in cols)
             + " | fit s | eval s | eval+metrics s (CPU s) | peak MB |",
             "|---|" + "---|" * (len(cols) + 4)]
    for r in rows:
        if "metrics" not in r:
            lines.append(f"| {r['model']} | " + " | ".join("–" for _ in cols) + " | – | – | – | – |")
            continue
        lines.append(f"| {r['model']} | " + " | ".join(fmt(r["metrics"].get(c)) for c in cols)
                     + f" | {r['fit_seconds']:.1f} | {r['eval_seconds']:.1f} | {r['eval_total_seconds']:.1f} "
                     f"({r.get('eval_total_cpu_seconds', float('nan')):.1f}) | {r['peak_memory_mb']:.0f} |")
    anchors = ANCHORS.get((meta["dataset"], meta["split"]), [])
    if anchors:
        lines += ["", "Published anchors (other preprocessing and code; read, do not chase):", ""]
        for label, vals in anchors:
            lines.append(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in vals.items()))
    lines += ["", "## Parameters used", ""]
    for r in rows:
        if "params" in r:
            tuned = " (tuned on validation cases)" if r.get("tuning") else ""
            lines.append(f"- **{r['model']}**{tuned}: `{json.dumps(r['params'])}`")
    notes = [f"- {r['model']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "## Notes", ""] + notes
    lines += ["", "## Columns", "",
              "fit s: wall seconds of `fit`; eval s: wall seconds of ranking every test case (`evaluate`'s "
              "run card: recommending the top 40 for every case); eval+metrics s: the whole `evaluate` call, "
              "including its diversity/coverage metrics, and in brackets the CPU seconds the process used for it "
              "(all threads; on a shared machine wall time can be several times the CPU time); peak MB: peak resident memory of the "
              "model's own process (data, split, fit and evaluation; the data alone took "
              + ", ".join(f"{r['model']} {r.get('memory_after_data_mb', '–')}" for r in rows if "metrics" in r) + " MB)."]
    if any(r.get("tuning") for r in rows):
        cases = meta.get("tune_cases") or ("all" if "--tune-cases" not in meta["command"] else
                                           meta["command"].split("--tune-cases")[1].split()[0])
        lines += ["", "## Tuning log (validation cases, Recall@10 / NDCG@10)", "",
                  f"Coordinate descent over a small grid per model, from the defaults, on {cases} validation "
                  "cases (a seeded random subset when not all); the test cases were used once, for the table "
                  "above. Ties in Recall@10 are broken by NDCG@10.", ""]
        for r in rows:
            trials = r.get("tuning") or []
            start = trials[0]["params"] if trials else {}
            for n, t in enumerate(trials):
                p = {k: v for k, v in t["params"].items() if start.get(k) != v}
                label = "start" if n == 0 else json.dumps(p)
                lines.append(f"- {r['model']} `{label}`: {t['valid']['recall@10']:.4f} / "
                             f"{t['valid']['ndcg@10']:.4f}")
    mpath.write_text("\n".join(lines) + "\n")
    return mpath, jpath


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--split", default="user")
    ap.add_argument("--preprocess", default=None, help="default: the dataset's default for the split")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", default="pop,itemknn,als,bpr,content,sasrec,bert4rec")
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--param", action="append", default=[], help="key=value or model.key=value (JSON values)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune", action="store_true", help="tune a small grid on the validation cases first")
    ap.add_argument("--tune-cases", type=int, default=None, help="at most this many validation cases per trial")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--render", default=None, metavar="JSON", help="only rewrite the .md of a results .json")
    args = ap.parse_args(argv)

    if args.render:
        data = json.loads(Path(args.render).read_text())
        rows = data.pop("results")
        print("wrote", *write_results(Path(args.render).parent, data, rows), file=sys.stderr)
        return

    if args.child:
        print("@@RESULT@@" + json.dumps(run_child(args), default=str), flush=True)
        return

    start = time.perf_counter()
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        ok, why = model_available(name)
        if not ok:
            print(f"{name}: {why}", file=sys.stderr)
            rows.append({"model": name, "note": why})
            continue
        cmd = [sys.executable, __file__, "--child", "--model", name, "--dataset", args.dataset, "--split", args.split,
               "--seed", str(args.seed)]
        for opt, val in (("--preprocess", args.preprocess), ("--data-dir", args.data_dir),
                         ("--tune-cases", args.tune_cases)):
            if val is not None:
                cmd += [opt, str(val)]
        cmd += ["--tune"] if args.tune else []
        for p in args.param:
            cmd += ["--param", p]
        print(f"{name}: running ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
        if proc.returncode != 0 or not lines:
            rows.append({"model": name, "note": f"failed (exit {proc.returncode}); see stderr"})
            print(f"{name}: FAILED", file=sys.stderr)
            continue
        row = json.loads(lines[-1][len("@@RESULT@@"):])
        row["process_seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        m = row["metrics"]
        print(f"{name}: R@10 {m['recall@10']:.4f} R@40 {m['recall@40']:.4f} N@10 {m['ndcg@10']:.4f} "
              f"fit {row['fit_seconds']} s eval {row['eval_seconds']} s peak {row['peak_memory_mb']} MB",
              file=sys.stderr, flush=True)
    split_info = {k: v for k, v in next((r["split"] for r in rows if "split" in r), {}).items()
                  if k not in ("preprocess", "synthetic")}
    pre = next((r["split"].get("preprocess") for r in rows if "split" in r), None)
    if isinstance(pre, dict):
        split_info["preprocess"] = pre.get("name")
    meta = {
        "dataset": args.dataset, "split": args.split, "seed": args.seed,
        "command": "python benchmarks/baselines.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "wall_seconds": round(time.perf_counter() - start, 1), "machine": machine(),
        "machine_shared": True, "python": platform.python_version(), "split_info": split_info,
        "anchors": [{"label": a, **v} for a, v in ANCHORS.get((args.dataset, args.split), [])],
        "tuned": args.tune, "tune_cases": (args.tune_cases or "all") if args.tune else None,
    }
    mpath, jpath = write_results(Path(args.out), meta, rows)
    print(f"wrote {mpath} and {jpath}", file=sys.stderr)


if __name__ == "__main__":
    main()
