"""The service's hardening (issue 17): bounded metrics, idempotent events, strict ids and times,
paginated users, 503 when the database is down, start-up warnings, the database URL from the
environment. Real uvicorn on 127.0.0.1, real SQLite / PostgreSQL."""

from __future__ import annotations

import random
import string

import httpx
import pytest
from serve_helpers import popular, serving

TOKEN = "s3cret-token-long-enough"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_metrics_labels_are_bounded(pop_dir, db_url):
    rng = random.Random(0)
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        for n in range(150):
            method = "".join(rng.choice(string.ascii_uppercase) for _ in range(8))
            path = rng.choice(["/recommend", "/items/x", "/users", f"/nowhere/{n}"])
            assert c.request(method, path).status_code in (404, 405)
        m = c.get("/metrics").json()["endpoints"]
    assert len(m) <= 6, sorted(m)
    assert m["OTHER /recommend"]["count"] >= 20 and "unmatched" in m


def test_invisible_characters_in_ids_and_ambiguous_times_are_422(pop_dir, serve_split, db_url):
    item = popular(serve_split, 1)[0]
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        for bad in ["u\u200b", "\u2066u", "u\ufeff", "a\u00adb"]:
            r = c.post("/events", json={"events": [{"user": bad, "item": item}]}, headers=AUTH)
            assert r.status_code == 422 and "format (invisible) character" in r.json()["detail"], r.text
            r = c.post("/items", json={"id": item + bad, "title": "Lookalike"}, headers=AUTH)
            assert r.status_code == 422, r.text
        assert c.get(f"/items/{item}\u200b").status_code == 422
        for t in [1_714_600_000_000, "1714600000000", -1]:  # milliseconds (or nonsense): refused, not guessed
            r = c.post("/events", json={"events": [{"user": "u", "item": item, "time": t}]}, headers=AUTH)
            assert r.status_code == 422 and "Unix seconds" in r.json()["detail"], r.text
        r = c.post("/events", json={"events": [{"user": "u", "item": item, "time": 1_714_600_000}]}, headers=AUTH)
        assert r.status_code == 200
        assert c.get("/users/u/history").json()["events"][0]["time"].startswith("2024-05-01T21:46:40")


def test_a_retried_event_is_stored_once(any_db, pop_dir, serve_split):
    a, b = popular(serve_split, 2)
    with serving(pop_dir, any_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        ev = {"events": [{"user": "rita", "item": a, "event_id": "e-1"}, {"user": "rita", "item": b}]}
        first = c.post("/events", json=ev, headers=AUTH).json()
        assert first["recorded"] == 2 and first["duplicates"] == 0
        again = c.post("/events", json=ev, headers=AUTH).json()  # a retry: e-1 again, the other is new
        assert again["event_ids"][0] == first["event_ids"][0] and again["duplicates"] == 1
        assert again["recorded"] == 1 and again["event_ids"][1] != first["event_ids"][1]
        h = c.get("/users/rita/history").json()
        assert h["count"] == 3 and [e["item_id"] for e in h["events"]].count(a) == 1
        # Same id within one request: stored once; reused for another event: 409, nothing stored.
        twice = {"events": [{"user": "sam", "item": a, "event_id": "e-2"}] * 2}
        assert c.post("/events", json=twice, headers=AUTH).json()["recorded"] == 1
        clash = {"events": [{"user": "sam", "item": b, "event_id": "e-1"}]}
        r = c.post("/events", json=clash, headers=AUTH)
        assert r.status_code == 409 and "e-1" in r.json()["detail"]
        assert c.get("/users/sam/history").json()["count"] == 1
        assert c.get("/users").json()["users"][0] == {"user": "sam", "events": 1,
                                                      "last_time": c.get("/users/sam/history").json()
                                                      ["events"][0]["time"]}


def test_users_are_paginated_newest_first(any_db, pop_dir, serve_split):
    item = popular(serve_split, 1)[0]
    with serving(pop_dir, any_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        evs = [{"user": f"p{n:02d}", "item": item, "time": 1_700_000_000 + n // 2} for n in range(25)]
        assert c.post("/events", json={"events": evs}, headers=AUTH).status_code == 200
        seen, cursor = [], None
        while True:
            page = c.get("/users", params={"limit": 10, **({"cursor": cursor} if cursor else {})}).json()
            seen += [u["user"] for u in page["users"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Newest first; users with the same last time by id.
        want = sorted((f"p{n:02d}" for n in range(25)), key=lambda u: (-(int(u[1:]) // 2), u))
        assert seen == want
        assert c.get("/users", params={"cursor": "not a cursor"}).status_code == 422
    from sqlalchemy import create_engine, inspect

    from genrec.serve.store import normalise_url

    eng = create_engine(normalise_url(any_db))
    assert "ix_users_last" in {ix["name"] for ix in inspect(eng).get_indexes("users")}
    eng.dispose()


def test_database_down_is_503_with_a_clear_body(pg_db, pop_dir, serve_split):
    import psycopg

    item = popular(serve_split, 1)[0]
    name = pg_db.rsplit("/", 1)[1]
    admin = pg_db.rsplit("/", 1)[0] + "/postgres"
    with serving(pop_dir, pg_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/events", json={"events": [{"user": "u", "item": item}]}, headers=AUTH).status_code == 200
        with psycopg.connect(admin, autocommit=True) as a:
            a.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            a.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            for method, path, body in [("POST", "/events", {"events": [{"user": "u", "item": item}]}),
                                       ("PATCH", f"/items/{item}", {"brand": "B"}),
                                       ("GET", "/users/u/history", None)]:
                r = c.request(method, path, json=body, headers=AUTH)
                assert r.status_code == 503, (method, path, r.text)
                assert r.json()["detail"].startswith("cannot") and "database" in r.json()["detail"]
                assert r.headers["retry-after"] == "5"
            assert c.get("/health").json()["database_ok"] is False
            # Recommending from an explicit history needs no database: still served.
            assert c.post("/recommend", json={"history": [item], "k": 3}).status_code == 200
        finally:
            with psycopg.connect(admin, autocommit=True) as a:
                a.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert c.post("/events", json={"events": [{"user": "u", "item": item}]}, headers=AUTH).status_code == 200


def test_start_up_warnings():
    from genrec.serve.auth import Auth

    def joined(**kw) -> str:
        return " | ".join(Auth(**kw).warnings("127.0.0.1"))

    assert "short" in joined(token="abc", protect_reads=True)
    assert "whitespace" in joined(token="a-long-enough-token-here\n", protect_reads=True)
    assert "reads are open" in joined(token="a-long-enough-token-here")
    assert joined(token="a-long-enough-token-here", protect_reads=True) == ""


def test_limits_from_the_environment_are_checked(monkeypatch):
    from genrec.errors import GenrecError
    from genrec.serve.server import limits_from_env

    monkeypatch.setenv("GENREC_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("GENREC_MAX_CONNECTIONS", "50")
    lim = limits_from_env()
    assert (lim.header_timeout, lim.max_connections) == (2.5, 50)
    monkeypatch.setenv("GENREC_BODY_TIMEOUT", "soon")
    with pytest.raises(GenrecError, match="GENREC_BODY_TIMEOUT='soon'"):
        limits_from_env()


@pytest.mark.parametrize("protect_reads", [False, True])
def test_openapi_marks_only_guarded_operations_as_needing_the_token(pop_dir, db_url, protect_reads):
    from genrec.serve.app import create_app

    spec = create_app(pop_dir, db_url, token=TOKEN, protect_reads=protect_reads).openapi()
    reads = [("/recommend", "post"), ("/users", "get"), ("/users/{user_id}/history", "get"),
             ("/items/{item_id}", "get"), ("/metrics", "get")]
    writes = [("/events", "post"), ("/items", "post"), ("/items/{item_id}", "patch"), ("/items/{item_id}", "delete")]
    for path, method in reads + writes:
        op = spec["paths"][path][method]
        guarded = (path, method) in writes or protect_reads
        assert bool(op.get("security")) == guarded, (path, method)
        assert ("401" in op["responses"]) == guarded, (path, method)
        if method in ("post", "patch"):
            assert {"400", "413", "422", "503"} <= set(op["responses"]), (path, method)
    assert "security" not in spec["paths"]["/health"]["get"]
    errors = {op["responses"][c]["content"]["application/json"]["schema"]["$ref"]
              for p in spec["paths"].values() for op in p.values() for c in op["responses"] if c[0] in "45"}
    assert errors == {"#/components/schemas/Error"}
