"""GPT4Rec speed: training tokens/s (ours vs transformers.Trainer), end-to-end users/s, BM25 queries/s.

    nice -n 10 .venv/bin/python benchmarks/gpt4rec_speed.py [--examples 400] [--threads 1] [--out results.json]

``e2e`` needs a saved demo-shop GPT4Rec: ``genrec train --dataset demo --split user --model gpt4rec --out DIR``
(the quickstart's settings), then ``--model-dir DIR``.

Training: the same scratch GPT-2 ("tiny" by default), the same examples (demo shop, user split,
prompt + target title), one epoch, loss on the target title only. Ours: packed rows, LM head on
target positions only, bf16 "auto" (fp32 on CPUs without native bf16). Trainer: its default
dynamic padding (DataCollatorForSeq2Seq pads labels with -100), bf16 as given.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time


def train_speed(n_examples: int, size: str, batch: int, seed: int = 0) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from genrec.data.loaders.demo import make_demo_shop
    from genrec.data.splits import make_split
    from genrec.lm.scratch import build_model, train_tokenizer
    from genrec.lm.train import TrainConfig, build_examples, train_lm
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    ds = make_demo_shop()
    sp = make_split(ds.preprocess("gpt4rec"), "user", seed=seed)
    tok = train_tokenizer(sp.catalog.titles + [gpt4rec_template().words()] * 50, vocab_size=4096)
    b = PromptBuilder(tok)
    tid = dict(zip(sp.catalog.ids, b.titles_ids(sp.catalog.titles)))
    ex = build_examples(b, [[tid[i] for i in s] for s in sp.train.items.values()], augment_prefixes=True)
    ex = ex[:n_examples]
    n_tokens = sum(len(x) for x, _ in ex)
    out = {"examples": len(ex), "real_tokens": n_tokens, "model": size, "batch_size": batch}

    m = build_model(size, tok, n_positions=232, seed=seed)
    t = time.perf_counter()
    train_lm(m, ex, TrainConfig(epochs=1, batch_size=batch, row_len=232, progress=False, seed=seed),
             pad_id=tok.eos_token_id, device="cpu")
    out["ours_seconds"] = time.perf_counter() - t
    out["ours_tokens_per_s"] = n_tokens / out["ours_seconds"]

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(ex)

        def __getitem__(self, i):
            x, p = ex[i]
            return {"input_ids": x, "attention_mask": [1] * len(x), "labels": [-100] * p + x[p:]}

    tok.padding_side = "right"
    for bf16 in (False, True):
        m2 = build_model(size, tok, n_positions=232, seed=seed)
        args = TrainingArguments(output_dir="/tmp/g4r_hf_trainer", per_device_train_batch_size=batch,
                                 num_train_epochs=1, learning_rate=1e-3, weight_decay=0.01, warmup_steps=int(0.05 * -(-len(ex) // batch)),
                                 bf16=bf16, use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                                 dataloader_num_workers=0, disable_tqdm=True, seed=seed)
        tr = Trainer(model=m2, args=args, train_dataset=DS(),
                     data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))
        t = time.perf_counter()
        tr.train()
        secs = time.perf_counter() - t
        out[f"hf_trainer_bf16_{bf16}_seconds"] = secs
        out[f"hf_trainer_bf16_{bf16}_tokens_per_s"] = n_tokens / secs
    out["speedup_vs_trainer_fp32"] = out["ours_tokens_per_s"] / out["hf_trainer_bf16_False_tokens_per_s"]
    out["speedup_vs_trainer_bf16"] = out["ours_tokens_per_s"] / out["hf_trainer_bf16_True_tokens_per_s"]
    return out


def e2e_speed(model_dir: str, n_users: int, m: int, k: int, gen_batches: list[int], reps: int = 3) -> dict:
    """Users/s of ``recommend`` (queries, search, merge) for each ``gen_batch_size``, best of
    ``reps``; the headline is GPT4Rec's default batch size."""
    from genrec.data.loaders.demo import make_demo_shop
    from genrec.data.splits import make_split
    from genrec.models.registry import load_model

    t = time.perf_counter()
    model = load_model(model_dir)
    load_s = time.perf_counter() - t
    model.num_queries = m
    sp = make_split(make_demo_shop().preprocess("gpt4rec"), "user", seed=0)
    hist = [list(c.history) for c in sp.test[:n_users]]
    model.recommend(hist[:4], k=k)
    default = inspect.signature(type(model)).parameters["gen_batch_size"].default
    by_batch = {}
    for bs in sorted(set(gen_batches) | {default}):
        model.gen_batch_size = bs
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            model.recommend(hist, k=k)
            best = min(best, time.perf_counter() - t)
        by_batch[str(bs)] = round(len(hist) / best, 2)
    return {"users": len(hist), "m": m, "K": k, "reps": reps, "gen_batch_size": default,
            "users_per_s": by_batch[str(default)], "users_per_s_by_gen_batch_size": by_batch,
            "load_seconds": load_s}


def bm25_speed(n_queries: int) -> dict:
    import numpy as np
    import rank_bm25

    from genrec.retrieval.bm25 import BM25Index, tokenize

    from genrec.data.registry import find_dataset_dir

    items = [json.loads(l) for l in open(find_dataset_dir("amazon-beauty") / "items.jsonl")]
    from genrec.text import clean_title

    titles = [clean_title(d["title"]) for d in items]
    ids = [d["item_id"] for d in items]
    rng = np.random.default_rng(0)
    queries = [" ".join(titles[i].split()[:6]) for i in rng.choice(len(titles), n_queries)]
    t = time.perf_counter()
    idx = BM25Index(k1=1.2, b=0.75, method="robertson").build(ids, titles)
    build = time.perf_counter() - t
    t = time.perf_counter()
    got, _ = idx.search(queries, n=10)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = rank_bm25.BM25Okapi([tokenize(x) for x in titles], k1=1.2, b=0.75)
    ref_build = time.perf_counter() - t
    sub = queries[: max(1, n_queries // 10)]
    t = time.perf_counter()
    agree = 0
    for q, g in zip(sub, got):
        s = ref.get_scores(tokenize(q))
        agree += int(bool(g) and s[ids.index(g[0])] >= s.max() - 1e-6)
    ref_s = time.perf_counter() - t
    out = {"docs": len(titles), "queries": n_queries, "bm25s_build_s": build, "bm25s_qps": n_queries / ours,
           "rank_bm25_build_s": ref_build, "rank_bm25_qps": len(sub) / ref_s,
           "top1_agreement": agree / len(sub), "speedup": (n_queries / ours) / (len(sub) / ref_s)}
    return out | category_filter_speed(idx, items, queries[:200])


def category_filter_speed(idx, items: list[dict], queries: list[str], k: int = 10) -> dict:
    """A server request with a category filter passes every item outside it as ``exclude``:
    masked search (ours) against searching ``k + len(exclude)`` deep and dropping them after."""
    from collections import Counter

    import numpy as np

    top = Counter(c for d in items for c in d.get("categories", [])[-1:]).most_common(1)[0][0]
    outside = {d["item_id"] for d in items if top not in d.get("categories", [])}
    t = time.perf_counter()
    masked, masked_sc = idx.search(queries, n=k, exclude=outside)
    masked_s = time.perf_counter() - t
    t = time.perf_counter()
    deep, deep_sc = idx.search(queries, n=k + len(outside))
    deep_s = time.perf_counter() - t
    # Same top-k scores (ids may differ only where scores tie).
    same = sum(np.allclose(ms, [s for i, s in zip(d, ds) if i not in outside][:k])
               for ms, d, ds in zip(masked_sc, deep, deep_sc))
    return {"filter_category": top, "filter_excluded": len(outside), "filter_queries": len(queries),
            "filter_masked_qps": len(queries) / masked_s, "filter_deep_qps": len(queries) / deep_s,
            "filter_same_results": same / len(queries)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="train,e2e,bm25")
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", default="/tmp/g4r_demo_model")
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--gen-batches", default="4,16,64", help="gen_batch_size values to time (the default is added)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--out", default=None, help="also write the results (with the machine) to this JSON file")
    a = ap.parse_args()
    import sys

    import torch

    from genrec.eval.runcard import load_average, machine

    torch.set_num_threads(a.threads)
    res = {"command": "python " + " ".join(sys.argv), "threads": a.threads, "machine": machine(),
           "load_average_at_start": load_average()}
    for w in a.what.split(","):
        t = time.perf_counter()
        if w == "train":
            res["train"] = train_speed(a.examples, a.size, a.batch)
        elif w == "e2e":
            res["e2e"] = e2e_speed(a.model_dir, a.users, 10, 10, [int(x) for x in a.gen_batches.split(",")])
        elif w == "bm25":
            res["bm25"] = bm25_speed(a.queries)
        res[f"{w}_wall_s"] = time.perf_counter() - t
        print(json.dumps(res, indent=1), flush=True)
    res["load_average_at_end"] = load_average()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
