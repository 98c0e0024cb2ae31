"""What ``POST /chat`` answers and how long a turn takes, on ML-100K, per configuration.

There is no ground truth for conversational requests here, so this reports what the service did
(the queries, the top titles, the reasons' sources) and the latency of each turn, for the same
fixed conversations under each configuration:

- ``fallback``: no LLM, BM25 title search (the message itself is the query);
- ``fallback+minilm``: no LLM, BM25 and all-MiniLM-L6-v2 title search;
- ``smollm2+minilm``: SmolLM2-135M-Instruct (local) writes the query; BM25 and MiniLM search.

The served model is itemknn trained on the ``loo`` split (seed 0); the user is a fixed test user
(the split's first test case) whose history is posted through ``/events``. The service runs in process
(FastAPI's TestClient), so latencies exclude HTTP. Writes ``benchmarks/results/chat_turns_ml-100k.{json,md}``.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/chat_turns.py [--configs fallback,fallback+minilm,smollm2+minilm]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

CONVERSATIONS = [
    ["something like Toy Story but for adults", "older than that"],
    ["a scary movie for Halloween", "less gory please"],
    ["a romantic comedy set in New York", "something more recent"],
]
CONFIGS = {
    "fallback": {"backend": None, "embedder": None},
    "fallback+minilm": {"backend": None, "embedder": "all-minilm-l6-v2"},
    "smollm2+minilm": {"backend": "smollm2-135m", "embedder": "all-minilm-l6-v2"},
}
OUT = Path(__file__).parent / "results" / "chat_turns_ml-100k"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split
    from genrec.eval.runcard import load_average, machine, package_versions
    from genrec.models.registry import create
    from genrec.serve.chatting import ChatConfig

    started, t_all, load_start = datetime.now(timezone.utc), time.perf_counter(), load_average()
    split = make_split(load_dataset("ml-100k", preprocess="standard"), "loo", seed=0)
    model = create("itemknn").fit(split)
    user, history = split.test[0].user, list(split.test[0].history)
    runs = []
    for name in args.configs.split(","):
        cfg = ChatConfig(**CONFIGS[name])
        torch_before = "torch" in sys.modules
        cached = embedding_cached(cfg.embedder, model.catalog)
        with in_process(model, cfg) as (c, _, startup):
            ev = [{"user": user, "item": i, "time": 1_000_000 + n} for n, i in enumerate(history)]
            assert c.post("/events", json={"events": ev}).status_code == 200
            turns = []
            for conv in CONVERSATIONS:
                conv_id = None
                for message in conv:
                    body = {"message": message, "k": 5, **({"conversation_id": conv_id} if conv_id else
                                                           {"user": user})}
                    t = time.perf_counter()
                    r = c.post("/chat", json=body)
                    dt = time.perf_counter() - t
                    r.raise_for_status()
                    d = r.json()
                    conv_id = d["conversation_id"]
                    turns.append({"message": message, "turn": d["turn"], "seconds": round(dt, 3),
                                  "queries": [{"source": q["source"], "query": q["query"]} for q in d["queries"]],
                                  "top": [{"title": x["title"], "sources": x["sources"]} for x in d["items"][:3]],
                                  "notes": d["notes"]})
                    print(f"[{name}] {message!r}: {dt:.2f} s -> {[x['title'] for x in d['items'][:3]]}",
                          file=sys.stderr)
        secs = [x["seconds"] for x in turns]
        runs.append({"config": name, **CONFIGS[name], "startup_seconds": round(startup, 2),
                     "embedding_cache_hit": cached, "torch_loaded_before": torch_before, "turns": turns,
                     "median_turn_seconds": round(sorted(secs)[len(secs) // 2], 3), "max_turn_seconds": max(secs)})
    res = {"command": "PYTHONPATH=. .venv/bin/python benchmarks/chat_turns.py --configs " + args.configs,
           "dataset": "ml-100k", "split": "loo", "seed": 0, "served_model": "itemknn", "user": user,
           "history_items": len(history), "started_utc": started.isoformat(timespec="seconds"),
           "wall_seconds": round(time.perf_counter() - t_all, 1), "machine": machine(),
           "load_average_start": load_start, "load_average_end": load_average(), "versions": package_versions(),
           "torch_threads": os.environ.get("GENREC_THREADS", "default"), "runs": runs}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.md')}", file=sys.stderr)


@contextlib.contextmanager
def in_process(model: Any, chat: Any) -> Iterator[tuple[Any, Any, float]]:
    """The service for ``model`` with chat configuration ``chat`` on a temporary SQLite database, in
    process (FastAPI's TestClient: no HTTP, no server thread), writes open: ``(client, app, start-up
    seconds)``; ``app.state.chat`` is the chat engine."""
    from fastapi.testclient import TestClient

    from genrec.serve.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        app = create_app(model, f"sqlite:///{tmp}/chat.db", open_writes=True, chat=chat)
        startup = time.perf_counter() - t
        with TestClient(app) as c:
            yield c, app, startup


def embedding_cached(spec: str | None, catalog) -> bool | None:  # noqa: ANN001
    """Whether the catalog's title vectors are in the cache already (None without an embedder)."""
    if spec is None:
        return None
    from genrec.retrieval.embed import index_cache_path, model_fingerprint

    return index_cache_path(model_fingerprint(spec), catalog.ids, catalog.titles).is_file()


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# POST /chat on ML-100K: answers and turn latency", "",
             f"Command: `{res['command']}`  ",
             f"Date (UTC): {res['started_utc']}; wall time {res['wall_seconds']:.0f} s.  ",
             f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs; load average (1, 5, 15 min) "
             f"{res['load_average_start']} at the start, {res['load_average_end']} at the end (a shared machine: "
             "timings are comparisons between configurations, not absolute).  ",
             f"Data: {res['dataset']}, `{res['split']}` split, seed {res['seed']}; served model {res['served_model']}; "
             f"user {res['user']} with {res['history_items']} history items; k=5; in-process TestClient.", "",
             "| configuration | LLM | embedder | start-up s | title vectors | torch imported before | median turn s "
             "| max turn s |", "|---|---|---|---|---|---|---|---|"]
    vec = {None: "–", True: "from the cache", False: "computed"}
    for r in res["runs"]:
        lines.append(f"| {r['config']} | {r['backend'] or 'none'} | {r['embedder'] or 'none'} | "
                     f"{r['startup_seconds']:.1f} | {vec[r['embedding_cache_hit']]} | "
                     f"{'yes' if r['torch_loaded_before'] else 'no'} | {r['median_turn_seconds']:.2f} | "
                     f"{r['max_turn_seconds']:.2f} |")
    for r in res["runs"]:
        lines += ["", f"## {r['config']}", "", "| message | turn | s | queries | top 3 (sources) |", "|---|---|---|---|---|"]
        for t in r["turns"]:
            qs = "; ".join(f"{q['source']}: {q['query']}" for q in t["queries"]).replace("|", "\\|")
            top = "; ".join(f"{x['title']} ({'+'.join(x['sources'])})" for x in t["top"]).replace("|", "\\|")
            lines.append(f"| {t['message']} | {t['turn']} | {t['seconds']:.2f} | {qs} | {top} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
