"""The same re-ranker over an OpenAI-compatible server: a REAL uvicorn server on 127.0.0.1
(genrec.llm.server) serving the forced-"C" GPT-2 of test_rerank.py, selected by
``backend="openai:<url>#<model>"``, ranks like the local backend on that folder."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("uvicorn")

from genrec.models.registry import create  # noqa: E402
from tests.llm.test_http_backend import Served  # noqa: E402
from tests.models.test_rerank import TINY, forced_c_folder, histories, one_thread  # noqa: E402,F401

N = TINY["candidates"]


@pytest.fixture(scope="module")
def served(forced_c_folder):
    from genrec.llm.local import HFBackend
    from genrec.llm.server import create_app

    s = Served(create_app(HFBackend.load(str(forced_c_folder), device="cpu", bf16=False, model_id="forced-c")))
    yield s
    s.stop()


@pytest.mark.parametrize("mode", ["verbalizer", "likelihood"])
def test_a_server_backend_ranks_like_the_local_one(served, forced_c_folder, demo_loo, mode):
    local = create("llm-rerank", **dict(TINY, mode=mode, backend=f"hf:{forced_c_folder}")).fit(demo_loo)
    remote = create("llm-rerank", **dict(TINY, mode=mode, backend=f"openai:{served.url}#forced-c")).fit(demo_loo)
    assert remote.llm.name == "openai"
    hists = histories(demo_loo)
    want, got = local.recommend(hists, k=2 * N), remote.recommend(hists, k=2 * N)
    if mode == "likelihood":  # continuation scores by echo + logprobs: the same numbers, the same lists
        assert got.items == want.items
    else:  # the server lists its top 20 logprobs only: letters outside them keep retriever order
        assert [x[0] for x in got.items] == [x[0] for x in want.items]
        ret = local.retriever_.recommend(hists, k=2 * N)
        assert [x[0] for x in got.items] == [x[2] for x in ret.items]
        assert all(sorted(g[:N]) == sorted(r[:N]) and g[N:] == r[N:] for g, r in zip(got.items, ret.items))
    assert remote.llm.usage().calls > 0
