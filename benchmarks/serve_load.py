"""Bounded load test of `genrec serve`, from a second process on 127.0.0.1, plus a crash check.

1. Train a model on the demo shop (default itemknn; ``--model gpt4rec`` when it is fast enough
   here) or use ``--model-dir``; start ``python -m genrec.cli serve`` on a free port with a fresh
   SQLite database and a token.
2. Seed the histories of ``--users`` test users through ``POST /events``.
3. Load: ``--requests`` requests (default 2,000) from ``--concurrency`` (16) concurrent httpx async
   workers: 80 % ``POST /recommend`` for a seeded user, 20 % ``POST /events``. Reports
   throughput, client-side p50/p90/p99 latency, errors (anything but 2xx, and transport errors),
   and the service's own ``/metrics``.
4. Crash: 16 writers send events; after ``--crash-after`` acknowledged events the server gets
   SIGKILL; it is restarted on the same database, and every acknowledged event (load phase and
   crash phase) must be in the users' histories.

Writes a markdown report (``--out``, default benchmarks/results/serve_load.md).
Run: ``.venv/bin/python benchmarks/serve_load.py``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TOKEN = "bench-token"
# The client drops idle connections after 2 s, before the server's 5 s keep-alive timeout: with
# equal timeouts, a request sent on a connection the server is closing fails (httpx ReadError).
KEEPALIVE = 2.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, db: str, in_place: bool = False) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {**os.environ, "GENREC_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", "GENREC_EDITS_IN_PLACE": "1" if in_place else ""}
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "genrec.cli", "serve", "--model-dir", str(model_dir), "--db", db,
                          "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if p.poll() is not None:
            raise SystemExit(f"server exited at start: {p.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return p, url, time.perf_counter() - t
        except httpx.TransportError:
            time.sleep(0.1)
    p.kill()
    raise SystemExit("server did not start in 300 s")


def stop_server(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def train(model: str, params: dict, out: Path) -> tuple[object, float]:
    from genrec.data.registry import load_dataset, spec
    from genrec.data.splits import make_split
    from genrec.models.registry import create

    s = spec("demo")
    split_name = s.default_split if model == "gpt4rec" else "loo"
    ds = load_dataset("demo", preprocess=s.default_preprocess.get(split_name, "standard"))
    sp = make_split(ds, split_name, seed=0)
    t = time.perf_counter()
    m = create(model, **params).fit(sp)
    secs = time.perf_counter() - t
    m.save(out)
    return sp, secs


async def seed(url: str, cases, concurrency: int) -> dict[str, list[int]]:
    acked: dict[str, list[int]] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60,
                                 limits=httpx.Limits(keepalive_expiry=KEEPALIVE)) as c:
        async def one(case) -> None:
            evs = [{"user": f"bench-{case.user}", "item": i, "time": 1_700_000_000 + n}
                   for n, i in enumerate(case.history)]
            async with sem:
                r = await c.post("/events", json={"events": evs})
            r.raise_for_status()
            acked[f"bench-{case.user}"] = r.json()["event_ids"]
        await asyncio.gather(*(one(cs) for cs in cases))
    return acked


async def load(url: str, users: list[str], items: list[str], n: int, concurrency: int, seed_: int,
               acked: dict[str, list[int]]) -> dict:
    rng = random.Random(seed_)
    plan = [("recommend" if rng.random() < 0.8 else "events", rng.choice(users), rng.choice(items)) for _ in range(n)]
    lat: dict[str, list[float]] = {"recommend": [], "events": []}
    errors: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for p in plan:
        queue.put_nowait(p)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=KEEPALIVE)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60, limits=limits) as c:
        async def worker() -> None:
            while True:
                try:
                    kind, user, item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                try:
                    if kind == "recommend":
                        r = await c.post("/recommend", json={"user": user, "k": 10})
                        ok = r.status_code == 200 and len(r.json()["items"]) == 10
                    else:
                        r = await c.post("/events", json={"events": [{"user": user, "item": item}]})
                        ok = r.status_code == 200
                        if ok:
                            acked.setdefault(user, []).extend(r.json()["event_ids"])
                    if not ok:
                        errors.append(f"{kind} {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    errors.append(f"{kind} {type(e).__name__}: {e}")
                lat[kind].append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        metrics = (await c.get("/metrics")).json()
    return {"wall": wall, "lat": lat, "errors": errors, "metrics": metrics}


async def crash_phase(url: str, proc: subprocess.Popen, items: list[str], concurrency: int, crash_after: int,
                      acked: dict[str, list[int]], unacked: list[dict]) -> dict:
    """Writers send events (each with a client ``event_id``) until ``crash_after`` are
    acknowledged; then SIGKILL the server. Events cut by the kill go to ``unacked``, to be retried."""
    count = [0]
    inflight_failed = [0]
    killed = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as c:
        async def writer(w: int) -> None:
            user, n = f"crash-{w}", 0
            while not killed.is_set():
                ev = {"user": user, "item": items[(w + n) % len(items)], "event_id": f"{user}-{n}"}
                try:
                    r = await c.post("/events", json={"events": [ev]})
                except httpx.HTTPError:
                    inflight_failed[0] += 1
                    unacked.append(ev)
                    return
                if r.status_code == 200:
                    acked.setdefault(user, []).extend(r.json()["event_ids"])
                    count[0] += 1
                n += 1

        async def killer() -> None:
            while count[0] < crash_after:
                await asyncio.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()

        await asyncio.gather(killer(), *(writer(w) for w in range(concurrency)))
    proc.wait(timeout=30)
    return {"acked_before_kill": count[0], "requests_cut_by_kill": inflight_failed[0]}


def retry_and_count(url: str, unacked: list[dict], writers: int) -> tuple[int, int]:
    """Retry every event the kill cut (same event_id) after the restart, twice over; returns
    (events retried, crash-phase events stored more than once)."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as c:
        for _ in range(2):
            for ev in unacked:
                c.post("/events", json={"events": [ev]}).raise_for_status()
        dup = 0
        for w in range(writers):
            h = c.get(f"/users/crash-{w}/history", params={"limit": 100_000})
            if h.status_code == 200:
                n = h.json()["count"]
                sent = max((int(e["event_id"].rsplit("-", 1)[1]) for e in unacked if e["user"] == f"crash-{w}"),
                           default=None)
                dup += max(0, n - (sent + 1 if sent is not None else n))
    return len(unacked), dup


async def edit_phase(url: str, users: list[str], items: list[str], seconds: float, concurrency: int) -> dict:
    """Recommendations/s for ``seconds`` without catalog edits, then with one client PATCHing item
    titles in a loop (each edit re-indexes a title-search model)."""
    async def recs(c: httpx.AsyncClient, stop: asyncio.Event, lat: list[float]) -> None:
        rng = random.Random(len(lat))
        while not stop.is_set():
            t = time.perf_counter()
            r = await c.post("/recommend", json={"user": rng.choice(users), "k": 10})
            r.raise_for_status()
            lat.append(time.perf_counter() - t)

    async def editor(c: httpx.AsyncClient, stop: asyncio.Event, lat: list[float]) -> None:
        n = 0
        while not stop.is_set():
            t = time.perf_counter()
            r = await c.patch(f"/items/{items[n % len(items)]}", json={"text": f"edit {n}"})
            r.raise_for_status()
            lat.append(time.perf_counter() - t)
            n += 1

    out = {}
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60,
                                 limits=httpx.Limits(keepalive_expiry=KEEPALIVE)) as c:
        for label, edits in (("without edits", False), ("with edits", True)):
            stop, lat, elat = asyncio.Event(), [], []
            tasks = [asyncio.create_task(recs(c, stop, lat)) for _ in range(concurrency)]
            if edits:
                tasks.append(asyncio.create_task(editor(c, stop, elat)))
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
            out[label] = {"recs_per_s": len(lat) / seconds, "p99_ms": pct(lat, 99), "max_ms": 1000 * max(lat),
                          "edits": len(elat), "edit_p50_ms": pct(elat, 50)}
    return out


def verify(url: str, acked: dict[str, list[int]]) -> tuple[int, int]:
    lost = total = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for user, ids in acked.items():
            h = c.get(f"/users/{user}/history", params={"limit": 100_000}).json()
            stored = {e["event_id"] for e in h["events"]}
            total += len(ids)
            lost += len(set(ids) - stored)
    return total, lost


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


def machine() -> str:
    """One line from the run card's machine facts (the one helper) and the load at the start."""
    from genrec.eval.runcard import load_average, machine as card_machine

    m = card_machine()
    return (f"{m['platform']}, {m['cpus']} CPU(s) ({m.get('cpu', m['processor'])}), "
            f"1-min load average {load_average()[0]:.1f} at the start, Python {platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="itemknn")
    ap.add_argument("--param", action="append", default=[], help="key=value model parameter (JSON value)")
    ap.add_argument("--model-dir", type=Path, default=None, help="serve this saved model instead of training")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--crash-after", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--edits-in-place", action="store_true",
                    help="serve with GENREC_EDITS_IN_PLACE=1 (re-index under the recommend lock, the old way)")
    ap.add_argument("--edit-seconds", type=float, default=0.0,
                    help="measure recommendations/s for this long without and with concurrent catalog edits")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_load.md")
    ap.add_argument("--append", action="store_true", help="append the report to --out instead of replacing it")
    a = ap.parse_args()
    t_all = time.perf_counter()
    mach = machine()
    work = Path(tempfile.mkdtemp(prefix="genrec-serve-load-"))
    params = {}
    for p in a.param:
        k, v = p.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    if a.model_dir is None:
        model_dir = work / "model"
        sp, fit_s = train(a.model, params, model_dir)
        model_name = a.model
        print(f"trained {a.model} in {fit_s:.1f} s", file=sys.stderr)
    else:
        from genrec.data.catalog import Catalog
        from genrec.data.splits import Case
        from genrec.models.base import CATALOG_FILE, read_model_meta

        model_dir, fit_s = a.model_dir, float("nan")
        model_name = read_model_meta(model_dir)["model"]
        catalog = Catalog.load(model_dir / CATALOG_FILE)
        rng = random.Random(a.seed)
        # Any saved model: seeded random histories of 3-15 items of its own catalog.
        test = [Case(f"U{n:05d}", tuple(rng.sample(catalog.ids, rng.randint(3, 15))), "") for n in range(a.users)]
        sp = argparse.Namespace(catalog=catalog, test=test)
    db = f"sqlite:///{work / 'serve.db'}"
    proc, url, start_s = start_server(model_dir, db, a.edits_in_place)
    try:
        cases = [c for c in sp.test if c.history][: a.users]
        items = sp.catalog.ids
        t = time.perf_counter()
        acked = asyncio.run(seed(url, cases, a.concurrency))
        seed_s = time.perf_counter() - t
        users = list(acked)
        print(f"seeded {sum(map(len, acked.values()))} events for {len(users)} users in {seed_s:.1f} s", file=sys.stderr)
        import psutil

        ps = psutil.Process(proc.pid)
        cpu0, self0 = ps.cpu_times(), psutil.Process().cpu_times()
        res = asyncio.run(load(url, users, items, a.requests, a.concurrency, a.seed, acked))
        cpu1, self1 = ps.cpu_times(), psutil.Process().cpu_times()
        server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        client_cpu = (self1.user + self1.system) - (self0.user + self0.system)
        print(f"load: {a.requests} requests in {res['wall']:.1f} s, {len(res['errors'])} errors", file=sys.stderr)
        edit = (asyncio.run(edit_phase(url, users, items, a.edit_seconds, a.concurrency)) if a.edit_seconds > 0
                else None)
        unacked: list[dict] = []
        crash = asyncio.run(crash_phase(url, proc, items, a.concurrency, a.crash_after, acked, unacked))
    except BaseException:
        proc.kill()
        raise
    proc2, url2, restart_s = start_server(model_dir, db)
    try:
        retried, duplicated = retry_and_count(url2, unacked, a.concurrency)
        total, lost = verify(url2, acked)
    finally:
        stop_server(proc2)
    wall = time.perf_counter() - t_all
    load_end = os.getloadavg()[0]
    lat = res["lat"]
    all_lat = lat["recommend"] + lat["events"]
    srv = res["metrics"]["endpoints"]
    cmd = "python benchmarks/serve_load.py " + " ".join(sys.argv[1:])
    lines = [
        "# `genrec serve` load test", "",
        f"- Command: `{cmd.strip()}` (wall time {wall:.1f} s, including "
        f"{'training and ' if a.model_dir is None else ''}two server starts)",
        f"- Machine: {mach}; {load_end:.1f} at the end",
        f"- Model: **{model_name}** ({model_dir if a.model_dir else 'trained by this script'}) on the SYNTHETIC "
        f"demo shop ({len(sp.catalog):,} items)"
        f"{f', fit {fit_s:.1f} s' if a.model_dir is None else '; random histories of 3-15 of its items'}; one uvicorn worker, SQLite file (WAL, synchronous=FULL), token auth on writes",
        f"- Client: a second process on 127.0.0.1, httpx.AsyncClient, {a.concurrency} concurrent; "
        f"{a.requests:,} requests, 80 % `POST /recommend` (k=10, user history read from the database), "
        "20 % `POST /events` (one event each)",
        f"- Server start {start_s:.1f} s; {len(cases)} users' histories seeded in {seed_s:.1f} s", "",
        "| | requests | p50 ms | p90 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|",
        f"| all | {len(all_lat):,} | {pct(all_lat, 50):.1f} | {pct(all_lat, 90):.1f} | {pct(all_lat, 99):.1f} | "
        f"{len(res['errors'])} |",
    ]
    for kind in ("recommend", "events"):
        lines.append(f"| {kind} | {len(lat[kind]):,} | {pct(lat[kind], 50):.1f} | {pct(lat[kind], 90):.1f} | "
                     f"{pct(lat[kind], 99):.1f} | {sum(e.startswith(kind) for e in res['errors'])} |")
    lines += [
        "", f"**Throughput: {a.requests / res['wall']:.0f} requests/s** ({a.requests:,} in {res['wall']:.1f} s); "
        f"errors: {len(res['errors'])}. CPU time per request: server {server_cpu / a.requests * 1000:.1f} ms, "
        f"client {client_cpu / a.requests * 1000:.1f} ms (both on the same {os.cpu_count()} cores).", "",
        f"Reading the numbers: the client keeps {a.concurrency} requests in flight, so its latency is mostly "
        f"queueing for the {os.cpu_count()} CPU cores the server, the client and any other jobs share (Little's "
        f"law: {a.concurrency} / throughput). "
        "The CPU cost per request is the number that carries over to a quiet machine.", "",
        "Server-side latency from `GET /metrics` (time inside the service, last 4,096 requests per endpoint):", "",
        "| endpoint | count | p50 ms | p90 ms | p99 ms |", "|---|---:|---:|---:|---:|",
    ]
    for ep in ("POST /recommend", "POST /events"):
        if ep in srv:
            m = srv[ep]["latency_ms"]
            lines.append(f"| `{ep}` | {srv[ep]['count']:,} | {m['p50']:.1f} | {m['p90']:.1f} | {m['p99']:.1f} |")
    mb = res["metrics"].get("model", {})
    if mb:
        lines += ["", f"Model calls: {mb['calls']:,} for {mb['requests']:,} recommend requests (micro-batching of "
                      f"concurrent requests, mean batch {mb['mean_batch']})."]
    lines += [
        "", "## Crash during writes",
        f"{a.concurrency} writers sent events; after {crash['acked_before_kill']} acknowledged events the server "
        f"got SIGKILL ({crash['requests_cut_by_kill']} requests in flight were cut, never acknowledged). "
        f"Restarted on the same database in {restart_s:.1f} s.", "",
        f"**Acknowledged events checked after the restart: {total:,} (seeding, load and crash phases); "
        f"lost: {lost}.**", "",
    ]
    lines += [f"Each crash-phase event carried a client `event_id`. The {retried} event(s) cut by the kill were "
              f"retried twice after the restart: **stored more than once: {duplicated}**.", ""]
    if edit:
        lines += ["## Recommendations during catalog edits", "",
                  f"{a.concurrency} clients recommending for {a.edit_seconds:.0f} s, then the same with one more "
                  "client PATCHing item texts in a loop. A title-search model re-indexes on each edit: "
                  + ("in place, under the lock recommendations take (`--edits-in-place`, the old way)."
                     if a.edits_in_place else "on a copy, swapped in when done (recommendations do not wait)."), "",
                  "| | recommendations/s | p99 ms | max ms | edits | edit p50 ms |", "|---|---:|---:|---:|---:|---:|"]
        for label, e in edit.items():
            lines.append(f"| {label} | {e['recs_per_s']:.1f} | {e['p99_ms']:.0f} | {e['max_ms']:.0f} | {e['edits']} | "
                         f"{e['edit_p50_ms']:.0f} |")
        lines.append("")
    if res["errors"]:
        lines += ["First errors:", ""] + [f"- `{e}`" for e in res["errors"][:5]] + [""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if a.append and a.out.exists():
        lines[0] = f"\n# `genrec serve` load test, {model_name}"
        a.out.write_text(a.out.read_text() + "\n".join(lines))
    else:
        a.out.write_text("\n".join(lines))
    print("\n".join(lines))
    if res["errors"] or lost or duplicated:
        sys.exit(1)


if __name__ == "__main__":
    main()
