"""The HTTP API against the real service (uvicorn on 127.0.0.1) and a real database file."""

from __future__ import annotations

import threading

import httpx
import pytest
from serve_helpers import QueryRec, popular, serving

from genrec.core.why import as_why

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _ids(resp) -> list[str]:
    return [r["item_id"] for r in resp.json()["items"]]


def _is_pop_top(got: list[str], split, allowed, n: int) -> bool:
    """``got`` is a most-popular-first top ``n`` of ``allowed`` (ties in any order)."""
    counts = split.train.item_counts()
    want = sorted((counts.get(i, 0) for i in allowed), reverse=True)[:n]
    return len(got) == n and set(got) <= set(allowed) and [counts.get(i, 0) for i in got] == want


def test_recommend_user_history_and_events(pop_dir, serve_split, db_url):
    top = popular(serve_split, 5)
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/health").json()["model"] == "pop"
        # Unknown user: 200 with the popular fallback and a note; their history is 404.
        r = c.post("/recommend", json={"user": "alice", "k": 5})
        assert r.status_code == 200, r.text
        assert _is_pop_top(_ids(r), serve_split, serve_split.catalog.ids, 5)
        assert any("unknown user" in n for n in r.json()["notes"])
        assert c.get("/users/alice/history").status_code == 404
        # Events need the token; then the next recommendation uses them (history excluded).
        ev = {"events": [{"user": "alice", "item": top[0], "time": "2024-05-01T10:00:00Z"},
                         {"user": "alice", "item": top[1], "time": 1714600000}]}
        assert c.post("/events", json=ev).status_code == 401
        assert c.post("/events", json=ev, headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/events", json=ev, headers=AUTH)
        assert r.status_code == 200 and r.json()["recorded"] == 2
        h = c.get("/users/alice/history").json()
        assert [e["item_id"] for e in h["events"]] == [top[0], top[1]]
        assert h["events"][0]["title"] == serve_split.catalog[top[0]].title
        r = c.post("/recommend", json={"user": "alice", "k": 3})
        allowed = [i for i in serve_split.catalog.ids if i not in top[:2]]
        assert _is_pop_top(_ids(r), serve_split, allowed, 3)
        assert [x["item_id"] for x in r.json()["history"]] == [top[0], top[1]]
        # Unknown items are rejected as a whole batch (nothing half-written).
        bad = {"events": [{"user": "alice", "item": top[3]}, {"user": "alice", "item": "NOPE"}]}
        r = c.post("/events", json=bad, headers=AUTH)
        assert r.status_code == 404 and "NOPE" in r.json()["detail"]
        assert c.get("/users/alice/history").json()["count"] == 2
        assert [u["user"] for u in c.get("/users").json()["users"]] == ["alice"]


def test_explicit_history_titles_filters_and_deleted(pop_dir, serve_split, db_url):
    top = popular(serve_split, 30)
    cat = serve_split.catalog
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        title = cat[top[0]].title
        r = c.post("/recommend", json={"history": [f"  {title} ", top[1], "no such thing"], "k": 4})
        body = r.json()
        assert r.status_code == 200
        assert [h["item_id"] for h in body["history"]] == [top[0], top[1]]
        assert body["unresolved"] == ["no such thing"]
        allowed = [i for i in cat.ids if i not in top[:2]]
        assert _is_pop_top(_ids(r), serve_split, allowed, 4)
        # Exclusions and deletions: K items still come back, none of them removed ones.
        for i in top[2:5]:
            assert c.delete(f"/items/{i}", headers=AUTH).status_code == 204
        assert c.get(f"/items/{top[2]}").status_code == 404
        assert c.delete(f"/items/{top[2]}", headers=AUTH).status_code == 404
        r = c.post("/recommend", json={"history": [], "k": 10, "exclude_ids": [top[5]]})
        got = _ids(r)
        assert len(got) == 10 and not set(got) & {top[2], top[3], top[4], top[5]}
        assert _is_pop_top(got, serve_split, [i for i in cat.ids if i not in top[2:6]], 10)
        # Category filter: any level, case-insensitive; over-fetches until K pass.
        dept = cat[top[0]].categories[0]
        r = c.post("/recommend", json={"history": [], "k": 7, "category": dept.upper()})
        assert len(_ids(r)) == 7 and all(it["categories"][0] == dept for it in r.json()["items"])
        # A deleted item's title no longer resolves; a deleted id cannot be re-added.
        r = c.post("/recommend", json={"history": [cat[top[2]].title], "k": 1})
        assert r.json()["unresolved"] == [cat[top[2]].title]
        assert c.post("/items", json={"id": top[2], "title": "again"}, headers=AUTH).status_code == 409


def test_items_cold_start_and_restart(any_db, serve_split):
    model = QueryRec().fit(serve_split)
    new = {"id": "NEW-1", "title": "Zanzibar Glitter Shampoo, 8 oz", "brand": "Zanzibar",
           "categories": ["Hair Care", "Shampoo"], "text": "sparkly"}
    top = popular(serve_split, 3)
    with serving(model, any_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/items", json=new).status_code == 401
        r = c.post("/items", json=new, headers=AUTH)
        assert r.status_code == 201 and r.json()["source"] == "api"
        assert c.post("/items", json=new, headers=AUTH).status_code == 409
        assert c.get("/items/NEW-1").json()["title"] == new["title"]
        slash = {"id": "shelf/7 b", "title": "Slashed Id Conditioner", "categories": ["Hair Care"]}
        assert c.post("/items", json=slash, headers=AUTH).status_code == 201
        assert c.get("/items/shelf/7 b").json()["id"] == "shelf/7 b"
        assert c.post("/events", json={"events": [{"user": "u/1", "item": "shelf/7 b"}]}, headers=AUTH).status_code == 200
        assert c.get("/users/u/1/history").json()["events"][0]["item_id"] == "shelf/7 b"
        # Searchable at once: a text model's query finds the new item.
        m2 = QueryRec(extra_queries=["zanzibar"])
        m2.catalog, m2.pop_ = model.catalog, model.pop_
        why = as_why(m2.recommend([[]], k=3).why[0])
        assert why.queries[0].items == ("NEW-1",)
        r = c.patch(f"/items/{top[0]}", json={"title": "Renamed &amp; Improved"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["title"] == "Renamed & Improved"
        assert c.patch("/items/NOPE", json={"title": "x"}, headers=AUTH).status_code == 404
        assert c.patch(f"/items/{top[0]}", json={}, headers=AUTH).status_code == 422
        assert c.delete(f"/items/{top[1]}", headers=AUTH).status_code == 204
        ev = {"events": [{"user": "bob", "item": "NEW-1"}]}
        assert c.post("/events", json=ev, headers=AUTH).status_code == 200
    # Restart on the same database with a freshly loaded model: nothing is lost.
    fresh = QueryRec(extra_queries=["zanzibar"]).fit(serve_split)
    assert "NEW-1" not in fresh.catalog
    with serving(fresh, any_db, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/items/NEW-1").json()["brand"] == "Zanzibar"
        assert c.get(f"/items/{top[0]}").json()["title"] == "Renamed & Improved"
        assert c.get(f"/items/{top[1]}").status_code == 404
        assert [e["item_id"] for e in c.get("/users/bob/history").json()["events"]] == ["NEW-1"]
        r = c.post("/recommend", json={"history": ["Renamed & Improved"], "k": 5}).json()
        assert r["history"][0]["item_id"] == top[0]
        assert r["why"]["queries"][-1] == {"query": "zanzibar", "score": pytest.approx(-0.5), "items": ["NEW-1"]}
        assert top[1] not in [i["item_id"] for i in r["items"]]


def test_why_rendering_fields(query_model, serve_split, db_url):
    hist = serve_split.test[0].history
    with serving(query_model, db_url) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/recommend", json={"history": list(hist), "k": 8})
        assert r.status_code == 200
        body = r.json()
        assert body["model"] == "queryrec-test"
        qs = body["why"]["queries"]
        assert qs and all(set(q) == {"query", "score", "items"} for q in qs)
        assert set(body["why"]) == {"queries", "explanations", "profile", "filled_by_popularity", "extra"}
        ids = _ids(r)
        found = [i for q in qs for i in q["items"]]
        assert set(found) <= set(ids)
        for it in body["items"]:
            assert all(it["item_id"] in qs[n]["items"] for n in it["queries"])
        assert body["why"]["filled_by_popularity"] == sum(1 for it in body["items"] if not it["queries"])
        # Filters drop items from the queries' lists too.
        r2 = c.post("/recommend", json={"history": list(hist), "k": 8, "exclude_ids": ids[:2]}).json()
        assert not {i for q in r2["why"]["queries"] for i in q["items"]} & set(ids[:2])


def test_bad_input_is_4xx_never_500(pop_dir, serve_split, db_url):
    top = popular(serve_split, 1)
    with serving(pop_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        cases = [
            ("POST", "/recommend", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
            ("POST", "/recommend", {"content": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}}, 400),
            ("POST", "/recommend", {"json": []}, 422),
            ("POST", "/recommend", {"json": {}}, 422),
            ("POST", "/recommend", {"json": {"user": "a", "history": []}}, 422),
            ("POST", "/recommend", {"json": {"user": "a", "k": 0}}, 422),
            ("POST", "/recommend", {"json": {"user": "a", "k": "ten"}}, 422),
            ("POST", "/recommend", {"json": {"user": "a", "k": 10**6}}, 422),
            ("POST", "/recommend", {"json": {"user": "", "k": 1}}, 422),
            ("POST", "/recommend", {"json": {"user": "a\x00b"}}, 422),
            ("POST", "/recommend", {"json": {"user": "a", "bogus": 1}}, 422),
            ("POST", "/recommend", {"json": {"history": ["x"] * 1001}}, 422),
            ("POST", "/recommend", {"json": {"history": ["x" * 1001]}}, 422),
            ("POST", "/recommend", {"json": {"history": [None]}}, 422),
            ("POST", "/recommend", {"content": b'{"history": ["' + b"y" * 1_100_000 + b'"]}',
                                    "headers": {"Content-Type": "application/json"}}, 413),
            ("POST", "/events", {"json": {"events": []}, "headers": AUTH}, 422),
            ("POST", "/events", {"json": {"user": "a", "item": top[0]}, "headers": AUTH}, 422),
            ("POST", "/events", {"json": {"events": [{"user": "a", "item": top[0], "time": "yesterday"}]},
                                 "headers": AUTH}, 422),
            ("POST", "/events", {"json": {"events": [{"user": "a", "item": top[0], "time": -5e12}]},
                                 "headers": AUTH}, 422),
            ("POST", "/events", {"json": {"events": [{"user": "a", "item": top[0]}] * 1001}, "headers": AUTH}, 422),
            ("POST", "/items", {"json": {"id": "x", "title": ""}, "headers": AUTH}, 422),
            ("POST", "/items", {"json": {"id": "x", "title": "<b> </b> &nbsp;"}, "headers": AUTH}, 422),
            ("POST", "/items", {"json": {"id": "x", "title": "t" * 1001}, "headers": AUTH}, 422),
            ("POST", "/items", {"json": {"id": "x", "title": "t", "categories": "Hair"}, "headers": AUTH}, 422),
            ("PATCH", f"/items/{top[0]}", {"json": {"title": None}, "headers": AUTH}, 422),
            ("GET", "/users/a/history?limit=0", {}, 422),
            ("GET", "/nowhere", {}, 404),
            ("PUT", "/items/x", {"json": {}}, 405),
        ]
        for method, path, kw, want in cases:
            r = c.request(method, path, **kw)
            assert r.status_code == want, (method, path, str(kw)[:80], r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/json"), r.headers
        m = c.get("/metrics").json()
        assert sum(e["errors_5xx"] for e in m["endpoints"].values()) == 0
        assert m["endpoints"]["POST /recommend"]["errors_4xx"] >= 14
        assert m["endpoints"]["POST /recommend"]["latency_ms"]["p99"] > 0


def test_protect_reads_metrics_and_openapi(pop_dir, db_url):
    with serving(pop_dir, db_url, token=TOKEN, protect_reads=True) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/health").status_code == 200  # always open
        page = c.get("/")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/static/app.js").status_code == 200
        assert c.post("/recommend", json={"history": []}).status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.post("/recommend", json={"history": [], "k": 2}, headers=AUTH).status_code == 200
        m = c.get("/metrics", headers=AUTH).json()["endpoints"]
        assert m["POST /recommend"]["by_status"] == {"200": 1, "401": 1}
        spec = c.get("/openapi.json").json()
        for path in ["/recommend", "/events", "/items", "/items/{item_id}", "/users/{user_id}/history",
                     "/health", "/metrics"]:
            assert path in spec["paths"], path
        assert "RecommendRequest" in spec["components"]["schemas"]


def test_concurrent_events_same_user_lose_nothing(any_db, pop_dir, serve_split):
    items = popular(serve_split, 40)
    n_threads, per_thread = 8, 15
    errors: list[str] = []
    with serving(pop_dir, any_db, open_writes=True) as url:
        def worker(t: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                for j in range(per_thread):
                    batch = [{"user": "carol", "item": items[(t * per_thread + j + x) % len(items)],
                              "time": 1_700_000_000 + t * 1000 + j} for x in range(2)]
                    r = c.post("/events", json={"events": batch})
                    if r.status_code != 200:
                        errors.append(r.text)
                    c.post("/recommend", json={"user": "carol", "k": 3})

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        h = httpx.get(f"{url}/users/carol/history?limit=100000", timeout=30).json()
        assert h["count"] == n_threads * per_thread * 2
        assert len({e["event_id"] for e in h["events"]}) == h["count"]
        times = [e["time"] for e in h["events"]]
        assert times == sorted(times)


def test_concurrent_recommends_are_batched_but_answer_each_caller(query_model, serve_split, db_url):
    cases = serve_split.test[:24]
    want = {(n, k): query_model.recommend([list(c.history)], k=k).items[0]
            for n, c in enumerate(cases) for k in (5, 9)}
    got: dict = {}
    errors: list[str] = []
    with serving(query_model, db_url) as url:
        def worker(t: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                for n in range(t, len(cases), 6):
                    for k in (5, 9):
                        r = c.post("/recommend", json={"history": list(cases[n].history), "k": k})
                        if r.status_code != 200:
                            errors.append(r.text)
                        else:
                            got[(n, k)] = _ids(r)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and got == want


def test_query_search_model_keeps_its_query_groups_after_deletions(title_bm25_dir, serve_split, db_url):
    """A real title-bm25 model (GPT4Rec's search and merge, k/m slots per query) served with 45
    items deleted: the service passes the deletions (and exclude_ids, and items outside a category
    filter) to the model instead of asking for k + 45 and keeping the first k, which gave every
    slot to the first query."""
    from genrec.models.registry import load_model

    model = load_model(title_bm25_dir)
    hist, k = list(serve_split.test[0].history), 10
    queries = [q.to_dict() for q in as_why(model.recommend([hist], k=k).why[0]).queries]
    assert len(queries) == 5 and all(len(q["items"]) == 2 for q in queries)
    # Each query's first item, plus 40 items none of the queries reach in its top 200.
    near = set(model.recommend([hist], k=200).items[0]) | set(hist)
    gone = [q["items"][0] for q in queries] + [i for i in serve_split.catalog.ids if i not in near][:40]
    with serving(title_bm25_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        for i in gone:
            assert c.delete(f"/items/{i}", headers=AUTH).status_code == 204
        body = c.post("/recommend", json={"history": hist, "k": k}).json()
        got = [it["item_id"] for it in body["items"]]
        also = [q["items"][1] for q in queries]  # each query's second item, excluded by the request
        body2 = c.post("/recommend", json={"history": hist, "k": k, "exclude_ids": also}).json()
        body3 = c.post("/recommend", json={"history": hist, "k": k, "category": "skillet"}).json()
    assert len(got) == k and not set(got) & set(gone)
    assert [len(q["items"]) for q in body["why"]["queries"]] == [2] * 5, body["why"]["queries"]
    assert body["why"]["filled_by_popularity"] == 0
    assert got == model.recommend([hist], k=k, exclude=set(gone)).items[0]
    got2 = [it["item_id"] for it in body2["items"]]
    assert len(got2) == k and not set(got2) & (set(gone) | set(also))
    assert [len(q["items"]) for q in body2["why"]["queries"]] == [2] * 5, body2["why"]["queries"]
    # A category filter too: the merge picks among skillets (asking for more and filtering favoured query 1).
    assert len(body3["items"]) == k and all("Skillet" in it["categories"] for it in body3["items"])
    assert not {it["item_id"] for it in body3["items"]} & set(gone)
    assert [len(q["items"]) for q in body3["why"]["queries"]] == [2] * 5, body3["why"]["queries"]


def test_category_filter_sees_items_added_and_recategorised_through_the_api(title_bm25_dir, serve_split, db_url):
    """The ids outside a category are cached per catalog version: an item added, or moved into or
    out of the category, counts from the next request on."""
    hist = list(serve_split.test[0].history)
    last = serve_split.catalog[hist[-1]].title
    with serving(title_bm25_dir, db_url, token=TOKEN) as url, httpx.Client(base_url=url, timeout=30) as c:
        def skillets() -> list[str]:
            body = c.post("/recommend", json={"history": hist, "k": 10, "category": "skillet"}).json()
            assert len(body["items"]) == 10 and all("Skillet" in it["categories"] for it in body["items"])
            return [it["item_id"] for it in body["items"]]

        new = {"id": "NEW-PAN", "title": f"{last} {last}", "categories": ["Kitchen", "Pan"]}
        assert c.post("/items", json=new, headers=AUTH).status_code in (200, 201)
        assert "NEW-PAN" not in skillets()  # outside the category, and now cached as such
        assert c.patch("/items/NEW-PAN", json={"categories": ["Skillet"]}, headers=AUTH).status_code == 200
        assert skillets()[0] == "NEW-PAN"  # the best match for the newest history title
        assert c.patch("/items/NEW-PAN", json={"categories": ["Pan"]}, headers=AUTH).status_code == 200
        assert "NEW-PAN" not in skillets()


def test_unknown_query_parameters_are_named_not_ignored(pop_dir, tmp_path):
    """A misspelt query parameter (``?limt=5``) is a 422 naming it, in the one error body; the
    declared ones still work (the OpenAPI document lists exactly what a route takes)."""
    from fastapi.testclient import TestClient

    from genrec.serve.app import create_app

    app = create_app(pop_dir, f"sqlite:///{tmp_path / 'q.db'}", token=TOKEN)
    with TestClient(app) as c:
        ok = c.get("/users", params={"limit": 5})
        assert ok.status_code == 200 and "users" in ok.json()
        bad = c.get("/users", params={"limt": 5, "limit": 5})
        assert bad.status_code == 422
        body = bad.json()
        assert "limt" in body["detail"] and body["errors"][0]["loc"] == ["query", "limt"]
        assert c.get("/health", params={"x": 1}).status_code == 422
        assert c.get("/users/u1/history", params={"limit": 3}).status_code in (200, 404)
