"""`genrec serve` as a real process: clear failures at start-up, and no acknowledged event lost
when the server is killed (SIGKILL) mid-run and restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from serve_helpers import popular


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_cmd(model_dir, db: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "genrec.cli", "serve", "--model-dir", str(model_dir), "--db", db,
            "--port", str(port), *extra]


def _start(model_dir, db: str, env: dict, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    p = subprocess.Popen(_serve_cmd(model_dir, db, port, *extra), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            raise AssertionError(f"server exited: {p.stderr.read()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return p, url
        except httpx.TransportError:
            time.sleep(0.1)
    p.kill()
    raise AssertionError("server did not come up in 60 s")


def test_startup_errors_exit_nonzero(tmp_path, pop_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run(_serve_cmd(tmp_path / "no-such-model", f"sqlite:///{tmp_path / 'x.db'}", _free_port()),
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode != 0
    assert "no-such-model" in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr
    # The same checks in-process (a GenrecError is what the CLI turns into exit code 2).
    from genrec.errors import GenrecError
    from genrec.serve.app import create_app

    for model, db, msg in [(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", "not a saved genrec model folder"),
                           (pop_dir, "mysql://nowhere/db", "unsupported database"),
                           (pop_dir, "sqlite://", "in-memory"),
                           (pop_dir, f"sqlite:///{tmp_path}/missing/dir/x.db", "cannot open database")]:
        with pytest.raises(GenrecError, match=msg):
            create_app(model, db)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=15)


def test_write_token_comes_from_the_environment(tmp_path, pop_dir, serve_split):
    """GENREC_TOKEN set: a write without it is 401, with it 200. Unset: writes are 403 (naming
    GENREC_TOKEN) unless `--open-writes`."""
    item = popular(serve_split, 1)[0]
    ev = {"events": [{"user": "u", "item": item}]}
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    base = {k: v for k, v in os.environ.items() if k not in ("GENREC_TOKEN", "GENREC_OPEN_WRITES",
                                                             "GENREC_PROTECT_READS")}
    proc, url = _start(pop_dir, db, {**base, "GENREC_TOKEN": "tok"})
    try:
        assert httpx.post(url + "/events", json=ev, timeout=10).status_code == 401
        assert httpx.post(url + "/events", json=ev, headers={"Authorization": "Bearer nope"},
                          timeout=10).status_code == 401
        assert httpx.post(url + "/events", json=ev, headers={"Authorization": "Bearer tok"},
                          timeout=10).status_code == 200
    finally:
        _stop(proc)
    proc, url = _start(pop_dir, db, base)
    try:
        r = httpx.post(url + "/events", json=ev, timeout=10)
        assert r.status_code == 403 and "GENREC_TOKEN" in r.json()["detail"]
        assert httpx.post(url + "/recommend", json={"user": "u"}, timeout=10).status_code == 200  # reads open
    finally:
        _stop(proc)
    proc, url = _start(pop_dir, db, base, "--open-writes")
    try:
        assert httpx.post(url + "/events", json=ev, timeout=10).status_code == 200
    finally:
        _stop(proc)


def test_sigkill_mid_run_loses_no_acknowledged_event(tmp_path, pop_dir, serve_split):
    items = popular(serve_split, 50)
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "GENREC_TOKEN": "tok", "PYTHONUNBUFFERED": "1"}
    auth = {"Authorization": "Bearer tok"}
    proc, url = _start(pop_dir, db, env)
    acked: dict[str, list[int]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        user = f"user-{w}"
        with httpx.Client(base_url=url, timeout=10, headers=auth) as c:
            n = 0
            while not stop.is_set():
                ev = {"events": [{"user": user, "item": items[(n + j) % len(items)]} for j in range(2)]}
                try:
                    r = c.post("/events", json=ev)
                except httpx.TransportError:
                    return  # the server died: this request was not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.setdefault(user, []).extend(r.json()["event_ids"])
                n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while sum(map(len, acked.values())) < 60 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run, while writers are sending
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    total = sum(map(len, acked.values()))
    assert total >= 60
    proc, url = _start(pop_dir, db, env)
    try:
        for user, ids in acked.items():
            h = httpx.get(f"{url}/users/{user}/history", params={"limit": 100_000}, timeout=10).json()
            stored = {e["event_id"] for e in h["events"]}
            assert set(ids) <= stored, f"{len(set(ids) - stored)} acknowledged events lost for {user}"
        # And the service keeps working after the crash.
        assert httpx.post(f"{url}/events", json={"events": [{"user": "user-0", "item": items[0]}]},
                          headers=auth, timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_database_url_from_the_environment_and_start_up_warnings(tmp_path, pop_dir, serve_split):
    """No --db: GENREC_DB_URL names the database (a password stays out of `ps`). A short token and
    open reads are warned about at start."""
    item = popular(serve_split, 1)[0]
    db_file = tmp_path / "from-env.db"
    port = _free_port()
    env = {**os.environ, "GENREC_TOKEN": "short", "GENREC_DB_URL": f"sqlite:///{db_file}", "PYTHONUNBUFFERED": "1"}
    env.pop("GENREC_PROTECT_READS", None)
    p = subprocess.Popen([sys.executable, "-m", "genrec.cli", "serve", "--model-dir", str(pop_dir), "--port",
                          str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert p.poll() is None and time.time() < deadline, "server did not start"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(url + "/events", json={"events": [{"user": "env", "item": item}]},
                       headers={"Authorization": "Bearer short"}, timeout=10)
        assert r.status_code == 200
    finally:
        p.terminate()
        p.wait(timeout=15)
    err = p.stderr.read()
    assert "GENREC_TOKEN is short" in err and "reads are open" in err, err
    assert db_file.exists() and not (tmp_path / "genrec.db").exists()
    import sqlite3

    with sqlite3.connect(db_file) as c:
        assert c.execute("SELECT count(*) FROM events WHERE user_id = 'env'").fetchone()[0] == 1
