"""What ``keep_layers`` does to SmolLM2-135M before any training: the response loss (mean
cross-entropy of the next title, GenRec's prompt) on seeded ML-100K ``loo`` validation cases, with
all 30 blocks and with the first n only.

    OMP_NUM_THREADS=1 python benchmarks/genrec_llm_keep_layers.py --cases 40 --keep 20,10

Writes benchmarks/results/genrec_llm_keep_layers.{json,md} with the command, machine and load.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--keep", default="20,10")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.lm.adapt import keep_first_layers, num_layers
    from genrec.lm.load import load_causal_lm
    from genrec.models.genrec_llm.prompting import GenRecPrompts
    from genrec.models.genrec_llm.training import response_loss, sample

    t0, load0 = time.perf_counter(), load_average()
    sp = load_split(DataConfig(dataset="ml-100k", split="loo"), seed=a.seed)
    model, tok = load_causal_lm("smollm2-135m")
    p = GenRecPrompts(tok, "movies", history_items=5, max_title_tokens=16, max_target_tokens=24, max_prompt_tokens=160)
    ids = {i: n for n, i in enumerate(sp.catalog.ids)}
    hist, resp = p.titles(sp.catalog.titles)
    cases = sample(list(sp.valid), a.cases, a.seed)
    examples = [p.example([hist[ids[i]] for i in c.history if i in ids], resp[ids[c.target]]) for c in cases]
    row_len = max(len(e[0]) for e in examples)
    rows = [{"layers": num_layers(model), "response_loss": response_loss(model, examples, row_len, tok.pad_token_id, 8)}]
    for n in sorted((int(x) for x in a.keep.split(",")), reverse=True):
        keep_first_layers(model, n)
        rows.append({"layers": n, "response_loss": response_loss(model, examples, row_len, tok.pad_token_id, 8)})
        print(rows[-1], flush=True)
    out = {"command": "python " + " ".join(sys.argv), "cases": len(examples), "seed": a.seed, "machine": machine(),
           "load_average_start": load0, "load_average_end": load_average(),
           "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    path = Path("benchmarks/results/genrec_llm_keep_layers.md")
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    m = out["machine"]
    path.write_text("\n".join([
        "# SmolLM2-135M, GenRec prompt, response loss before training vs blocks kept", "",
        f"Command: `{out['command']}`  ",
        f"{out['cases']} seeded ML-100K `loo` validation cases (seed {a.seed}); mean cross-entropy of the response "
        "(the next title + EOS), no training.  ",
        f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores, 1 thread; load average "
        f"{out['load_average_start']} -> {out['load_average_end']}; wall time {out['wall_seconds']} s.", "",
        "| blocks kept | response loss |", "|---|---|",
        *[f"| {r['layers']} | {r['response_loss']:.3f} |" for r in rows], ""]))
    print(path.read_text())


if __name__ == "__main__":
    main()
