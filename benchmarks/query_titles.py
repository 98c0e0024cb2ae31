"""How often GPT4Rec's generated queries are an exact catalog title (case and spaces ignored).

    python benchmarks/query_titles.py benchmarks/results/gpt4rec_beauty_small6.json [--dataset amazon-beauty]

Reads the example users' queries that ``gpt4rec_beauty.py`` stores in its results JSON. A scratch
LM that copies titles it was trained on writes queries whose BM25 top hit is that (warm) item, which
is why it cannot reach held-out items (benchmarks/results/cold_start_amazon-beauty.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    from genrec.data.registry import load_dataset, spec

    ds = load_dataset(args.dataset, args.data_dir, preprocess=spec(args.dataset).default_preprocess["user"])
    titles = {norm(t) for t in ds.catalog.titles}
    for path in args.results:
        examples = json.loads(path.read_text())["examples"]
        queries = [q[0] if isinstance(q, (list, tuple)) else q for ex in examples for q in ex["queries"]]
        exact = sum(norm(q) in titles for q in queries)
        print(f"{path.name}: {exact} of {len(queries)} queries ({len(examples)} users) are exact catalog titles "
              f"({exact / max(len(queries), 1):.0%})")


if __name__ == "__main__":
    main()
