"""GPT4Rec with a pre-trained LM (SmolLM2-135M) on a 2-core CPU: what each adaptation lever costs
and what the adapted model gives, against the scratch LM and the baselines on the same users.

    # tokens/s of each lever (same Beauty training examples, a few optimizer steps each)
    python benchmarks/gpt4rec_pretrained.py speed --steps 6
    # train (resumable: run the same command again) and save; the time budget stops training
    python benchmarks/gpt4rec_pretrained.py fit --name smol8-lora --param lm=smollm2-135m \
        --param keep_layers=8 --param lora_r=16 --param max_history=5 --param time_budget=3600 \
        --checkpoint-dir /tmp/gptpt/ckpt-smol8 --save-dir /tmp/gptpt/model-smol8
    # evaluate a saved model, or a registered baseline, on the seeded test sample
    python benchmarks/gpt4rec_pretrained.py eval --name smol8-lora --model-dir /tmp/gptpt/model-smol8 --test-users 300
    python benchmarks/gpt4rec_pretrained.py eval --name itemknn --baseline itemknn --test-users 300
    # cold start: fit and evaluate on the split that keeps 10% of items out of training (same flag both times)
    python benchmarks/gpt4rec_pretrained.py fit --cold-items 0.1 --name smol-cold ... --save-dir /tmp/gptpt/model-cold
    python benchmarks/gpt4rec_pretrained.py eval --cold-items 0.1 --test-users 0 --name smol-cold --model-dir /tmp/gptpt/model-cold
    # the same saved model with sampled queries instead of beam search
    python benchmarks/gpt4rec_pretrained.py eval --decode sample --name smol8-sample --model-dir /tmp/gptpt/model-smol8
    python benchmarks/gpt4rec_pretrained.py render

Every step adds its part (command, machine, load, wall time) to
``benchmarks/results/gpt4rec_pretrained_<dataset>.json``; ``render`` writes the ``.md`` page.
Quality: Recall/NDCG@10/20/40 with m=10 queries merged per K, on ``--test-users`` test users
drawn with ``--seed`` (the same users for every row), plus query diversity: distinct content
words across a user's m queries, and the share of queries that copy a catalog title verbatim.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

# Before torch loads: spinning OpenMP threads are many times slower on a busy shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
OUT = Path(__file__).parent / "results"
DATA = dict(dataset="amazon-beauty", split="user", preprocess="gpt4rec")
STOP = set("the and for with you your from this that are all new not one two set pack size count color "
           "inch inches ounce ounces fluid fl oz ml piece pieces pcs".split())


def _split(dataset: str, seed: int, cold_items: float = 0.0):
    from genrec.experiments.config import DataConfig
    from genrec.experiments.recipe import load_split

    return load_split(DataConfig(**{**DATA, "dataset": dataset, "cold_items": cold_items}), seed=seed)


def _stamp() -> dict:
    from genrec.eval.runcard import load_average, machine
    from genrec.torch_utils import cpu_has_fast_bf16

    return {"command": "python " + " ".join(sys.argv), "machine": machine(), "bf16_fast": cpu_has_fast_bf16(),
            "load_average": load_average(), "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def _update(dataset: str, section: str, key: str, value) -> None:
    """Add one part to the results JSON, under a lock: runs of this script may share the file."""
    from rerank_eval import locked

    path = OUT / f"gpt4rec_pretrained_{dataset}.json"
    with locked(path):
        d = json.loads(path.read_text()) if path.is_file() else {}
        d.setdefault(section, {})[key] = value
        path.write_text(json.dumps(d, indent=1, default=str) + "\n")


# -- speed ---------------------------------------------------------------------------------------------
K10 = {"keep_layers": 10, "keep_last": 4}  # the first 6 + the last 4 of SmolLM2's 30 blocks
LORA = (16, "all-linear")
SPEED = {  # name: (prepare_pretrained kwargs, prompt budget, TrainConfig overrides)
    "full fine-tuning, 30 layers": ({}, "short", {}),
    "LoRA r=16 all-linear, 30 layers": ({"lora": LORA}, "short", {}),
    "keep 10 (6+4), full fine-tuning": (K10, "short", {}),
    "keep 10 (6+4) + LoRA r=16 all-linear": ({**K10, "lora": LORA}, "short", {}),
    "keep 10 (6+4) + LoRA r=16 q,v": ({**K10, "lora": (16, ("q_proj", "v_proj"))}, "short", {}),
    "keep 10 (6+4) + LoRA, long prompts (200 tokens)": ({**K10, "lora": LORA}, "long", {}),
    "keep 10 (6+4) + LoRA, target-only loss": ({**K10, "lora": LORA}, "short", {"target_only_loss": True}),
    "keep 10 (6+4) + LoRA, no packing": ({**K10, "lora": LORA}, "short", {"row_len": None}),
    "keep 10 (6+4) + LoRA, fp32": ({**K10, "lora": LORA}, "short", {"bf16": False}),
}
PROMPTS = {"short": dict(max_title_tokens=16, max_prompt_tokens=120, max_items=5),
           "long": dict(max_title_tokens=24, max_prompt_tokens=200, max_items=None)}


def speed(a) -> None:
    import numpy as np
    import torch

    from genrec.lm.adapt import LoraSpec, adapt_info, prepare_pretrained
    from genrec.lm.train import TrainConfig, build_examples, train_lm
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    torch.set_num_threads(a.threads)
    sp = _split(a.dataset, a.seed)
    users = sorted(sp.train.users)
    pick = np.random.default_rng(a.seed).choice(len(users), a.batch_size * a.steps, replace=False)
    rows = []
    for name, (kw, budget, over) in SPEED.items():
        if a.only and not any(s in name for s in a.only.split("|")):
            continue
        lora = kw.get("lora")
        model, tok = prepare_pretrained(a.lm, keep_layers=kw.get("keep_layers"), keep_last=kw.get("keep_last", 0),
                                        lora=LoraSpec(r=lora[0], alpha=2 * lora[0], target_modules=lora[1]) if lora else None)
        builder = PromptBuilder(tok, gpt4rec_template("products"), **PROMPTS[budget])
        titles = builder.titles_ids(sp.catalog.titles)
        seqs = [[titles[j] for j in sp.catalog.indices(sp.train[users[i]], skip_unknown=True)] for i in pick]
        ex = build_examples(builder, seqs)
        longest = max(len(e[0]) for e in ex)
        cfg = TrainConfig(epochs=1, max_steps=a.steps, lr=1e-4, batch_size=a.batch_size, target_only_loss=False,
                          row_len=512, progress=False, seed=a.seed)
        for k, v in over.items():
            setattr(cfg, k, longest if (k == "row_len" and v is None) else v)
        t = time.perf_counter()
        res = train_lm(model, ex, cfg, pad_id=tok.pad_token_id)
        info = adapt_info(model)
        row = {"lever": name, "tokens_per_s": round(res.tokens_per_s, 1), "steps": res.steps,
               "examples": len(ex), "mean_example_tokens": round(float(np.mean([len(e[0]) for e in ex])), 1),
               "trainable_parameters": info["trainable_parameters"], "parameters": info["parameters"],
               "precision": res.fit_info.get("precision"), "seconds": round(time.perf_counter() - t, 1),
               "load_average": _stamp()["load_average"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
        del model
    _update(a.dataset, "speed", a.tag, {**_stamp(), "lm": a.lm, "batch_size": a.batch_size, "steps": a.steps,
                                        "rows": rows})


# -- fit / eval ----------------------------------------------------------------------------------------
def fit(a) -> None:
    import torch

    from genrec.models.gpt4rec import GPT4Rec
    from genrec.models.registry import parse_params

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    sp = _split(a.dataset, a.seed, a.cold_items)
    available = len(sp.train)
    if a.train_users and a.train_users < available:
        import numpy as np

        from genrec.data.sequences import Sequences

        users = sorted(sp.train.users)
        keep = sorted(users[i] for i in np.random.default_rng(a.seed).choice(len(users), a.train_users, replace=False))
        sp.train = Sequences({u: sp.train[u] for u in keep}, None,
                             list(sp.train.log) + [f"{a.train_users} users drawn with seed {a.seed}"])
    params = {"num_queries": 10, "valid_users": a.valid_users, "seed": a.seed, "progress": True,
              "checkpoint_dir": a.checkpoint_dir, **parse_params(a.param, "gpt4rec")}
    model = GPT4Rec(**params).fit(sp)
    model.save(a.save_dir)
    _update(a.dataset, "fits", a.name, {**_stamp(), "params": params, "save_dir": a.save_dir, "cold_items": a.cold_items,
                                        "train_users": len(sp.train), "train_users_available": available,
                                        "fit_info": model.fit_info_, "adapt": getattr(model, "adapt_info_", None),
                                        "train_history": model.train_history_, "tokens_per_s": getattr(model, "train_tokens_per_s_", 0.0),
                                        "k1_b": [model.k1_, model.b_], "wall_seconds": round(time.perf_counter() - t0, 1)})


def query_diversity(queries: list[list[str]], titles: set[str]) -> dict:
    """Mean distinct content words across a user's queries, their share of all content words, and
    the share of queries equal to a catalog title."""
    distinct, share, copies, n = [], [], 0, 0
    for qs in queries:
        words = [w for q in qs for w in re.findall(r"[a-z]{3,}", q.lower()) if w not in STOP]
        distinct.append(len(set(words)))
        share.append(len(set(words)) / max(len(words), 1))
        copies += sum(q.strip() in titles for q in qs)
        n += len(qs)
    k = max(len(queries), 1)
    return {"distinct_content_words": round(sum(distinct) / k, 2), "distinct_share": round(sum(share) / k, 3),
            "verbatim_title_share": round(copies / max(n, 1), 3)}


def evaluate_one(a) -> None:
    import torch

    from genrec.eval.evaluate import evaluate
    from genrec.models.registry import create, load_model, parse_params

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    sp = _split(a.dataset, a.seed, a.cold_items)
    if a.cold_items:  # the model (fitted on this split) never saw these targets in training
        sp = sp.cold_view()
    if a.model_dir:
        model = load_model(a.model_dir)
        model.num_queries = 10
        if a.decode:
            model.decode = a.decode
    else:
        params = parse_params(a.param, a.baseline)
        if a.baseline == "itemknn" and not params:
            params = {"neighbors": 500, "shrinkage": 20.0, "recency_decay": 0.7, "fill_popular": True}
        model = create(a.baseline, **params).fit(sp)
    rep = evaluate(model, sp, ks=(10, 20, 40), max_cases=a.test_users or None, seed=a.seed, progress=True)
    row = {**_stamp(), "model_dir": a.model_dir, "baseline": a.baseline, "test_users": a.test_users,
           "cold_items": a.cold_items, "decode": getattr(model, "decode", None),
           "users_evaluated": len(rep.per_case),
           "metrics": {k: round(float(v), 4) for k, v in rep.table.items() if k.startswith(("recall", "ndcg"))}}
    if hasattr(model, "generate_queries"):
        import numpy as np

        cases = list(sp.test)
        rng = np.random.default_rng(a.seed)
        n = min(a.diversity_users, len(cases))
        sample = [cases[i] for i in sorted(rng.choice(len(cases), n, replace=False))]
        t = time.perf_counter()
        qs = model.generate_queries([list(c.history) for c in sample])
        row["diversity"] = {**query_diversity([[q for q, _ in r] for r in qs], set(sp.catalog.titles)),
                            "users": n, "seconds": round(time.perf_counter() - t, 1)}
        row["examples"] = [{"history": [sp.catalog[i].title for i in c.history[-3:]],
                            "target": sp.catalog[c.target].title, "queries": [q for q, _ in r]}
                           for c, r in zip(sample[:3], qs[:3])]
    row["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({k: row[k] for k in ("metrics", "wall_seconds")} | {"diversity": row.get("diversity")}), flush=True)
    _update(a.dataset, "eval", a.name, row)


NOTES = "<!-- hand-written notes below this line are kept when the page is rendered again -->"


def _m(row: dict, key: str) -> str:
    v = row.get("metrics", {}).get(key)
    return "-" if v is None else f"{v:.4f}"


def _quality_section(title: str, intro: str, ev: dict) -> list[str]:
    out = [f"## {title}", "",
           intro + "m = 10 queries per user, merged separately for each K (as GPT4Rec's evaluation); baselines fitted on "
           "all training users. Query diversity on a seeded sample of test users: distinct content words "
           "(3+ letters, minus stop and unit words) across a user's 10 queries, their share of all content words, "
           "and the share of queries that are a catalog title verbatim.", "",
           "| model | test users | R@10 | R@20 | R@40 | N@10 | N@20 | N@40 | distinct words | distinct share | verbatim titles | eval wall (min) | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in ev.items():
        dv = r.get("diversity") or {}
        users = r.get("users_evaluated") or r["test_users"] or "all"
        out.append(f"| {name} | {users} | " + " | ".join(_m(r, f"{m}@{k}") for m in ("recall", "ndcg") for k in (10, 20, 40))
                   + f" | {dv.get('distinct_content_words', '-')} | {dv.get('distinct_share', '-')} | "
                   f"{dv.get('verbatim_title_share', '-')} | {r['wall_seconds'] / 60:.1f} | {r['load_average'][0]} |")
    out += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in ev.values()), ""]
    for name, r in ev.items():
        for e in r.get("examples", [])[:2]:
            out.append(f"- {name}: history (last 3) {' | '.join(e['history'])} -> target {e['target']}; queries: "
                       + " | ".join(e["queries"][:5]))
    return out + [""]


def render(path: Path) -> None:
    """The Markdown page of the results JSON: levers' speed, fits, and quality on the same users."""
    from genrec.eval.report import write_keeping_notes

    d = json.loads(path.read_text())
    out = [f"# GPT4Rec with a pre-trained LM ({path.stem.removeprefix('gpt4rec_pretrained_')}, user split)", "",
           "Written by `python benchmarks/gpt4rec_pretrained.py render` from the parts below; every part states "
           "its command, machine, bf16 support and the load average (1/5/15 min) when it ran. The machine is "
           "shared: timings under load are comparisons between rows measured together, not the CPU's speed.", ""]
    for tag, sp in d.get("speed", {}).items():
        out += [f"## Training speed of each lever ({tag})", "",
                f"Command: `{sp['command']}`  ", f"Machine: {sp['machine'].get('cpu')}, {sp['machine'].get('cpus')} cores, "
                f"bf16 fast: {sp['bf16_fast']}; {sp['utc']} UTC; load at the end {sp['load_average']}; "
                f"LM {sp['lm']}, {sp['steps']} optimizer steps of {sp['batch_size']} Beauty training examples each "
                f"(the same examples for every row; short prompts: the last 5 titles, 16 tokens each).", "",
                "| lever | tokens/s | trainable / all parameters | precision | mean example tokens | load (1 min) |",
                "|---|---|---|---|---|---|"]
        for r in sp["rows"]:
            out.append(f"| {r['lever']} | {r['tokens_per_s']:.1f} | {r['trainable_parameters']:,} / {r['parameters']:,} | "
                       f"{r['precision']} | {r['mean_example_tokens']} | {r['load_average'][0]} |")
        out.append("")
    if d.get("fits"):
        out += ["## Training runs", ""]
        for name, f in d["fits"].items():
            h = f.get("train_history") or []
            out += [f"- **{name}**: `{f['command']}`  ", f"  {f['train_users']:,} of {f['train_users_available']:,} training users; "
                    f"{f['fit_info'].get('steps')} steps, stop: {f['fit_info'].get('stop_reason')}, precision "
                    f"{f['fit_info'].get('precision')}, training {f['fit_info'].get('train_seconds', 0) / 60:.1f} min, "
                    f"fit wall {f['wall_seconds'] / 60:.1f} min, {f['tokens_per_s']:.0f} tokens/s; loss per evaluation "
                    + ", ".join(f"{r['loss']:.3f}" for r in h) + "; validation Recall@10 "
                    + ", ".join(str(r.get('valid')) for r in h) + f"; BM25 k1, b = {f['k1_b']}; load at the end "
                    f"{f['load_average']} ({f['utc']} UTC).  ",
                    f"  Levers: {json.dumps({k: v for k, v in (f.get('adapt') or {}).items() if k != 'name'})}"]
        out.append("")
    ev = d.get("eval", {})
    warm = {k: r for k, r in ev.items() if not r.get("cold_items")}
    cold = {k: r for k, r in ev.items() if r.get("cold_items")}
    if warm:
        out += _quality_section("Quality on the same seeded test users", "", warm)
    if cold:
        out += _quality_section(
            "Cold start: test users whose target was held out of training",
            "Split with `cold_items` (a seeded share of items never appears in any training sequence or "
            "history, only as a target; `--cold-items`); every row, LM and baseline, was fitted on that split, "
            "and only the test users whose target is a held-out item are ranked. ", cold)
    write_keeping_notes(path.with_suffix(".md"), "\n".join(out) + "\n", NOTES)


def main() -> None:
    from genrec.lm.generate import MODES  # torch-free: the decoding modes GPT4Rec accepts

    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("speed", "fit", "eval", "render"))
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--lm", default="smollm2-135m")
    ap.add_argument("--name", default="run")
    ap.add_argument("--tag", default="default", help="speed: the key of this measurement")
    ap.add_argument("--only", default="", help="speed: levers whose name contains one of these (|-separated)")
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--valid-users", type=int, default=50)
    ap.add_argument("--train-users", type=int, default=0, help="fit: a seeded sample of training users (0 = all)")
    ap.add_argument("--test-users", type=int, default=300, help="0 = all")
    ap.add_argument("--diversity-users", type=int, default=100)
    ap.add_argument("--checkpoint-dir", default=None)
    ap.add_argument("--save-dir", default=None)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--decode", choices=MODES, default=None,
                    help="eval --model-dir: decode the m queries this way instead of the saved model's setting")
    ap.add_argument("--cold-items", type=float, default=0.0,
                    help="fit/eval: hold this share of items out of training (cold_items split); eval then ranks "
                         "only the test users whose target is a held-out item")
    a = ap.parse_args()
    if not 0.0 <= a.cold_items < 1.0:
        ap.error("--cold-items must be in [0, 1)")
    if a.mode == "speed":
        speed(a)
    elif a.mode == "fit":
        if not a.save_dir:
            ap.error("fit needs --save-dir")
        fit(a)
    elif a.mode == "eval":
        if bool(a.model_dir) == bool(a.baseline):
            ap.error("eval needs one of --model-dir or --baseline")
        evaluate_one(a)
    else:
        render(OUT / f"gpt4rec_pretrained_{a.dataset}.json")


if __name__ == "__main__":
    main()
