"""Evaluation on Ray (2 actors) against one process, same model and cases (issue 15).

    python benchmarks/ray_eval.py [--dataset amazon-beauty] [--split loo] [--models sasrec,title-bm25]
        [--workers 2] [--max-cases 0] [--batch-size 256]

Each model is fitted once (1 thread), saved, then evaluated on the test cases (full ranking) in
this process with 1 thread, and with ``--engine ray`` semantics (genrec.eval.ray_engine.RayEngine,
a local Ray instance with ``workers`` CPUs, 1 thread per actor). Reported: one-process seconds,
Ray seconds (actor start-up and model loading included, Ray's own start-up separately),
the speed-up, and whether the metrics are identical. The load average is recorded before and
after: on a shared machine the speed-up is a comparison under that load, not a capability.
Writes results/ray_eval.json and results/ray_eval.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
SEED = 0
PARAMS = {"sasrec": {"epochs": 1, "min_steps": 0, "valid_users": 500, "progress": False, "threads": 1},
          "title-bm25": {}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--split", default="loo")
    ap.add_argument("--models", default="sasrec,title-bm25")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-cases", type=int, default=0, help="0: all test cases")
    ap.add_argument("--batch-size", type=int, default=256)
    a = ap.parse_args()

    from genrec.cli_support import set_threads

    set_threads(1)
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.ray_engine import RayEngine
    from genrec.eval.runcard import load_average, machine
    from genrec.models.registry import create

    t_all = time.perf_counter()
    load_before = load_average()
    ds = load_dataset(a.dataset, None, preprocess="standard")
    sp = make_split(ds, a.split, seed=SEED)
    eng = RayEngine(workers=a.workers, threads=1)
    t = time.perf_counter()
    eng.start()
    ray_start_s = time.perf_counter() - t
    rows = []
    for name in a.models.split(","):
        m = create(name, seed=SEED, **PARAMS.get(name, {}))
        t = time.perf_counter()
        m.fit(sp)
        fit_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            m.save(tmp)
            kw = dict(batch_size=a.batch_size, progress=False, max_cases=a.max_cases or None, seed=SEED)
            t = time.perf_counter()
            local = evaluate(m, sp, **kw)
            local_s = time.perf_counter() - t
            eng.model_dir = Path(tmp)
            t = time.perf_counter()
            remote = evaluate(m, sp, engine=eng, **kw)
            ray_s = time.perf_counter() - t
        rows.append({"model": name, "cases": len(local.per_case), "fit_seconds": round(fit_s, 1),
                     "one_process_seconds": round(local_s, 2), "ray_seconds": round(ray_s, 2),
                     "speedup": round(local_s / ray_s, 2), "identical_metrics": remote.table == local.table,
                     "identical_ranks": remote.per_case == local.per_case,
                     "recall@10": local.table.get("recall@10"), "load_after": load_average()})
        print(json.dumps(rows[-1]), flush=True)
    RayEngine.shutdown()
    mach = machine()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    mach.setdefault("bf16", "avx512_bf16" in flags or "amx_bf16" in flags)  # the CPU has bf16 instructions
    card = {"command": "python " + " ".join(sys.argv), "dataset": a.dataset, "split": a.split, "seed": SEED,
            "workers": a.workers, "threads_per_process": 1, "batch_size": a.batch_size,
            "machine": mach, "load_before": load_before, "load_after": load_average(),
            "ray_start_seconds": round(ray_start_s, 2), "wall_seconds": round(time.perf_counter() - t_all, 1),
            "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "ray_eval.json").write_text(json.dumps(card, indent=1))
    (OUT / "ray_eval.md").write_text(markdown(card))


def markdown(card: dict) -> str:
    m = card["machine"]
    out = ["# Evaluation on Ray vs one process", "",
           f"Command: `{card['command']}`; dataset {card['dataset']}, split {card['split']} (seed {card['seed']}), "
           f"test cases, full ranking, chunks of {card['batch_size']}. Machine: {m.get('cpu', '?')}, {m['cpus']} "
           f"cores, bf16 {m.get('bf16', '?')}; load average {card['load_before']} before, {card['load_after']} "
           f"after (1/5/15 min). Wall time {card['wall_seconds']} s.", "",
           f"One process: 1 thread. Ray: a local instance with {card['workers']} CPUs, {card['workers']} actors x 1 "
           f"thread; its seconds include starting the actors and loading the model in each (Ray's own start-up, "
           f"{card['ray_start_seconds']} s, is not included). The machine is shared: the speed-up is a comparison "
           "under the load shown, not what 2 idle cores give.", "",
           "| model | cases | one process s | Ray s | speed-up | metrics identical | ranks identical | load after |",
           "|---|---|---|---|---|---|---|---|"]
    for r in card["rows"]:
        out.append(f"| {r['model']} | {r['cases']:,} | {r['one_process_seconds']} | {r['ray_seconds']} | "
                   f"{r['speedup']}x | {r['identical_metrics']} | {r['identical_ranks']} | {r['load_after']} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
