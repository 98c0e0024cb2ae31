"""Execute a run config: the recipe, then for each model tune (optional) -> fit -> test once.

Machine facts (CPU, cores, load average at the start and at the end, versions) are measured here,
at run time, and nothing about the machine is typed into a page.
"""

from __future__ import annotations

import inspect
import sys
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable

from genrec.cli_support import set_threads
from genrec.experiments.config import BenchConfig, ModelConfig


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags() -> list[str]:
    """Which of :data:`SPEED_FLAGS` the CPU has (/proc/cpuinfo): whether bf16 is native, which the
    CPU's name alone does not tell. Empty where /proc/cpuinfo is absent."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return []
    return [x for x in SPEED_FLAGS if x in flags]


def model_params(m: ModelConfig, seed: int) -> dict[str, Any]:
    """The constructor parameters a config gives a model: ``params``, the run's seed when the model
    takes one and the config did not set it, and the time budget in seconds."""
    from genrec.models.registry import model_class

    known = inspect.signature(model_class(m.name).__init__).parameters
    params = dict(m.params)
    if "seed" in known:
        params.setdefault("seed", seed)
    if m.time_budget_minutes is not None:  # the config check made sure the model has the parameter
        params["time_budget"] = m.time_budget_minutes * 60
    return params


def run_model(m: ModelConfig, cfg: BenchConfig, split, log: Callable[[str], None]) -> dict:
    """Tune on validation (if the model has a grid), fit, evaluate on test: one results row."""
    from genrec.eval.evaluate import evaluate
    from genrec.eval.report import fit_line
    from genrec.eval.runcard import peak_memory_mb, peak_memory_scope, reset_peak_memory
    from genrec.experiments.tuner import Tuner
    from genrec.models.registry import create

    params, tuning = model_params(m, cfg.seed), None
    if m.grid:
        start = create(m.name, **params).get_params()  # every parameter explicit, so trials compare
        tuner = Tuner(partial(create, m.name), split, metric=cfg.tune.metric, tiebreak=cfg.tune.tiebreak,
                      max_cases=cfg.tune.max_cases, seed=cfg.seed, score_only=m.score_only, log=log)
        res = tuner.run(start, m.grid, cfg.tune.method, trials=cfg.tune.trials)
        params = res.best
        tuning = {"method": cfg.tune.method, "metrics": list(tuner.metrics), "best": res.best,
                  "best_valid": dict(zip(tuner.metrics, res.score)),
                  "trials": [vars(t) | {"score": list(t.score)} for t in res.trials]}
    reset_peak_memory(f"{m.row}'s fit started")
    model = create(m.name, **params)
    t = time.perf_counter()
    model.fit(split)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    rep = evaluate(model, split, cfg.evaluate.ks, which="test", progress=False, fit_seconds=fit_s,
                   attributes=tuple(cfg.evaluate.attributes), max_cases=cfg.evaluate.max_cases, seed=cfg.seed)
    row = {"model": m.row, "name": m.name, "params": model.get_params(), "metrics": rep.table,
           "fit_seconds": round(fit_s, 2), "eval_seconds": rep.run_card["eval_seconds"],
           "eval_total_seconds": round(time.perf_counter() - t, 2), "test_cases": rep.run_card["cases"],
           "peak_memory_mb": round(peak_memory_mb(), 1), "peak_memory_scope": peak_memory_scope(),
           "fit_info": rep.run_card.get("fit_info"), "tuning": tuning}
    if cfg.evaluate.by:
        from genrec.eval.groups import breakdown

        row["groups"] = {a: breakdown(rep, split, a, cfg.evaluate.ks) for a in cfg.evaluate.by}
    if cfg.evaluate.candidates:
        from genrec.eval.candidates import evaluate_candidates

        cand = evaluate_candidates(model, split, cfg.evaluate.candidates, seed=cfg.seed, progress=False,
                                   max_cases=cfg.evaluate.max_cases)
        row["candidates"] = {"metrics": cand.table, "cases": cand.run_card["cases"],
                             "eval_seconds": cand.run_card["eval_seconds"]}
    ks = cfg.evaluate.ks
    log(f"{m.row}: " + " ".join(f"R@{k} {rep.table[f'recall@{k}']:.4f}" for k in ks)
        + f" (fit {fit_s:.1f} s, eval {row['eval_seconds']} s)")
    if row["fit_info"]:
        log(fit_line(m.row, row["fit_info"], fit_s))
    return row


def _same_setup(a: dict, b: dict) -> bool:
    """Whether two dumped configs share data, evaluation, tuning, seed and torch threads (rows are comparable)."""
    return all(a.get(k) == b.get(k) for k in ("data", "evaluate", "tune", "seed", "threads"))


def reusable_rows(cfg: BenchConfig, path: Path, log: Callable[[str], None]) -> dict[str, dict]:
    """Rows of an earlier run's ``<name>.json`` that this config would produce again: same data, split,
    evaluation, tuning and seed, and the same model entry (name, params, grid, budget). Keyed by row label."""
    import json

    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log(f"--resume: {path} is not readable JSON ({e}); starting afresh")
        return {}
    now = cfg.model_dump(mode="json")
    if not _same_setup(old.get("config", {}), now):
        log(f"--resume: {path} was written for other data, evaluation, tuning or seed; starting afresh")
        return {}
    entries = {m["label"] or m["name"]: m for m in old["config"]["models"]}
    wanted = {m["label"] or m["name"]: m for m in now["models"]}
    return {r["model"]: r for r in old.get("results", [])
            if r["model"] in wanted and entries.get(r["model"]) == wanted[r["model"]]}


def run(cfg: BenchConfig, config_path: str | Path, *, out_dir: str | Path | None = None,
        command: str | None = None, log: Callable[[str], None] | None = None,
        resume: bool = False) -> tuple[dict, Path, Path]:
    """Run every model of ``cfg``; write ``<out>/<name>.json`` and ``.md``; return (results, md, json).

    ``resume``: keep the rows of an earlier run of the same config (same setup and model entry) from
    ``<out>/<name>.json`` and fit only the models it lacks; the page says which rows were kept."""
    from genrec.eval.runcard import load_average, machine, package_versions
    from genrec.experiments.anchors import anchors
    from genrec.experiments.recipe import load_split, preprocess_for
    from genrec.experiments.writer import write_results

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    config_path = Path(config_path)
    out = Path(out_dir) if out_dir is not None else (config_path.parent / cfg.out).resolve()
    started, load_start, t0 = _now(), load_average(), time.perf_counter()
    set_threads(cfg.threads)
    split = load_split(cfg.data, cfg.seed)
    protocol, pre = preprocess_for(cfg.data.dataset, cfg.data.split, cfg.data.preprocess)
    log(f"{cfg.data.dataset}: split {protocol} ({pre}), {len(split.train):,} training users, "
        f"{len(split.valid):,} validation and {len(split.test):,} test cases")
    rows: list[dict] = []
    kept = reusable_rows(cfg, out / f"{cfg.name}.json", log) if resume else {}

    def results() -> dict:
        return {
            "title": cfg.title, "name": cfg.name, "command": command or f"genrec bench {config_path}",
            "config": cfg.model_dump(mode="json"), "config_file": str(config_path),
            "complete": len(rows) == len(cfg.models),
            "started_utc": started, "finished_utc": _now(), "wall_seconds": round(time.perf_counter() - t0, 1),
            "seed": cfg.seed, "threads": cfg.threads,
            "machine": {**machine(), "cpu_flags": cpu_flags(), "load_average_start": load_start,
                        "load_average_end": load_average()},
            "versions": package_versions(),
            "data": {**split.describe(), "dataset": cfg.data.dataset, "split": protocol, "preprocess": pre,
                     "preprocess_steps": split.info.get("preprocess"), "synthetic": bool(split.info.get("synthetic"))},
            "anchors": [vars(a) for a in anchors(*cfg.anchors)], "notes": cfg.notes, "results": rows,
            "kept_rows": [r["model"] for r in rows if r["model"] in kept],
        }

    for m in cfg.models:  # the pages are rewritten after every model, so a long run shows progress
        if m.row in kept:
            log(f"{m.row}: kept from the earlier run (--resume)")
            rows.append(kept[m.row])
        else:
            rows.append(run_model(m, cfg, split, log) | {"run_started_utc": started, "measured_utc": _now(),
                                                          "load_average_after": load_average()})
        res = results()
        md, js = write_results(out, res)
    return res, md, js

