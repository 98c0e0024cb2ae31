"""Writes rerank_eval_<dataset>.{json,md} from the saved per-user rows and run records
(benchmarks/rerank_eval.py calls it after every config; ``--report-only`` calls it alone)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

KS = (5, 10, 20)
LLMRANK_KS = (1, 5, 10)


def metrics(ranks: list[int], ks=KS) -> dict:
    n = len(ranks)
    out = {}
    for k in ks:
        out[f"HR@{k}"] = sum(1 for r in ranks if 0 < r <= k) / n
    for k in ks:
        out[f"NDCG@{k}"] = sum(1 / math.log2(r + 1) for r in ranks if 0 < r <= k) / n
    return out


def paired_ci(diffs: list[float], seed: int = 0, b: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval (seeded) of per-user differences."""
    if not diffs:
        return (float("nan"),) * 3
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(b))
    return sum(diffs) / n, means[int(0.025 * b)], means[int(0.975 * b) - 1]


def _ndcg10(rank: int) -> float:
    """One case's NDCG@10 from its 1-based rank (0: not ranked), for paired differences."""
    return 1 / math.log2(rank + 1) if 0 < rank <= 10 else 0.0


def summarize(rows: list[dict], runs: dict) -> dict:
    from genrec.models.rerank.bias import position_bias
    from genrec.models.rerank.reasons import hallucination_rate

    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["config"], {})[r["user"]] = r  # a repeated user (re-run) keeps its last row
    base = by.get("itemknn", {})
    table, llmrank, bias, halluc, parse = [], [], {}, {}, {}
    for name, got in by.items():
        rs = list(got.values())
        users = list(got)
        secs = sum(r.get("seconds", 0) for r in rs)
        row = {"config": name, "users": len(rs), "users_per_s": round(len(rs) / secs, 3) if secs else None}
        if name.startswith("llmrank:"):
            row.update({k: round(v, 4) for k, v in metrics([r["rank"] for r in rs], LLMRANK_KS).items()})
            pop = by.get("llmrank:pop", {})
            if name != "llmrank:pop" and all(u in pop for u in users):  # popularity on the same users, paired
                row["pop_NDCG@10_same_users"] = round(metrics([pop[u]["rank"] for u in users], LLMRANK_KS)["NDCG@10"], 4)
                row["delta_pop_NDCG@10_ci95"] = [round(x, 4) for x in paired_ci(
                    [_ndcg10(got[u]["rank"]) - _ndcg10(pop[u]["rank"]) for u in users])]
            llmrank.append(row)
        else:
            row.update({k: round(v, 4) for k, v in metrics([r["rank"] for r in rs]).items()})
            if name != "itemknn" and all(u in base for u in users):
                same = metrics([base[u]["rank"] for u in users])
                row["itemknn_NDCG@10_same_users"] = round(same["NDCG@10"], 4)
                d = [_ndcg10(got[u]["rank"]) - _ndcg10(base[u]["rank"]) for u in users]
                row["delta_NDCG@10_ci95"] = [round(x, 4) for x in paired_ci(d)]
            table.append(row)
        if not name.startswith(("itemknn", "sasrec", "llmrank:pop", "llmrank:sasrec")):
            bias[name] = position_bias([r.get("ret_pos") for r in rs], [r["rank"] for r in rs])
        stats = [r["listwise_stats_so_far"] for r in rows if r["config"] == name and "listwise_stats_so_far" in r]
        if stats:
            parse[name] = stats[-1]  # counts accumulate over the model's life: the last row has them all
        flags = [x["unsupported"] for r in rs for x in r.get("reasons", [])]
        if flags:
            halluc[name] = {**hallucination_rate(flags),
                            "examples": [x for r in rs for x in r.get("reasons", [])][:8]}
    return {"runs": runs.get("runs", []), "retriever_selection": runs.get("retriever_selection"),
            "full_catalog": table, "llmrank_protocol": llmrank, "position_bias": bias, "hallucination": halluc,
            "listwise_parsing": parse}


def write_report(out: Path, rows_path: Path, meta_path: Path) -> None:
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()] if rows_path.is_file() else []
    runs = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    s = summarize(rows, runs)
    out.with_suffix(".json").write_text(json.dumps(s, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(s))


def _f(x) -> str:
    return "" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def markdown(s: dict) -> str:
    runs = s["runs"]
    ds = runs[-1]["dataset"] if runs else "?"
    L = [f"# LLM re-ranking evaluation, {ds} `loo` (benchmarks/rerank_eval.py)", "",
         "Every row is measured on the first U users of one seeded permutation of the test users "
         "(U = the row's `users`), so rows with the same U share users; HR/NDCG over the full catalog "
         "(the re-ranker re-orders the retriever's top 20, one target per user, HR@K = Recall@K). "
         "`delta NDCG@10` is the row minus item kNN on the same users, mean and 95% paired bootstrap interval.", "",
         "## Runs (the rows were appended by these runs, resumable per chunk of 8 users)", ""]
    for r in runs:
        m = r.get("machine", {})
        L.append(f"- `{r['command']}`: started {r.get('started_utc')} UTC, LLM {r.get('llm')}, machine "
                 f"{m.get('cpu', m.get('processor'))} ({m.get('cpus')} cores, bf16 {m.get('bf16', '?')}), "
                 f"{r.get('threads')} torch thread(s), load average at start {r.get('load_average_start')}, "
                 f"last {r.get('load_average_now')}, wall {r.get('wall_seconds')} s, fit {r.get('fit_seconds')}")
        lo = r.get("lora_model")
        if lo:
            L.append(f"  - verbalizer+lora: the model saved in `{lo.get('dir')}` by benchmarks/rerank_lora.py: "
                     f"{lo.get('train_users')} training users, {lo.get('steps')} steps, {lo.get('train_seconds')} s, "
                     f"stop {lo.get('stop_reason')}, best validation NDCG@10 {lo.get('best_valid')}, adapter kept "
                     f"{lo.get('adapter_kept')} (when not kept, the row is the zero-shot model)")
    if runs and runs[-1].get("split"):
        L += ["", f"Split: {runs[-1]['split']}"]
    sel = s.get("retriever_selection")
    if sel:
        L += ["", "## Retriever chosen on validation (`retriever=\"auto\"`)", "",
              f"Criterion: {sel['criterion']}; chosen: **{sel['chosen']}**.", "",
              "| retriever | " + " | ".join(next(iter(sel["validation"].values()))) + " |",
              "|---" * (1 + len(next(iter(sel["validation"].values())))) + "|"]
        for k, v in sel["validation"].items():
            L.append(f"| {k} | " + " | ".join(_f(x) for x in v.values()) + " |")
    cols = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]
    L += ["", "## Full catalog (retriever top 20 re-ranked by the LLM)", "",
          "| config | users | " + " | ".join(cols) + " | itemknn NDCG@10 same users | delta NDCG@10 [95% CI] | users/s |",
          "|---" * (len(cols) + 5) + "|"]
    for r in s["full_catalog"]:
        ci = r.get("delta_NDCG@10_ci95")
        L.append(f"| {r['config']} | {r['users']} | " + " | ".join(_f(r[c]) for c in cols)
                 + f" | {_f(r.get('itemknn_NDCG@10_same_users'))} | "
                 + (f"{ci[0]:+.4f} [{ci[1]:+.4f}, {ci[2]:+.4f}]" if ci else "") + f" | {_f(r['users_per_s'])} |")
    if s["llmrank_protocol"]:
        cols2 = [f"HR@{k}" for k in LLMRANK_KS] + [f"NDCG@{k}" for k in LLMRANK_KS]
        L += ["", "## LLMRank protocol (20 candidates: the target and 19 seeded random items, seeded order)", "",
              "| ranker | users | " + " | ".join(cols2) + " | pop NDCG@10 same users | delta vs pop NDCG@10 [95% CI] "
              "| users/s |", "|---" * (len(cols2) + 5) + "|"]
        for r in s["llmrank_protocol"]:
            ci = r.get("delta_pop_NDCG@10_ci95")
            L.append(f"| {r['config']} | {r['users']} | " + " | ".join(_f(r[c]) for c in cols2)
                     + f" | {_f(r.get('pop_NDCG@10_same_users'))} | "
                     + (f"{ci[0]:+.4f} [{ci[1]:+.4f}, {ci[2]:+.4f}]" if ci else "") + f" | {_f(r['users_per_s'])} |")
        L.append("\nChance: HR@1 0.05, HR@5 0.25, HR@10 0.50.")
    if s.get("listwise_parsing"):
        L += ["", "## Listwise answers (LLMRank-style written rankings, parsed back to letters)", "",
              "Counts over the answers of one run's model (all listwise configs of that process); `missing`: "
              "candidates the answer left out, kept in the retriever's order after the parsed ones.", ""]
        for name, st in s["listwise_parsing"].items():
            L.append(f"- {name}: {st.get('answers')} answers, {st.get('unparseable')} unparseable, "
                     f"{st.get('invented')} invented letters, {st.get('duplicates')} duplicates, "
                     f"{st.get('missing')} candidates missing")
    if s["position_bias"]:
        L += ["", "## Position bias: hit rate by the target's position among the candidates", "",
              "Position: in the prompt (LLMRank rows: uniformly random) or the retriever's rank (full-catalog rows; "
              "with bootstrap the prompt shows seeded shuffles, so this is the rank before shuffling). "
              "Cases whose target was not among the 20 candidates are left out.", ""]
        shown = [n for n in ("verbalizer", "verbalizer+boot3", "llmrank:verbalizer", "llmrank:verbalizer+boot3",
                             "listwise") if n in s["position_bias"]]
        L.append("Other configs' tables are in the .json.\n")
        for name in shown:
            rows = s["position_bias"][name]
            L += [f"**{name}**", "", "| position | cases | HR@1 | HR@5 | mean rank |", "|---|---|---|---|---|"]
            for b in rows:
                L.append(f"| {b['positions']} | {b['cases']} | {_f(b['HR@1'])} | {_f(b['HR@5'])} | {_f(b['mean_rank'])} |")
            L.append("")
    if s["hallucination"]:
        L += ["## LLM-written explanations: hallucination rate", "",
              "Share of generated one-sentence reasons (top item per user) that cite a title, brand, category or "
              "genre not in the user's shown history, the item itself or the profile "
              "(genrec/models/rerank/reasons.py).", "", "| config | explanations | hallucinated | rate |",
              "|---|---|---|---|"]
        for name, h in s["hallucination"].items():
            L.append(f"| {name} | {h['explanations']} | {h['hallucinated']} | {_f(h['rate'])} |")
        L += ["", "Examples:", ""]
        for h in s["hallucination"].values():
            for x in h["examples"][:6]:
                L.append(f"- `{x['text'][:160]}` -> unsupported: {x['unsupported'] or 'none'}")
    L.append("")
    return "\n".join(L)
