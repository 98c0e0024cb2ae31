"""The web page in real headless Chromium (Playwright + Debian's /usr/bin/chromium)."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest
from serve_helpers import QueryRec, serving, wait_for_text, watched_page

CHROMIUM = os.environ.get("GENREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

# Strings that would run script if the page put them into innerHTML. clean_title strips complete
# tags from catalog titles (so "<script>alert(1)</script>" becomes "alert(1)"), but an unclosed
# tag survives cleaning, and generated queries, user ids and typed history are not titles at all.
SCRIPT = "<script>alert(1)</script>"
IMG_TITLE = "Evil <img src=x onerror=window.__xss=1 //"
USER = "<img src=y onerror=window.__xss=2>"
CAT = "Evil <svg onload=window.__xss=3 //"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as e:  # noqa: BLE001
            pytest.skip(f"chromium would not start: {e}")
        yield b
        b.close()


def test_page_shows_history_queries_groups_chart_and_escapes(browser, serve_split, db_url, tmp_path):
    model = QueryRec(extra_queries=[SCRIPT, "onerror"]).fit(serve_split)
    case = serve_split.test[0]
    with serving(model, db_url, open_writes=True) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            # A title must have a letter before any '<' (else 422: it could clean to nothing).
            assert c.post("/items", json={"id": "XSS-0", "title": SCRIPT}).status_code == 422
            r = c.post("/items", json={"id": "XSS-1", "title": "Evil " + SCRIPT, "categories": ["Hair Care"]})
            assert r.status_code == 201, r.text
            assert c.get("/items/XSS-1").json()["title"] == "Evil alert(1)"
            r = c.post("/items", json={"id": "XSS-2", "title": IMG_TITLE, "categories": [CAT, "x"]})
            assert r.status_code == 201 and r.json()["title"] == IMG_TITLE
            events = [{"user": USER, "item": i, "time": 1_700_000_000 + n} for n, i in enumerate(case.history)]
            assert c.post("/events", json={"events": events}).status_code == 200

        page, dialogs, errors = watched_page(browser, url + "/", 1000)
        wait_for_text(page, "#model-info", "queryrec-test")
        page.fill("#user", USER)
        page.click("#go")
        page.wait_for_selector("body[data-state=done]", timeout=20_000)

        # History, newest last, with the typed-in user's items.
        hist = page.locator("#history-list li .title").all_inner_texts()
        assert hist == [serve_split.catalog[i].title for i in case.history]
        # The generated queries, shown verbatim as text.
        queries = page.locator("#queries .qtext").all_inner_texts()
        assert SCRIPT in queries and "onerror" in queries
        # Items grouped by the query that found them; the evil title is text inside its group.
        group = page.locator(".group", has=page.locator("h3 q", has_text="onerror"))
        assert IMG_TITLE in group.locator(".item .title").all_inner_texts()
        assert page.locator(".group").count() >= 2
        assert "user " + USER in page.locator("#rec-count").inner_text()
        # The inline SVG chart of categories covered, one bar per top-level category.
        bars = page.locator("#category-chart g.bar")
        assert bars.count() >= 1
        labels = page.locator("#category-chart text.label").all_text_contents()
        assert any(t.startswith("Evil <svg") for t in labels), labels
        # Nothing ran: no dialog, no injected element, no flag set, no page error.
        assert dialogs == [] and errors == []
        assert page.evaluate("window.__xss === undefined")
        assert page.locator("#results img, #results script").count() == 0
        page.screenshot(path=str(tmp_path / "recommendations.png"), full_page=True)
        assert (tmp_path / "recommendations.png").stat().st_size > 10_000

        # Typed history of titles (one unresolved, shown as text) and a bad request's error.
        page.click("#history-box summary")
        title = serve_split.catalog[case.history[-1]].title
        typed = "<b>no such</b> <img src=z onerror=window.__xss=4 //"
        page.fill("#history", f"{title}\n{typed}")
        page.evaluate("document.body.dataset.state = ''")
        page.click("#go")
        page.wait_for_selector("body[data-state=done]", timeout=20_000)
        assert page.locator("#unresolved").inner_text().endswith(typed)
        assert page.locator("#history-list li .title").all_inner_texts() == [title]
        page.fill("#k", "1000")
        page.evaluate("document.body.dataset.state = ''")
        page.click("#go")
        page.wait_for_selector("body[data-state=error]", timeout=20_000)
        assert page.locator("#error").inner_text().startswith("422")
        assert dialogs == [] and errors == [] and page.evaluate("window.__xss === undefined")
        page.close()
    os.environ.get("GENREC_KEEP_SCREENSHOT") and shutil.copy(tmp_path / "recommendations.png",
                                                             os.environ["GENREC_KEEP_SCREENSHOT"])


def test_user_picker_fills_once_a_token_is_typed_when_reads_are_protected(browser, serve_split, db_url):
    auth = {"Authorization": "Bearer tok"}
    with serving(QueryRec().fit(serve_split), db_url, token="tok", protect_reads=True) as url:
        ev = {"events": [{"user": "dana", "item": serve_split.catalog.ids[0]}]}
        assert httpx.post(url + "/events", json=ev, headers=auth, timeout=30).status_code == 200
        page = browser.new_page()
        page.goto(url + "/")
        wait_for_text(page, "#model-info", "queryrec-test")
        page.wait_for_load_state("networkidle")  # the first /users call (401) has answered
        assert page.locator("#user-list option").count() == 0
        page.click("#token-box summary")
        page.fill("#token", "tok")
        page.press("#token", "Tab")  # leaving the field fires its change event
        page.wait_for_selector("#user-list option", state="attached", timeout=20_000)
        assert page.locator("#user-list option").evaluate_all("os => os.map((o) => o.value)") == ["dana"]
        page.close()


def test_api_docs_render_offline(browser, serve_split, db_url):
    """Swagger UI at /docs loads its scripts from our own server (no CDN): every request the page
    makes goes to the service, and the endpoints are listed."""
    model = QueryRec().fit(serve_split)
    with serving(model, db_url) as url:
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                   else route.abort())  # as on a machine without internet
        page.goto(url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/recommend" in paths and "/events" in paths
        assert requested and all(u.startswith(url) for u in requested), requested
        page.close()
