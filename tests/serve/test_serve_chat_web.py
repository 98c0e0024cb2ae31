"""The chat panel of the web page in real headless Chromium, against the real service with a real
(scratch) LLM: turns with their answer, items and reasons, the exact prompts (the query prompt,
and the ranking prompt with ``--chat-llm-rank``), the preview, errors, and untrusted text shown as
text."""

from __future__ import annotations

import httpx
from serve_helpers import serving, wait_for_text, watched_page
from test_serve_web import browser  # noqa: F401  (the Chromium fixture)

from genrec.serve.chatting import ChatConfig

EVIL = "<img src=x onerror=window.__xss=9> lavender shampoo"


def test_chat_panel_shows_answers_items_reasons_and_the_prompt(browser, pop_dir, serve_split, db_url):  # noqa: F811
    cat = serve_split.catalog
    with serving(pop_dir, db_url, open_writes=True, chat=ChatConfig(backend="scratch")) as url:
        ev = {"events": [{"user": "erin-42", "item": i} for i in cat.ids[:3]]}
        assert httpx.post(url + "/events", json=ev, timeout=30).status_code == 200
        page, dialogs, errors = watched_page(browser, url + "/", 1200)
        wait_for_text(page, "#chat-info", "scratch")
        assert "prompts hold no user data" in page.locator("#chat-info").inner_text()
        assert "LLM cache off" in page.locator("#chat-info").inner_text()
        page.fill("#user", "erin-42")

        # The preview shows the prompt and sends nothing (no turn appears).
        page.fill("#chat-message", EVIL)
        page.click("#chat-preview")
        page.wait_for_selector("#chat[data-state=preview]")
        preview = page.locator("#chat-preview-box").inner_text()
        assert preview.startswith("Turn 1 would send") and "lavender shampoo" in preview
        assert "erin-42" not in preview
        assert page.locator("#chat-log li.turn").count() == 0

        page.click("#chat-send")
        page.wait_for_selector("#chat[data-state=done]", timeout=60_000)
        turn = page.locator("#chat-log li.turn").first
        assert turn.locator(".you").inner_text() == EVIL  # the message, as text
        assert turn.locator(".answer-text").inner_text().startswith("Here are 10 items")
        titles = turn.locator(".item .title").all_inner_texts()
        assert len(titles) == 10 and any("Shampoo" in t for t in titles)
        reasons = turn.locator(".item .reason").all_inner_texts()
        assert all(reasons) and any("shampoo" in r for r in reasons)
        turn.locator("details.prompt-details summary").click()
        sent = turn.locator("pre.prompt").inner_text()
        assert "lavender shampoo" in sent and "erin-42" not in sent
        assert sent == preview.split("\n\n", 1)[1]  # the preview showed what was then sent
        assert turn.locator(".rank-prompt-details").count() == 0  # the LLM does not rank here

        # A second turn continues the conversation; a too-long message is a clear 422 in the panel.
        page.evaluate("document.getElementById('chat').dataset.state = ''")
        page.fill("#chat-message", "something smaller")
        page.press("#chat-message", "Enter")
        page.wait_for_selector("#chat[data-state=done]", timeout=60_000)
        assert page.locator("#chat-log li.turn").count() == 2
        assert page.locator("#chat-log li.turn").nth(1).get_attribute("data-turn") == "2"
        page.fill("#chat-message", "x" * 1001)
        page.click("#chat-send")
        page.wait_for_selector("#chat[data-state=error]", timeout=30_000)
        err = page.locator("#chat-error").inner_text()
        assert err.startswith("422") and "message" in err and "1000" in err
        page.click("#chat-new")
        assert page.locator("#chat-log li.turn").count() == 0

        assert dialogs == [] and errors == []
        assert page.evaluate("window.__xss === undefined")
        assert page.locator("#chat img, #chat script").count() == 0
        page.close()


def test_chat_panel_shows_the_ranking_prompt_when_the_llm_ranks(browser, pop_dir, db_url):  # noqa: F811
    """With ``llm_rank`` the turn has a second collapsible holding exactly the ranking prompt the
    answer returned, the markup of the message it quotes shown as text; the preview shows it too."""
    with serving(pop_dir, db_url, chat=ChatConfig(backend="scratch", llm_rank=5)) as url:
        page, dialogs, errors = watched_page(browser, url + "/", 1200)
        wait_for_text(page, "#chat-info", "scratch")
        page.fill("#chat-message", EVIL)
        page.click("#chat-preview")
        page.wait_for_selector("#chat[data-state=preview]")
        preview = page.locator("#chat-preview-box").inner_text()
        assert "Then the ranking prompt (for the candidates found without the LLM's query):" in preview

        with page.expect_response(lambda r: r.url.endswith("/chat") and r.request.method == "POST") as got:
            page.click("#chat-send")
        page.wait_for_selector("#chat[data-state=done]", timeout=60_000)
        ranked = got.value.json()["llm"]["rank_prompt"]
        assert isinstance(ranked, str) and "<img src=x onerror" in ranked  # the message, quoted
        turn = page.locator("#chat-log li.turn").first
        box = turn.locator("details.rank-prompt-details")
        assert box.locator("summary").inner_text() == "Ranking prompt given to the in-process LLM"
        assert not box.locator("pre.rank-prompt").is_visible()  # collapsed until opened
        box.locator("summary").click()
        assert box.locator("pre.rank-prompt").inner_text() == ranked
        # The preview's ranking prompt is the same kind (its candidates can differ: no LLM query then).
        shown = preview.split("Then the ranking prompt (for the candidates found without the LLM's query):\n\n")[1]
        assert shown.split("(A) ")[0] == ranked.split("(A) ")[0] and "(E) " in shown
        assert dialogs == [] and errors == []
        assert page.evaluate("window.__xss === undefined")
        assert page.locator("#chat img, #chat script").count() == 0
        page.close()
