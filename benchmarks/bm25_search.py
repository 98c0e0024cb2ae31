"""BM25Index.search (scores from bm25s, top-k by genrec's top_k) against bm25s's own ``retrieve``
(the selection BM25Index.search used before), on synthetic catalogs (issue 15).

    OMP_NUM_THREADS=1 python benchmarks/bm25_search.py [--sizes 10000,100000] [--queries 200] [--work DIR]

Titles from genrec.data.synthetic_large (seed 0); queries are 2-3 words of random titles (seed 0),
top 10, in batches of 50, as benchmarks/scale_catalog.py. The two selections alternate over 3
rounds and the best round of each is kept (the machine is shared). Checked: the score lists
are equal, and how many id lists are equal (the rest differ only inside ties, which retrieve
breaks arbitrarily). Writes results/bm25_search.json and results/bm25_search.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"
SEED = 0


def retrieve_search(idx, queries, n=10):
    """The previous BM25Index.search: bm25s retrieve (np.argpartition(scores, -k) per row)."""
    from genrec.retrieval.bm25 import tokenize

    vocab = idx._bm25.vocab_dict
    toks = [[w for w in tokenize(q) if w in vocab] for q in queries]
    has = [i for i, t in enumerate(toks) if t]
    out_ids, out_sc = [[] for _ in queries], [[] for _ in queries]
    if has:
        docs, scores = idx._bm25.retrieve([toks[i] for i in has], k=n, show_progress=False, return_as="tuple")
        for r, i in enumerate(has):
            keep = scores[r] > 0
            out_ids[i] = [idx.ids[d] for d in docs[r][keep]]
            out_sc[i] = scores[r][keep].astype(float).tolist()
    return out_ids, out_sc


def _qps(fn, queries) -> tuple[float, tuple]:
    t = time.perf_counter()
    ids, sc = [], []
    for s in range(0, len(queries), 50):
        a, b = fn(queries[s:s + 50])
        ids += a
        sc += b
    return len(queries) / (time.perf_counter() - t), (ids, sc)


def run(n_items: int, n_queries: int, work: Path) -> dict:
    from genrec.data.synthetic_large import write_synthetic_large
    from genrec.retrieval.bm25 import BM25Index

    from scale_catalog import _titles  # the benchmarks folder is on sys.path when run as a script

    folder = work / f"items_{n_items}"
    write_synthetic_large(folder, n_items, n_items, SEED)
    ids, titles = _titles(folder)
    rng = np.random.default_rng(SEED)
    queries = []
    for i in rng.choice(len(titles), n_queries, replace=False):
        words = titles[int(i)].split()
        queries.append(" ".join(rng.choice(words, min(len(words), int(rng.integers(2, 4))), replace=False)))
    idx = BM25Index().build(ids, titles)
    best_new, best_old = 0.0, 0.0
    for _ in range(3):
        q_old, old = _qps(lambda q: retrieve_search(idx, q), queries)
        q_new, new = _qps(lambda q: idx.search(q, 10), queries)
        best_old, best_new = max(best_old, q_old), max(best_new, q_new)
    same_scores = all(np.array_equal(np.float32(a), np.float32(b)) for a, b in zip(old[1], new[1]))
    same_ids = sum(a == b for a, b in zip(old[0], new[0]))
    return {"items": n_items, "queries": n_queries, "retrieve_qps": round(best_old, 1),
            "search_qps": round(best_new, 1), "speedup": round(best_new / best_old, 1),
            "scores_equal": same_scores, "id_lists_equal": same_ids}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    from genrec.eval.runcard import load_average, machine

    t0, load0 = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory(dir=a.work) as work:
        rows = []
        for n in (int(x) for x in a.sizes.split(",")):
            rows.append(run(n, a.queries, Path(work)))
            print(json.dumps(rows[-1]), flush=True)
    card = {"command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv), "seed": SEED, "machine": machine(),
            "load_before": load0, "load_after": load_average(), "wall_seconds": round(time.perf_counter() - t0, 1),
            "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "bm25_search.json").write_text(json.dumps(card, indent=1))
    m = card["machine"]
    md = ["# BM25Index.search: genrec's top_k vs bm25s retrieve", "",
          f"Command: `{card['command']}`; seed {SEED}; machine: {m.get('cpu', '?')}, {m['cpus']} cores, shared: load "
          f"average {card['load_before']} before, {card['load_after']} after; wall {card['wall_seconds']} s. "
          "Best of 3 alternating rounds; one thread. Titles and queries as benchmarks/scale_catalog.py. "
          "Where the id lists differ, the score lists are still equal position by position: the lists differ "
          "only in which of equally scored documents come first (retrieve breaks ties arbitrarily, search by "
          "document number; the synthetic titles share many words, so ties are common).", "",
          "| items | queries | bm25s retrieve q/s | search q/s | speed-up | scores equal | id lists equal |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['items']:,} | {r['queries']} | {r['retrieve_qps']} | {r['search_qps']} | {r['speedup']}x | "
                  f"{r['scores_equal']} | {r['id_lists_equal']}/{r['queries']} |")
    (OUT / "bm25_search.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
