"""Helpers for the service tests: a tiny real text recommender with GPT4Rec-shaped ``why``, and a
real uvicorn server on a free 127.0.0.1 port in a thread."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from genrec.models.base import Recommendations, Recommender


class QueryRec(Recommender):
    """A small text recommender shaped like GPT4Rec, for the tests.

    Its "generated queries" are the product types (last category) of the last two history items
    plus ``extra_queries``; each query retrieves catalog items whose title contains it
    (case-insensitive), most popular first; results are merged round-robin and filled by
    popularity. New items (``add_items``) are searchable at once, as in GPT4Rec.
    """

    name = "queryrec-test"

    def __init__(self, extra_queries: Sequence[str] = ()) -> None:
        self.extra_queries = list(extra_queries)

    def fit(self, split) -> "QueryRec":
        self.catalog = split.catalog.copy()
        counts = split.train.item_counts()
        self.pop_ = {i: float(counts.get(i, 0)) for i in self.catalog.ids}
        return self

    def recommend(self, histories, k: int = 10, *, exclude_history: bool = True) -> Recommendations:
        cat = self._require_fitted()
        items, scores, why, notes = [], [], [], []
        by_pop = sorted(cat.ids, key=lambda i: -self.pop_.get(i, 0.0))
        for h in histories:
            h = [i for i in h if i in cat]
            seen = set(h) if exclude_history else set()
            queries = []
            for i in h[-2:][::-1]:
                q = cat[i].categories[-1] if cat[i].categories else cat[i].title
                if q not in queries:
                    queries.append(q)
            queries += self.extra_queries
            hits = [[i for i in by_pop if q.casefold() in cat[i].title.casefold() and i not in seen] for q in queries]
            out, from_q = [], {n: [] for n in range(len(queries))}
            for rank in range(max((len(x) for x in hits), default=0)):
                for n, lst in enumerate(hits):
                    if rank < len(lst) and lst[rank] not in out and len(out) < k:
                        out.append(lst[rank])
                        from_q[n].append(lst[rank])
            filled = 0
            for i in by_pop:
                if len(out) >= k:
                    break
                if i not in out and i not in seen:
                    out.append(i)
                    filled += 1
            items.append(out)
            scores.append([float(1.0 / (r + 1)) for r in range(len(out))])
            why.append({"queries": [{"query": q, "score": float(-0.5 * n), "items": from_q[n]}
                                    for n, q in enumerate(queries)], "filled_by_popularity": filled})
            notes.append([])
        return Recommendations(items, scores, why, notes)

    def add_items(self, new) -> list[int]:
        idx = self._require_fitted().add(new)
        for j in idx:
            self.pop_[self.catalog.id_at(j)] = 0.0
        return idx


class IndexLimitRec(QueryRec):
    """QueryRec whose title index takes titles of at most ``max_title`` characters. An update with
    a longer title changes the catalog, then fails while re-indexing: the half-applied update a
    text model's failed re-index leaves behind."""

    name = "indexlimit-test"

    def __init__(self, max_title: int = 100, extra_queries: Sequence[str] = ()) -> None:
        super().__init__(extra_queries)
        self.max_title = max_title

    def update_items(self, items) -> None:  # noqa: ANN001
        items = list(items)
        super().update_items(items)
        long = [it.id for it in items if len(it.title) > self.max_title]
        if long:
            raise ValueError(f"titles longer than {self.max_title} characters cannot be indexed: {long}")


class Server:
    """uvicorn serving ``app`` on a free port in a daemon thread; ``stop()`` shuts it down."""

    def __init__(self, app) -> None:  # noqa: ANN001
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def serving(model, db_url: str, **kw) -> Iterator[str]:  # noqa: ANN001
    """Start the real service for ``model`` (object or folder) on ``db_url``; yield its base URL."""
    from genrec.serve.app import create_app

    s = Server(create_app(model, db_url, **kw))
    try:
        yield s.url
    finally:
        s.stop()


def popular(split, n: int) -> list[str]:
    """The ``n`` items the pop baseline recommends for an empty history, in its order."""
    from genrec.models.registry import create

    return create("pop").fit(split).recommend([[]], k=n).items[0]


def watched_page(browser, url: str, height: int) -> tuple:  # noqa: ANN001
    """A new page at ``url`` that records every dialog (dismissed) and every page error, so a test
    can assert that none happened: ``(page, dialogs, errors)``."""
    page = browser.new_page(viewport={"width": 1280, "height": height})
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, dialogs, errors


def wait_for_text(page, selector: str, text: str, timeout_ms: float = 30_000) -> None:  # noqa: ANN001
    """Wait until ``selector``'s text contains ``text``. Playwright's locator assertion, not
    ``wait_for_function``: the page's CSP (script-src 'self') forbids the eval that a polled string
    predicate needs, so that failed whenever the text was not there at the first check."""
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_contain_text(text, timeout=timeout_ms)


class Recorder:
    """ASGI middleware keeping ``(path, body bytes)`` of every HTTP request."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app, self.requests = app, []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def recording_receive():  # noqa: ANN202
            msg = await receive()
            if msg["type"] == "http.request":
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    self.requests.append((scope["path"], b"".join(chunks)))
            return msg

        await self.app(scope, recording_receive, send)
