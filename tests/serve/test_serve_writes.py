"""Writes against the real service (uvicorn on 127.0.0.1, real SQLite / PostgreSQL): who may write,
what input is refused, and the model and the database staying in step."""

from __future__ import annotations

import threading
import time

import httpx
from serve_helpers import IndexLimitRec, popular, serving

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NUL = "a\x00b"


def test_writes_without_a_configured_token_are_403_unless_opened(pop_dir, serve_split, db_url):
    item = popular(serve_split, 1)[0]
    ev = {"events": [{"user": "u", "item": item}]}
    writes = [("POST", "/events", ev), ("POST", "/items", {"id": "W1", "title": "New thing"}),
              ("PATCH", f"/items/{item}", {"brand": "B"}), ("DELETE", f"/items/{item}", None)]
    with serving(pop_dir, db_url) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/health").json()["auth"] == {"writes": "disabled", "reads": "open"}
        for method, path, body in writes:
            r = c.request(method, path, json=body)
            assert r.status_code == 403 and "GENREC_TOKEN" in r.json()["detail"], (method, path, r.text)
            assert c.request(method, path, json=body, headers=AUTH).status_code == 403  # no token to match
        assert c.post("/recommend", json={"history": [], "k": 2}).status_code == 200
        assert c.get(f"/items/{item}").status_code == 200  # nothing was deleted
    with serving(pop_dir, db_url, protect_reads=True) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/recommend", json={"history": [], "k": 2}).status_code == 403
        assert c.get("/health").json()["auth"] == {"writes": "disabled", "reads": "disabled"}
    with serving(pop_dir, db_url, open_writes=True) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/health").json()["auth"] == {"writes": "open", "reads": "open"}
        assert c.post("/events", json=ev).status_code == 200


def test_control_characters_are_422_on_both_databases(any_db, pop_dir, serve_split):
    item = popular(serve_split, 1)[0]
    bodies = [("POST", "/items", {"id": "N1", "title": NUL}), ("POST", "/items", {"id": NUL, "title": "t"}),
              ("POST", "/items", {"id": "N1", "title": "t", "brand": NUL}),
              ("POST", "/items", {"id": "N1", "title": "t", "text": NUL}),
              ("POST", "/items", {"id": "N1", "title": "t", "categories": ["Hair", NUL]}),
              ("POST", "/items", {"id": "N1", "title": "t", "brand": "tab\there"}),  # labels: no tab either
              ("POST", "/items", {"id": "N1", "title": "t\x7f"}), ("POST", "/items", {"id": "N1", "title": "t\x85"}),
              ("PATCH", f"/items/{item}", {"title": NUL}), ("PATCH", f"/items/{item}", {"brand": NUL}),
              ("PATCH", f"/items/{item}", {"text": NUL}), ("PATCH", f"/items/{item}", {"categories": [NUL]}),
              ("POST", "/events", {"events": [{"user": NUL, "item": item}]}),
              ("POST", "/recommend", {"history": [NUL]}), ("POST", "/recommend", {"history": [], "category": NUL})]
    params = [("GET", "/users/a%00b/history"), ("GET", "/users?prefix=a%00"), ("GET", "/items/a%00b"),
              ("PATCH", "/items/a%00b"), ("DELETE", "/items/a%00b")]
    with serving(pop_dir, any_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        for method, path, body in bodies:
            r = c.request(method, path, json=body, headers=AUTH)
            assert r.status_code == 422 and "control character" in r.text, (method, path, body, r.text)
        for method, path in params:
            r = c.request(method, path, json={"brand": "x"} if method == "PATCH" else None, headers=AUTH)
            assert r.status_code == 422 and "control character U+0000" in r.text, (method, path, r.text)
        assert c.get("/users/nobody/history").status_code == 404  # ordinary ids still work
        # Tab, newline and CR are ordinary whitespace in titles and text.
        r = c.post("/items", json={"id": "N1", "title": "Two\tpart\ntitle", "text": "line 1\r\n\tline 2"},
                   headers=AUTH)
        assert r.status_code == 201, r.text
        assert r.json()["title"] == "Two part title"
        assert c.get("/items/N1").status_code == 200
        assert sum(e["errors_5xx"] for e in c.get("/metrics").json()["endpoints"].values()) == 0


def test_patch_null_fields(pop_dir, serve_split, db_url):
    """``null`` clears the brand; for title, categories and text it is a 422 naming the field."""
    item = popular(serve_split, 1)[0]
    old = serve_split.catalog[item]
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        for field in ("title", "categories", "text"):
            r = c.patch(f"/items/{item}", json={field: None}, headers=AUTH)
            assert r.status_code == 422, r.text
            err = r.json()["errors"][0]
            assert err["loc"] == ["body", field] and f"{field} cannot be null" in err["msg"]
        r = c.patch(f"/items/{item}", json={"brand": None, "categories": [], "text": ""}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json() | {"source": None} == {"id": item, "title": old.title, "brand": None, "categories": [],
                                               "text": "", "source": None}


def test_failed_model_update_changes_neither_model_nor_database(serve_split, db_url):
    """The model refuses a change after half applying it: 422, the served item is unchanged, and a
    restart on the same database shows the old title too (nothing was committed)."""
    item = popular(serve_split, 1)[0]
    old = serve_split.catalog[item].title
    long_title = "Very long title " * 10
    with serving(IndexLimitRec().fit(serve_split), db_url, token=TOKEN) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        r = c.patch(f"/items/{item}", json={"title": long_title}, headers=AUTH)
        assert r.status_code == 422 and "cannot be indexed" in r.json()["detail"], r.text
        assert c.get(f"/items/{item}").json()["title"] == old
        r = c.post("/recommend", json={"history": [old], "k": 1}).json()
        assert r["unresolved"] == [] and r["history"][0]["item_id"] == item
        assert c.patch(f"/items/{item}", json={"brand": "Kept"}, headers=AUTH).status_code == 200
    with serving(IndexLimitRec().fit(serve_split), db_url, token=TOKEN) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        assert c.get(f"/items/{item}").json() | {"source": None} == {
            "id": item, "title": old, "brand": "Kept", "categories": list(serve_split.catalog[item].categories),
            "text": serve_split.catalog[item].text, "source": None}


def _wait_for_lock_wait(url: str, timeout: float = 20.0) -> None:
    """Until some PostgreSQL session waits for a lock (our held LOCK TABLE)."""
    import psycopg

    deadline = time.time() + timeout
    with psycopg.connect(url, autocommit=True) as c:
        while time.time() < deadline:
            if c.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("no session started waiting for the lock")


def test_item_deleted_while_its_event_is_written_gets_no_later_event(pg_db, pop_dir, serve_split):
    """An event insert held up in PostgreSQL (a test session holds a lock on ``events``) while the
    item is deleted: the deletion waits for the event's check-and-insert to finish, so an event is
    never acknowledged for an item whose deletion was acknowledged first."""
    import psycopg

    item = popular(serve_split, 1)[0]
    done: dict[str, int] = {}

    def call(name: str, method: str, path: str, body: dict | None = None) -> None:
        done[name] = httpx.request(method, url + path, json=body, headers=AUTH, timeout=60).status_code

    with serving(pop_dir, pg_db, token=TOKEN) as url:
        with psycopg.connect(pg_db) as blocker:
            blocker.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")  # inserts wait; items do not
            post = threading.Thread(target=call, args=("event", "POST", "/events",
                                                       {"events": [{"user": "erin", "item": item}]}))
            post.start()
            _wait_for_lock_wait(pg_db)
            delete = threading.Thread(target=call, args=("delete", "DELETE", f"/items/{item}"))
            delete.start()
            delete.join(timeout=1.5)  # without the lock in the service, the delete is acknowledged here
            pending = set(done)
            blocker.commit()
        post.join(timeout=30)
        delete.join(timeout=30)
        assert pending == set(), f"{pending} answered while the event's insert was still waiting"
        assert done == {"event": 200, "delete": 204}
        assert [e["item_id"] for e in httpx.get(url + "/users/erin/history", timeout=30).json()["events"]] == [item]
        assert httpx.post(url + "/events", json={"events": [{"user": "erin", "item": item}]}, headers=AUTH,
                          timeout=30).status_code == 404
