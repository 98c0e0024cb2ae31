"""Demo shop (SYNTHETIC), user split: GPT4Rec vs pop and itemknn on the same test cases.

    nice -n 10 .venv/bin/python benchmarks/gpt4rec_demo.py --model-dir DIR [--params JSON]

With --model-dir a GPT4Rec saved by `genrec train --model gpt4rec --dataset demo` (or by this
script) is evaluated; otherwise one is trained with --params.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--params", default="{}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/gpt4rec_demo.json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split
    from genrec.eval.evaluate import evaluate
    from genrec.eval.report import markdown_table
    from genrec.models.registry import create, load_model

    sp = make_split(load_dataset("demo"), "user", seed=0)
    reports = []
    for name in ("pop", "itemknn"):
        t = time.perf_counter()
        m = create(name).fit(sp)
        reports.append(evaluate(m, sp, progress=False, fit_seconds=time.perf_counter() - t))
    t = time.perf_counter()
    g = load_model(a.model_dir) if a.model_dir else create("gpt4rec", **json.loads(a.params)).fit(sp)
    fit_s = None if a.model_dir else time.perf_counter() - t
    g.gen_batch_size = 16  # the CPU-friendly default (older saved models carry 4 or 64)
    reports.append(evaluate(g, sp, progress=False, fit_seconds=fit_s))
    table = markdown_table(reports)
    print(table)
    with open(a.out, "w") as f:
        json.dump({r.model: r.table for r in reports} | {"gpt4rec_card": reports[-1].run_card}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
