"""GPT4Rec on the LLM backend layer gives the same prompts and the same queries (every decoding
mode) as the implementation before it, on a tiny trained model (golden file: gpt4rec_golden.py)."""

import json

import pytest

torch = pytest.importorskip("torch")

from genrec.models.gpt4rec import GPT4Rec  # noqa: E402

from . import gpt4rec_golden as G  # noqa: E402


def test_prompts_are_identical(trained_tiny):
    catalog, _, _, builder = trained_tiny
    golden = json.loads(G.GOLDEN.read_text())
    assert G.prompts(builder, catalog.titles) == golden["prompts"]


@pytest.mark.parametrize("mode", list(G.MODES))
def test_queries_through_the_backend_are_identical(trained_tiny, mode, monkeypatch):
    monkeypatch.setenv("GENREC_BF16", "0")  # the golden file was made in fp32
    catalog, model, tok, builder = trained_tiny
    m = GPT4Rec(lm="tiny", num_queries=4, max_new_tokens=10, gen_batch_size=2, decode=mode, device="cpu",
                seed=G.MODES[mode].get("seed", 0))
    m.catalog, m._model, m._tok, m._builder, m._device = catalog, model, tok, builder, torch.device("cpu")
    m._title_ids, m._backend = builder.titles_ids(catalog.titles), None
    histories = [list(catalog.ids[i:i + n]) for i, n in G.HISTORIES]
    got = m._generate(histories)
    want = json.loads(G.GOLDEN.read_text())["queries"][mode]
    assert [[q for q, _ in row] for row in got] == [[q for q, _ in row] for row in want]
    for row_got, row_want in zip(got, want):
        assert [s for _, s in row_got] == pytest.approx([s for _, s in row_want], abs=1e-5)
    usage = m.backend.usage()
    assert usage.calls == len(histories) and usage.by_operation == {"generate": len(histories)}
    assert usage.tokens_in == sum(len(p) for p in G.prompts(builder, catalog.titles)) and usage.tokens_out > 0
