"""LoRA training speed of llm-rerank's verbalizer: genrec's trainer (VerbalizerLoRAModule) against
plain peft + ``transformers.Trainer`` on the same examples, LoRA config, batch size and precision.

    .venv/bin/python benchmarks/lora_speed.py [--examples 32] [--rounds 2] [--threads 1] [--precision bf16]

Examples: the first ``--examples`` LlamaRec training examples of ML-100K ``loo`` (seeded training
users, item kNN's top 20 with the target, the verbalizer prompt; max 32 title tokens, 10 history
items). Both sides: SmolLM2-135M, LoRA r=8, alpha=32, dropout 0.05 on q,v of the last
``--lora-layers`` blocks, AdamW lr 5e-4, batch 4, one epoch, loss on the answer letter only
(ours: logits of the last position only, cross-entropy over the vocabulary; Trainer: labels -100
everywhere but the letter appended to the prompt, its default dynamic right padding). Each run is
a fresh process, the two sides interleaved (ours, HF, ours, HF, ...) so a burst of load hits both;
tokens/s = prompt tokens / wall time of the training call (model loading excluded). Writes
benchmarks/results/lora_speed.{json,md} with the command, machine, bf16, load and wall time.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def examples(n: int, seed: int = 0):
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split
    from genrec.models.registry import create
    from genrec.models.rerank.train import training_examples

    sp = load_split(DataConfig(dataset="ml-100k", split="loo"), seed=seed)
    m = create("llm-rerank", backend="smollm2-135m", candidates=20, seed=seed).fit(sp)
    ex = training_examples(sp, m.retriever_, m._maker, users=n, candidates=20, seed=seed)
    return m.llm, ex


def worker(side: str, a) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    from genrec.models.rerank.prompts import labels
    from genrec.models.rerank.train import VerbalizerLoRAModule

    llm, ex = examples(a.examples)
    tok, letters = llm.tokenizer, llm.candidate_ids(labels(20))
    ids = [list(tok(e.prompt, add_special_tokens=False)["input_ids"]) for e in ex]
    n_tokens = sum(len(x) for x in ids)
    bf16 = a.precision == "bf16"
    which = list(range(30 - a.lora_layers, 30))
    if side == "ours":
        from genrec.training import TrainerConfig
        from genrec.training.trainer import Trainer

        module = VerbalizerLoRAModule(llm.model, tok, letters, ex, [], r=8, alpha=32, dropout=0.05,
                                      layers=a.lora_layers, lr=5e-4, batch_size=4, bf16=bf16)
        t = time.perf_counter()
        Trainer(TrainerConfig(max_epochs=1, precision=bf16, progress=False, seed=0)).fit(module)
        sec = time.perf_counter() - t
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        net = get_peft_model(llm.model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                                                   layers_to_transform=which))

        class DS(torch.utils.data.Dataset):
            def __len__(self):
                return len(ids)

            def __getitem__(self, i):
                x = ids[i] + [letters[ex[i].label]]
                return {"input_ids": x, "attention_mask": [1] * len(x), "labels": [-100] * len(ids[i]) + [x[-1]]}

        tok.padding_side = "right"
        args = TrainingArguments(output_dir="/tmp/lora_speed_hf", per_device_train_batch_size=4, num_train_epochs=1,
                                 learning_rate=5e-4, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                                 bf16=bf16, use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                                 disable_tqdm=True, dataloader_num_workers=0, seed=0)
        tr = Trainer(model=net, args=args, train_dataset=DS(), data_collator=DataCollatorForSeq2Seq(tok, padding=True))
        t = time.perf_counter()
        tr.train()
        sec = time.perf_counter() - t
    from genrec.eval.runcard import load_average

    return {"side": side, "examples": len(ex), "prompt_tokens": n_tokens, "seconds": round(sec, 2),
            "tokens_per_s": round(n_tokens / sec, 1), "load_average": load_average()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lora-layers", type=int, default=10)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    ap.add_argument("--worker", default=None, choices=("ours", "hf"))
    ap.add_argument("--out", default="benchmarks/results/lora_speed.md")
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, a)), flush=True)
        return
    from genrec.eval.runcard import load_average, machine
    from genrec.torch_utils import cpu_has_fast_bf16

    t_all, load_start, rows = time.perf_counter(), load_average(), []
    base = [sys.executable, __file__, "--examples", str(a.examples), "--threads", str(a.threads),
            "--lora-layers", str(a.lora_layers), "--precision", a.precision]
    for r in range(a.rounds):
        for side in ("ours", "hf"):
            p = subprocess.run(base + ["--worker", side], capture_output=True, text=True, env=os.environ.copy())
            line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
            if p.returncode or not line:
                raise SystemExit(f"{side} worker failed:\n{p.stderr[-3000:]}")
            rows.append({"round": r + 1, **json.loads(line[0][7:])})
            print(json.dumps(rows[-1]), flush=True)
    mean = {s: sum(x["tokens_per_s"] for x in rows if x["side"] == s) / a.rounds for s in ("ours", "hf")}
    out = {"command": "python " + " ".join(sys.argv), "dataset": "ml-100k", "split": "loo", "seed": 0,
           "machine": machine(), "bf16_fast": cpu_has_fast_bf16(), "precision": a.precision, "threads": a.threads,
           "lora": {"r": 8, "alpha": 32, "dropout": 0.05, "modules": "q_proj, v_proj", "layers": a.lora_layers},
           "batch_size": 4, "load_average_start": load_start, "load_average_end": load_average(),
           "wall_seconds": round(time.perf_counter() - t_all, 1), "rows": rows, "mean_tokens_per_s": mean,
           "ours_over_hf": round(mean["ours"] / mean["hf"], 2)}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=1, default=str))
    m = out["machine"]
    lines = ["# LoRA training speed: genrec's trainer vs peft + transformers.Trainer (llm-rerank verbalizer)", "",
             f"Command: `{out['command']}`  ",
             f"Data: the first {rows[0]['examples']} LlamaRec training examples of ML-100K `loo` (seed 0), "
             f"{rows[0]['prompt_tokens']} prompt tokens; SmolLM2-135M, LoRA r=8 alpha=32 dropout 0.05 on q,v of "
             f"the last {a.lora_layers} blocks, batch 4, one epoch, {a.precision}, {a.threads} thread(s), fresh "
             "process per run, sides interleaved.  ",
             f"Machine: {m.get('cpu', m.get('processor'))}, {m['cpus']} cores, fast bf16 {out['bf16_fast']}; load "
             f"average at start {out['load_average_start']}, at end {out['load_average_end']} (shared CPU: "
             "compare the sides, not absolute values).  ",
             f"Wall time {out['wall_seconds']} s.", "",
             "| round | side | seconds | tokens/s | load (1 min) |", "|---|---|---|---|---|"]
    for x in rows:
        lines.append(f"| {x['round']} | {x['side']} | {x['seconds']} | {x['tokens_per_s']} | {x['load_average'][0]} |")
    lines += ["", f"Mean tokens/s: ours {mean['ours']:.1f}, transformers.Trainer {mean['hf']:.1f} "
              f"(ours / Trainer = {out['ours_over_hf']}).", ""]
    path.write_text("\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
