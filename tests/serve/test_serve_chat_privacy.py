"""What ``POST /chat`` sends to a remote LLM, checked where it arrives: a REAL OpenAI-compatible
server (``genrec.llm.server`` on 127.0.0.1, serving a scratch GPT-2) that records every request
body. With the defaults no user id and none of the user's items leave the service; the prompt the
answer shows is byte for byte what the server got; the LLM cache is off unless asked for, and
``/health`` says where it writes."""

from __future__ import annotations

import json

import httpx
import pytest
from serve_helpers import Recorder, Server, serving

from genrec.serve.chatting import ChatConfig

pytest.importorskip("torch")
USER = "zed-5517"


@pytest.fixture(scope="module")
def llm_server(serve_split):
    from genrec.llm.server import create_app
    from genrec.models.rerank.backends import scratch_backend

    rec = Recorder(create_app(scratch_backend(serve_split.catalog.titles[:300])))
    s = Server(rec)
    yield s.url + "/v1", rec
    s.stop()


def _chat_bodies(rec: Recorder, since: int) -> list[dict]:
    return [json.loads(b) for p, b in rec.requests[since:] if p.endswith("/chat/completions")]


def test_default_prompt_sent_to_the_server_has_no_user_id_or_history(pop_dir, serve_split, db_url, llm_server,
                                                                     tmp_path, monkeypatch):
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "cache"))
    base, rec = llm_server
    cat = serve_split.catalog
    hist = cat.ids[5:9]
    cfg = ChatConfig(backend=f"openai:{base}#scratch")
    with serving(pop_dir, db_url, open_writes=True, chat=cfg) as url, httpx.Client(base_url=url, timeout=120) as c:
        health = c.get("/health").json()["chat"]
        assert health["remote"] is True and health["llm_cache"] is None
        assert health["send_user_id"] is False and health["send_profile"] is False
        assert c.post("/events", json={"events": [{"user": USER, "item": i} for i in hist]}).status_code == 200
        before = len(rec.requests)
        r = c.post("/chat", json={"message": "a gift for a coffee lover", "user": USER, "k": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        sent = _chat_bodies(rec, before)
        assert len(sent) == 1  # one LLM call per turn: the query
        raw = rec.requests[-1][1].decode()
        assert USER not in raw and "zed" not in raw
        assert not any(cat[i].title in raw for i in hist)
        assert "a gift for a coffee lover" in raw
        # The answer shows exactly the messages the server received.
        assert body["llm"]["remote"] is True and body["llm"]["used"] is True
        assert sent[0]["messages"] == body["llm"]["prompt"]
        assert body["llm"]["sent"] == {"user_id": False, "profile": False}
        # The preview calls nothing.
        n = len(rec.requests)
        pre = c.post("/chat/preview", json={"message": "and for tea?", "conversation_id": body["conversation_id"]})
        assert pre.status_code == 200 and len(rec.requests) == n
        assert USER not in json.dumps(pre.json()["llm"]["prompt"])
    # The cache was off: nothing was written under the cache root.
    assert not (tmp_path / "cache" / "llm").exists()


def test_allowed_user_id_is_sent_and_the_cache_says_where_it_writes(pop_dir, serve_split, db_url, llm_server,
                                                                    tmp_path, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="genrec.serve")
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "cache"))
    base, rec = llm_server
    hist = serve_split.catalog.ids[5:7]
    cfg = ChatConfig(backend=f"openai:{base}#scratch", send_user_id=True, llm_cache="record")
    with serving(pop_dir, db_url, open_writes=True, chat=cfg) as url, httpx.Client(base_url=url, timeout=120) as c:
        cache = c.get("/health").json()["chat"]["llm_cache"]
        assert cache == {"mode": "record", "path": str(tmp_path / "cache" / "llm" / "calls.sqlite")}
        # ... and the start-up log said so, and what prompts may hold.
        logged = [r.getMessage() for r in caplog.records if r.name == "genrec.serve"]
        assert f"chat LLM cache: record, writing to {cache['path']}" in logged
        assert "chat prompts include the user id: yes; the user's own items: no" in logged
        assert c.post("/events", json={"events": [{"user": USER, "item": i} for i in hist]}).status_code == 200
        before = len(rec.requests)
        req = {"message": "a gift for a tea lover", "user": USER, "k": 3}
        first = c.post("/chat", json=req).json()
        assert USER in rec.requests[-1][1].decode() and len(rec.requests) == before + 1
        # The same prompt again is answered by the cache: the server gets nothing.
        second = c.post("/chat", json=req).json()
        assert len(rec.requests) == before + 1
        assert second["queries"][0] == first["queries"][0]
    assert (tmp_path / "cache" / "llm" / "calls.sqlite").stat().st_size > 0
