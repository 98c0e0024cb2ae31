"""How much of SmolLM2-135M's language modelling survives cutting transformer blocks, before any
training: full-sequence loss of GPT4Rec training examples (12 Beauty training users, the short
prompts of benchmarks/gpt4rec_pretrained.py: last 4 titles, 16 tokens each) for several kept sets.

    python benchmarks/gpt4rec_truncation_probe.py   # -> results/gpt4rec_truncation_probe.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
KEEP = {"all 30": (30, 0), "first 20": (20, 0), "first 10": (10, 0), "first 8": (8, 0),
        "first 9 + last 1": (10, 1), "first 8 + last 2": (10, 2), "first 6 + last 4": (10, 4),
        "first 12 + last 3": (15, 3)}


def main() -> None:
    import torch

    from genrec.eval.runcard import load_average, machine
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.lm.adapt import keep_first_layers
    from genrec.lm.load import load_causal_lm
    from genrec.lm.train import build_examples, pack, packed_loss
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    sp = load_split(DataConfig(dataset="amazon-beauty", split="user", preprocess="gpt4rec"), seed=0)
    rows = {}
    for name, (n, last) in KEEP.items():
        model, tok = load_causal_lm("smollm2-135m")
        keep_first_layers(model, n, last)
        b = PromptBuilder(tok, gpt4rec_template("products"), max_title_tokens=16, max_prompt_tokens=100, max_items=4)
        titles = b.titles_ids(sp.catalog.titles)
        seqs = [[titles[j] for j in sp.catalog.indices(sp.train[u], skip_unknown=True)] for u in sorted(sp.train.users)[:12]]
        ids, pos, lab = (torch.from_numpy(a) for a in pack(build_examples(b, seqs), 512, tok.pad_token_id, False))
        with torch.no_grad():
            rows[name] = round(float(packed_loss(model, ids, pos, lab)), 3)
        print(name, rows[name], flush=True)
    out = {"command": "python " + " ".join(sys.argv), "machine": machine(), "load_average": load_average(),
           "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "wall_seconds": round(time.perf_counter() - t0, 1),
           "lm": "smollm2-135m (30 blocks), fp32, no training", "examples": "12 Beauty training users (sorted ids), "
           "full-sequence loss, prompts: last 4 titles of 16 tokens", "loss": rows}
    path = Path(__file__).parent / "results" / "gpt4rec_truncation_probe.json"
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
