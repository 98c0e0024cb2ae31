"""The OpenAI-compatible HTTP backend against a REAL server on 127.0.0.1 (genrec.llm.server,
uvicorn) serving a real tiny GPT-2: generation, continuation scores and verbalizer scores match
the local backend's; the record-replay cache answers with the server gone; a server that is down
or gives no logprobs is a clear error."""

import math
import socket
import threading
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("uvicorn")

from genrec.llm.cache import LLMCache  # noqa: E402
from genrec.llm.http import LLMServerError, OpenAIBackend  # noqa: E402
from genrec.llm.local import HFBackend  # noqa: E402
from genrec.llm.server import create_app  # noqa: E402
from genrec.llm.types import GenParams, LLMBackend, UnsupportedOperation  # noqa: E402

PROMPT = "Previously, the customer has bought: Silkora Shampoo, 8 oz. In the future, the customer wants to buy"
CONTS = [" Silkora Shampoo, 8 oz", " BrewMaster Classic Coffee Grinder, 2 oz", " Mug"]


class Served:
    """A uvicorn server in a thread on a free loopback port."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        t0 = time.time()
        while not self.server.started:
            if time.time() - t0 > 30 or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def local(trained_tiny):
    _, model, tok, _ = trained_tiny
    return HFBackend(model, tok, model_id="tiny-gpt2", device="cpu", bf16=False)


@pytest.fixture(scope="module")
def served(local):
    s = Served(create_app(local))
    yield s
    s.stop()


@pytest.fixture()
def remote(served):
    return OpenAIBackend(served.url, "tiny-gpt2", timeout=30, max_retries=0)


def test_is_an_llm_backend(remote):
    assert isinstance(remote, LLMBackend)
    assert remote.describe()["base_url"].endswith("/v1")


def test_generation_matches_the_local_backend(local, remote):
    params = GenParams(max_new_tokens=8, logprobs=True)
    want = local.generate([PROMPT, "Previously, the customer"], params)
    got = remote.generate([PROMPT, "Previously, the customer"], params)
    for w, g in zip(want, got):
        assert [x.text for x in g] == [x.text for x in w]
        assert [x.tokens for x in g] == [x.tokens for x in w]
        assert g[0].score == pytest.approx(w[0].score, abs=1e-4)
    ids = local.encode(PROMPT)  # a token-id prompt goes to /completions as a list of ints
    assert remote.generate([ids], params)[0][0].text == want[0][0].text
    stop = GenParams(max_new_tokens=8, stop=[want[0][0].text.strip()[2:4]])
    cut = remote.generate([PROMPT], stop)[0][0]
    assert cut.text == local.generate([PROMPT], stop)[0][0].text and cut.finish_reason == "stop"
    assert len(cut.text) < len(want[0][0].text)
    chat = [{"role": "user", "content": "Something for my hair?"}]
    assert remote.generate([chat], GenParams(max_new_tokens=6))[0][0].text == \
        local.generate([chat], GenParams(max_new_tokens=6))[0][0].text
    usage = remote.usage()
    assert usage.calls >= 4 and usage.tokens_in > 0 and usage.tokens_out > 0 and usage.latency_s > 0


def test_sampling_is_seeded(remote):
    p = GenParams(max_new_tokens=6, temperature=1.0, n=2, seed=11)
    assert remote.generate([PROMPT], p) == remote.generate([PROMPT], p)


def test_continuation_scores_match_the_local_backend(local, remote):
    want = local.score(PROMPT, CONTS)
    got = remote.score(PROMPT, CONTS)
    assert [g.tokens for g in got] == [w.tokens for w in want]
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-3)
    assert [g.mean for g in got] == pytest.approx([w.mean for w in want], abs=1e-3)


def test_verbalizer_scores_match_the_local_backend(local, remote):
    def top_single_tokens(prompt):
        logp, _ = local.next_token_logprobs([prompt])
        return [t for t, _ in local.top_tokens(logp[0], 8) if len(local._enc(t)) == 1][:5]

    chat = [{"role": "user", "content": "Pick A or B."}]
    for prompt in (PROMPT, "Previously, the customer has bought:", chat):
        cands = top_single_tokens(prompt)
        assert len(cands) >= 3
        want = local.next_token_scores([prompt], cands)[0]
        got = remote.next_token_scores([prompt], cands)[0]
        assert got == pytest.approx(want, abs=1e-4)
    # several prompts in one call; a candidate outside a prompt's top list is -inf there
    cands = top_single_tokens(PROMPT)
    both = remote.next_token_scores([PROMPT, chat], cands)
    assert both[0] == pytest.approx(local.next_token_scores([PROMPT], cands)[0], abs=1e-4)
    want = local.next_token_scores([chat], cands)[0]
    assert all(g == pytest.approx(w, abs=1e-4) or g == -math.inf for g, w in zip(both[1], want))
    # a candidate outside the server's top list is -inf, never a made-up number
    small = OpenAIBackend(remote.base_url, "tiny-gpt2", max_top_logprobs=2, max_retries=0)
    assert small.next_token_scores([PROMPT], cands[2:4]) == [[-math.inf, -math.inf]]


def test_local_only_operations_are_clear_errors(remote):
    with pytest.raises(UnsupportedOperation, match="beam decoding is a capability of the local backend"):
        remote.generate([PROMPT], GenParams(num_beams=4, n=2))
    with pytest.raises(UnsupportedOperation, match="token-id candidates need the local backend"):
        remote.next_token_scores([PROMPT], [3, 4])
    with pytest.raises(UnsupportedOperation, match="text prompt"):
        remote.score([{"role": "user", "content": "x"}], [" y"])


def test_cache_replays_with_the_server_gone(local, tmp_path):
    s = Served(create_app(local))
    path = tmp_path / "calls.sqlite"
    rec = OpenAIBackend(s.url, "tiny-gpt2", max_retries=0, cache=LLMCache(path), price_in_per_mtok=1.0,
                        price_out_per_mtok=2.0, api_key="sk-secret-test")
    g = rec.generate([PROMPT], GenParams(max_new_tokens=5))
    sc = rec.score(PROMPT, CONTS)
    v = rec.next_token_scores([PROMPT], ["A", "B"])
    u = rec.usage()
    assert u.calls == 3 and u.cost == pytest.approx((u.tokens_in * 1.0 + u.tokens_out * 2.0) / 1e6) and u.cost > 0
    s.stop()
    with pytest.raises(LLMServerError, match=r"failed after 1 attempt.*is it running"):
        OpenAIBackend(s.url, "tiny-gpt2", max_retries=0).generate([PROMPT], GenParams(max_new_tokens=5))
    rep = OpenAIBackend(s.url, "tiny-gpt2", max_retries=0, cache=LLMCache(path, mode="replay"))
    assert rep.generate([PROMPT], GenParams(max_new_tokens=5)) == g
    assert rep.score(PROMPT, CONTS) == sc and rep.next_token_scores([PROMPT], ["A", "B"]) == v
    assert rep.usage().calls == 0 and rep.usage().cached_calls == 3 and rep.usage().saved_cost == pytest.approx(u.cost)
    assert b"sk-secret-test" not in path.read_bytes()


def test_server_down_is_a_clear_error_after_retries():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    be = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff=0.01, timeout=2)
    t0 = time.perf_counter()
    with pytest.raises(LLMServerError, match=rf"127.0.0.1:{port}/v1/completions failed after 3 attempt"):
        be.score(PROMPT, CONTS)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBackend("127.0.0.1:8000", "m")


def test_a_server_without_logprobs_is_a_clear_error():
    """A real server (FastAPI on loopback) that answers like a chat model without logprobs."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/completions")
    def completions(body: dict):
        return {"choices": [{"index": i, "text": "x", "finish_reason": "stop", "logprobs": None}
                            for i in range(len(body["prompt"]) if isinstance(body["prompt"], list) else 1)],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]}

    s = Served(app)
    try:
        be = OpenAIBackend(s.url, "no-logprobs", max_retries=0)
        assert be.generate([PROMPT], GenParams(max_new_tokens=1))[0][0].text == "x"
        with pytest.raises(UnsupportedOperation, match="needs logprobs.*returned none"):
            be.score(PROMPT, CONTS)
        with pytest.raises(UnsupportedOperation, match="needs logprobs"):
            be.next_token_scores([[{"role": "user", "content": "A or B?"}]], ["A", "B"])
    finally:
        s.stop()


def test_retries_on_503_with_retry_after_but_not_on_400():
    """A real flaky server: 503 (Retry-After: 0) twice, then an answer; a 400 is reported at once."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app, calls = FastAPI(), {"n": 0}

    @app.post("/v1/completions")
    def completions(body: dict):
        calls["n"] += 1
        if body.get("max_tokens") == 99:
            return JSONResponse({"error": {"message": "max_tokens too large"}}, status_code=400)
        if calls["n"] <= 2:
            return JSONResponse({"error": {"message": "busy"}}, status_code=503, headers={"Retry-After": "0"})
        return {"choices": [{"index": 0, "text": " ok", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1}}

    s = Served(app)
    try:
        be = OpenAIBackend(s.url, "flaky", max_retries=2, backoff=0.01)
        assert be.generate(["hi"], GenParams(max_new_tokens=1))[0][0].text == " ok" and calls["n"] == 3
        calls["n"] = 10
        with pytest.raises(LLMServerError, match=r"refused the request \(HTTP 400: max_tokens too large\)"):
            be.generate(["hi"], GenParams(max_new_tokens=99))
        assert calls["n"] == 11  # not retried
        calls["n"] = 0
        with pytest.raises(LLMServerError, match=r"failed after 2 attempt\(s\): HTTP 503: busy"):
            OpenAIBackend(s.url, "flaky", max_retries=1, backoff=0.01).generate(["hi"], GenParams(max_new_tokens=1))
    finally:
        s.stop()
