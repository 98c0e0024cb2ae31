"""Two servers on one database: each sees the other's catalog changes, and a stale one can
neither resurrect a deleted item nor overwrite a newer change (optimistic concurrency)."""

from __future__ import annotations

import time

import httpx
import pytest
from serve_helpers import QueryRec, popular, serving

TOKEN = "s3cret-token-long-enough"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _until(check, seconds: float = 5.0) -> None:
    deadline = time.time() + seconds
    while not check():
        if time.time() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def test_two_servers_share_one_catalog(any_db, serve_split):
    top = popular(serve_split, 3)
    with serving(QueryRec().fit(serve_split), any_db, token=TOKEN, refresh_seconds=0.2) as url_a, \
            serving(QueryRec().fit(serve_split), any_db, token=TOKEN, refresh_seconds=0.2) as url_b, \
            httpx.Client(base_url=url_a, timeout=30, headers=AUTH) as a, \
            httpx.Client(base_url=url_b, timeout=30, headers=AUTH) as b:
        assert b.get(f"/items/{top[0]}").status_code == 200  # B has read the item
        assert a.delete(f"/items/{top[0]}").status_code == 204
        _until(lambda: b.get(f"/items/{top[0]}").status_code == 404)  # B stops serving it
        assert top[0] not in [i["item_id"] for i in b.post("/recommend", json={"history": [], "k": 10}).json()["items"]]
        # B's PATCH does not undelete it (the write refreshes first and sees the deletion).
        assert b.patch(f"/items/{top[0]}", json={"brand": "Back"}).status_code == 404
        # An item added through A, and a change through B, reach the other server.
        new = {"id": "TWIN-1", "title": "Twin Server Shampoo", "categories": ["Hair Care"]}
        assert a.post("/items", json=new).status_code == 201
        _until(lambda: b.get("/items/TWIN-1").status_code == 200)
        assert b.post("/items", json=new).status_code == 409
        assert b.patch("/items/TWIN-1", json={"brand": "B-brand"}).status_code == 200
        _until(lambda: a.get("/items/TWIN-1").json()["brand"] == "B-brand")
        assert a.patch("/items/TWIN-1", json={"text": "from A"}).json() | {"source": None} == {
            "id": "TWIN-1", "title": new["title"], "brand": "B-brand", "categories": ["Hair Care"],
            "text": "from A", "source": None}
        r = b.post("/recommend", json={"history": ["Twin Server Shampoo"], "k": 3}).json()
        assert r["history"][0]["item_id"] == "TWIN-1"  # B's title index has A's item
    # Restarted on the database, either server has everything.
    with serving(QueryRec().fit(serve_split), any_db, token=TOKEN) as url, httpx.Client(base_url=url) as c:
        assert c.get(f"/items/{top[0]}").status_code == 404
        assert c.get("/items/TWIN-1").json()["text"] == "from A"


def test_a_write_from_a_stale_version_is_refused(any_db, serve_split):
    """The version check itself: a row written from a version another server has moved past
    changes nothing (409), whatever the in-memory view of the writer."""
    from genrec.serve.errors import Conflict
    from genrec.serve.store import ItemRow, Store

    s1, s2 = Store(any_db), Store(any_db)
    try:
        row = ItemRow("X1", "Item one", origin="api")
        with s1.write() as c:
            v1 = s1.save_item(c, row, None)
        with s2.write() as c:  # server 2 deletes, from the current version
            v2 = s2.save_item(c, ItemRow("X1", "Item one", origin="api", deleted=True), v1)
        assert v2 > v1
        with pytest.raises(Conflict, match="changed by another server"):
            with s1.write() as c:  # server 1 still believes v1: its un-delete is refused
                s1.save_item(c, ItemRow("X1", "Item one!", origin="api"), v1)
        with pytest.raises(Conflict):
            with s1.write() as c:  # and it cannot insert the row as if it were new either
                s1.save_item(c, ItemRow("X1", "Item one", origin="model"), None)
        rows, seq = s1.item_rows()
        assert [(r.item_id, r.deleted, r.title, r.seq) for r in rows] == [("X1", True, "Item one", v2)]
        assert seq == s1.catalog_seq() >= v2
    finally:
        s1.close()
        s2.close()


def test_a_title_search_server_re_indexes_what_another_server_added(db_url, title_bm25_dir, serve_split):
    """B (title-bm25) applies A's new item on a re-indexed copy of its model: B's search finds it."""
    hist = list(serve_split.test[0].history)
    last = serve_split.catalog[hist[-1]].title
    with serving(title_bm25_dir, db_url, token=TOKEN, refresh_seconds=0.2) as url_a, \
            serving(title_bm25_dir, db_url, token=TOKEN, refresh_seconds=0.2) as url_b, \
            httpx.Client(base_url=url_a, timeout=30, headers=AUTH) as a, \
            httpx.Client(base_url=url_b, timeout=30, headers=AUTH) as b:
        new = {"id": "TWIN-PAN", "title": f"{last} {last}", "categories": ["Kitchen"]}
        assert a.post("/items", json=new).status_code == 201

        def found_by_b() -> bool:
            body = b.post("/recommend", json={"history": hist, "k": 10}).json()
            return "TWIN-PAN" in [q for qq in body["why"]["queries"] for q in qq["items"]]

        _until(found_by_b)
