"""llm-rerank through real local backends (a tiny scratch GPT-2; one with its output forced to a
letter, loaded from a folder as `hf:<folder>`): the list is the retriever's top N re-ordered, then
the retriever's rest; a forced letter moves its candidate first; listwise failures are counted;
explanations cite only the history and the catalog; save/load gives the same lists."""

import pytest

torch = pytest.importorskip("torch")

from genrec.core.why import as_why  # noqa: E402
from genrec.models.registry import ParamError, create, load_model  # noqa: E402

N = 6
TINY = dict(backend="scratch", candidates=N, history_items=4, max_title_tokens=12, bf16=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)


def histories(split, n=4):
    return [list(c.history) for c in split.test[:n]]


@pytest.fixture(scope="module")
def fitted(demo_loo):
    return {mode: create("llm-rerank", mode=mode, **TINY).fit(demo_loo)
            for mode in ("verbalizer", "likelihood", "listwise")}


@pytest.fixture(scope="module")
def forced_c_folder(demo_loo, tmp_path_factory):
    """A scratch GPT-2 whose next token is always "C": the final layer norm outputs a constant
    vector along C's (tied) embedding, which is made the longest."""
    from genrec.lm.scratch import build_model, train_tokenizer
    from genrec.models.rerank.prompts import TEMPLATES

    tok = train_tokenizer(demo_loo.catalog.titles + [t.words() for t in TEMPLATES.values()] * 20, vocab_size=1024)
    model = build_model("tiny", tok, n_positions=1024, dropout=0.0, seed=1).eval()
    (c,) = tok("C", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        wte = model.transformer.wte.weight
        wte[c] *= 3
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(100 * wte[c])
    folder = tmp_path_factory.mktemp("forced-c")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("mode", ["verbalizer", "likelihood", "listwise"])
def test_the_list_is_the_retrievers_top_n_reordered_then_its_rest(fitted, mode, demo_loo):
    model = fitted[mode]
    hists = histories(demo_loo)
    full = len(model.catalog)
    got = model.recommend(hists, k=full)
    ret = model.retriever_.recommend(hists, k=full)
    for n in range(len(hists)):
        mine, theirs = got.items[n], ret.items[n]
        assert sorted(mine[:N]) == sorted(theirs[:N]) and mine[N:] == theirs[N:]
        assert got.scores[n] == sorted(got.scores[n], reverse=True)
    # k below N: the first k of the same re-ordered list
    short = model.recommend(hists, k=3)
    assert [x[:3] for x in got.items] == short.items


def test_a_forced_letter_moves_its_candidate_first(forced_c_folder, demo_loo):
    model = create("llm-rerank", **dict(TINY, backend=f"hf:{forced_c_folder}")).fit(demo_loo)
    hists = histories(demo_loo)
    got = model.recommend(hists, k=N)
    ret = model.retriever_.recommend(hists, k=N)
    assert model.rerank_stats["top_from_retriever_rank"] == {3: len(hists)}
    for n in range(len(hists)):
        third = ret.items[n][2]  # shown as (C)
        assert got.items[n][0] == third
        assert sorted(got.items[n]) == sorted(ret.items[n])
        assert got.notes[n] == []  # verbalizer: nothing to parse, nothing noted
        assert as_why(got.why[n]).explanations[0].text.startswith("LLM verbalizer rank 1 of 6 candidates "
                                                                   "(retriever rank 3)")
    # bootstrapping: the model prefers the letters in one fixed order whatever the prompt, so each
    # seeded shuffle gives the item shown at the j-th preferred letter N - j points; summed, ties by
    # retriever order
    from genrec.models.rerank.ranking import shuffles

    row = model.llm.next_token_scores(["any prompt"], list("ABCDEF"))[0]
    pref = sorted(range(N), key=lambda p: -row[p])  # shown positions, most preferred first
    assert pref[0] == 2
    boot = model.set_params(bootstrap=3)
    again = boot.recommend(hists, k=N)
    for n in range(len(hists)):
        cands = ret.items[n]
        passes = shuffles(cands, 3, boot.seed)
        assert len({tuple(p) for p in passes}) > 1
        points = dict.fromkeys(cands, 0)
        for perm in passes:
            for j, p in enumerate(pref):
                points[cands[perm[p]]] += N - j
        assert again.items[n] == sorted(cands, key=lambda i: (-points[i], cands.index(i)))
    assert boot.recommend(hists, k=N).items == again.items  # seeded: the same every time


def test_listwise_failures_are_counted_and_noted(fitted, demo_loo):
    model = fitted["listwise"]
    before = model.rerank_stats["answers"]
    hists = histories(demo_loo)
    got = model.recommend(hists, k=N)
    st = model.rerank_stats
    assert st["answers"] == before + len(hists)
    failed = sum(1 for notes in got.notes if any(x.startswith("listwise:") for x in notes))
    assert failed == sum(1 for notes in got.notes if notes)  # every note is a listwise note here
    # an untrained model writes no letters: each such list is noted and keeps the retriever's order
    ret = model.retriever_.recommend(hists, k=N)
    for n, notes in enumerate(got.notes):
        if any("no candidate letter" in x for x in notes):
            assert got.items[n] == ret.items[n]
    assert st["unparseable"] >= sum(1 for notes in got.notes if any("no candidate letter" in x for x in notes))


@pytest.mark.parametrize("mode", ["verbalizer", "likelihood"])
def test_explanations_cite_only_the_history_and_the_catalog(fitted, mode, demo_loo):
    model = fitted[mode]
    cat = model.catalog
    hists = histories(demo_loo, 8)
    got = model.recommend(hists, k=N)
    cited = 0
    for n, h in enumerate(hists):
        why = as_why(got.why[n])
        assert [e.item_id for e in why.explanations] == got.items[n]
        shown = set(h[-4:])  # history_items=4: only titles the prompt showed are cited
        for e in why.explanations:
            for ev in e.evidence:
                cited += 1
                assert ev.item_id in shown
                src = cat[ev.item_id]
                if ev.kind == "history_item":
                    assert ev.value == src.title and f"{src.title!r}" in e.text
                else:
                    assert ev.kind == "attribute" and ev.field in ("brand", "category")
                    assert ev.value == (src.brand if ev.field == "brand" else ev.value)
                    assert ev.field == "brand" or ev.value in src.categories
                    assert ev.field == "category" or ev.value == cat[e.item_id].brand
    assert cited > 0


def test_save_and_load_give_the_same_lists(fitted, forced_c_folder, demo_loo, tmp_path):
    hists = histories(demo_loo) + [[]]
    for name, model in [("scratch", fitted["verbalizer"]),
                        ("hf", create("llm-rerank", **dict(TINY, backend=f"hf:{forced_c_folder}")).fit(demo_loo))]:
        before = model.recommend(hists, k=8)
        model.save(tmp_path / name)
        loaded = load_model(tmp_path / name)
        after = loaded.recommend(hists, k=8)
        assert after.items == before.items and after.scores == before.scores, name
        assert [as_why(w).to_dict() for w in after.why] == [as_why(w).to_dict() for w in before.why]


def test_any_registered_retriever_and_its_parameters(demo_loo):
    model = create("llm-rerank", **dict(TINY, retriever="pop")).fit(demo_loo)
    assert model.retriever_.name == "pop"
    knn = create("llm-rerank", **dict(TINY, retriever_params={"neighbors": 5})).fit(demo_loo)
    assert knn.retriever_.neighbors == 5


def test_bad_parameters_are_clear_errors(demo_loo):
    from genrec.models.registry import resolve_params

    for kw, what in [({"mode": "pointwise"}, "mode"), ({"candidates": 27}, "26"), ({"retriever": "nope"}, "retriever"),
                     ({"retriever": "llm-rerank"}, "retriever"), ({"backend": "gpt-4"}, "backend")]:
        with pytest.raises(ValueError, match=what):
            create("llm-rerank", **dict(TINY, **kw)).fit(demo_loo)
    with pytest.raises(ParamError, match="llm-rerank.mode must be one of"):
        resolve_params(["mode=pointwise"], ["llm-rerank"])
