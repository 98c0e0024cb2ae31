"""Peak memory of loading a large Amazon-style reviews file: the streaming path (compact integer
arrays, genrec.data.loaders.events) against the in-memory path (Python lists of every row).

    python benchmarks/stream_load.py [--reviews 2000000] [--text-bytes 1400] [--work /tmp/genrec-stream]

Generates ``reviews_Synthetic_5.json`` (JSON lines: reviewerID, asin, unixReviewTime and a
reviewText of ``text-bytes`` characters, so the file is large while the event count stays what
the shared machine's memory allows; seed 0; Zipf-like users and items) into ``--work`` (never
committed), then loads it with ``load_amazon_reviews(stream=True)`` and ``stream=False``, each
in its own process, reporting wall time and peak RSS (ru_maxrss). Both Datasets are checked
equal (sequence digest). Writes results/stream_load.json and results/stream_load.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "results"
SEED = 0


def generate(path: Path, n: int, text_bytes: int) -> None:
    import numpy as np

    rng = np.random.default_rng(SEED)
    users = (rng.zipf(1.3, n) % (n // 8)).astype(np.int64)
    items = (rng.zipf(1.2, n) % (n // 20)).astype(np.int64)
    times = 1_300_000_000 + rng.integers(0, 3000, n) * 86400
    text = ("lorem ipsum dolor sit amet " * (text_bytes // 27 + 1))[:text_bytes]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for s in range(0, n, 100_000):
            f.write("".join(f'{{"reviewerID": "A{u:09d}", "asin": "B{i:09d}", "unixReviewTime": {t}, '
                            f'"overall": 5.0, "reviewText": "{text}"}}\n'
                            for u, i, t in zip(users[s:s + 100_000].tolist(), items[s:s + 100_000].tolist(),
                                               times[s:s + 100_000].tolist())))
    tmp.replace(path)


def child(folder: str, stream: bool) -> None:
    import warnings

    from genrec.data.loaders.amazon import load_amazon_reviews

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no metadata file: ids only, which it warns about
        ds = load_amazon_reviews(folder, stream=stream)
    secs = time.perf_counter() - t
    h = hashlib.blake2b(digest_size=8)
    for u, seq in ds.sequences.items.items():
        h.update(u.encode() + b":" + ",".join(seq).encode() + b"|" + repr(ds.sequences.times[u]).encode())
    print(json.dumps({"stream": stream, "seconds": round(secs, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "users": len(ds.sequences), "items": len(ds.catalog),
                      "events": sum(len(s) for s in ds.sequences.items.values()), "digest": h.hexdigest()}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reviews", type=int, default=2_000_000)
    ap.add_argument("--text-bytes", type=int, default=1400)
    ap.add_argument("--work", default="/tmp/genrec-stream")
    ap.add_argument("--child", default=None)
    a = ap.parse_args()
    if a.child is not None:
        child(a.work, a.child == "stream")
        return
    from genrec.eval.runcard import load_average, machine

    t0, load0 = time.perf_counter(), load_average()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "reviews_Synthetic_5.json"
    t = time.perf_counter()
    if not path.is_file():
        generate(path, a.reviews, a.text_bytes)
    gen_s = time.perf_counter() - t
    rows = []
    for mode in ("stream", "lists"):
        r = subprocess.run([sys.executable, __file__, "--work", a.work, "--child", mode], capture_output=True,
                           text=True, check=True)
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    card = {"command": "python " + " ".join(sys.argv), "seed": SEED, "reviews": a.reviews,
            "file_bytes": path.stat().st_size, "generate_seconds": round(gen_s, 1), "machine": machine(),
            "load_before": load0, "load_after": load_average(), "wall_seconds": round(time.perf_counter() - t0, 1),
            "identical": rows[0]["digest"] == rows[1]["digest"], "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "stream_load.json").write_text(json.dumps(card, indent=1))
    m = card["machine"]
    md = ["# Loading a large reviews file: streaming vs in-memory", "",
          f"Command: `{card['command']}`; seed {SEED}; file {card['file_bytes'] / 1e9:.2f} GB, {a.reviews:,} reviews "
          f"(SYNTHETIC, generated into {a.work}, not committed). Machine: {m.get('cpu', '?')}, {m['cpus']} cores, "
          f"shared: load average {card['load_before']} before, {card['load_after']} after; wall "
          f"{card['wall_seconds']} s. Each load in its own process; peak RSS = ru_maxrss. Same Dataset both ways: "
          f"{card['identical']}.", "",
          "| path | seconds | peak RSS MB | users | items | events |", "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {'streaming (EventLog arrays)' if r['stream'] else 'in-memory (lists per row)'} | "
                  f"{r['seconds']} | {r['peak_rss_mb']} | {r['users']:,} | {r['items']:,} | {r['events']:,} |")
    (OUT / "stream_load.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
