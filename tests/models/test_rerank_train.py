"""LoRA training of llm-rerank's verbalizer through the one trainer, on a tiny scratch GPT-2:
the loss on the label falls, the target climbs in held-out validation lists, the adapter survives
save/load, labels come from training interactions only, and bad settings are clear errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from genrec.models.registry import ParamError, create, load_model, resolve_params  # noqa: E402

N = 6
TINY = dict(backend="scratch", candidates=N, history_items=4, max_title_tokens=12, bf16=False)
TRAIN = dict(train_users=60, epochs=4, lr=1e-2, lora_r=4, lora_alpha=8, lora_dropout=0.0, train_batch_size=8,
             valid_users=0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pair(demo_loo):
    """The same seeded scratch model, zero-shot and LoRA-trained."""
    return create("llm-rerank", **TINY).fit(demo_loo), create("llm-rerank", **TINY, **TRAIN).fit(demo_loo)


def examples(model, split, users=60, negatives="retriever"):
    from genrec.models.rerank.train import training_examples

    return training_examples(split, model.retriever_, model._maker, users=users, candidates=N,
                             negatives=negatives, seed=model.seed)


def label_nll(model, exs) -> float:
    from genrec.models.rerank.prompts import labels

    rows = model.llm.next_token_scores([e.prompt for e in exs], labels(N))
    return float(-np.mean([row[e.label] for row, e in zip(rows, exs)]))


def test_training_lowers_the_loss_on_the_label(pair, demo_loo):
    zero, trained = pair
    exs = examples(zero, demo_loo)
    assert label_nll(trained, exs) < label_nll(zero, exs) - 0.1
    info = trained.fit_info_["training"]
    assert info["train_users"] == len(exs) == 60 and info["adapter_kept"] and info["steps"] == 4 * 8
    assert info["history"][-1]["loss"] < info["history"][0]["loss"]
    assert 0 < info["lora"]["trainable_fraction"] < 0.2 and info["tokens_per_s"] > 0
    assert trained.fit_info_["steps"] == 32 and "60 training users" in trained.fit_info_["lora"]


@pytest.mark.parametrize("label_loss", ["vocab", "letters"])
def test_the_target_climbs_in_held_out_validation_lists(pair, demo_loo, label_loss):
    """Validation cases (never trained on): the retriever's order carries the signal (its top
    items are the target more often), which the untrained model cannot know and training teaches
    (with either loss)."""
    from genrec.models.rerank.prompts import labels
    from genrec.models.rerank.train import validation_examples

    zero, trained = pair
    if label_loss == "letters":
        trained = create("llm-rerank", **TINY, **dict(TRAIN, label_loss="letters")).fit(demo_loo)
    val = [e for e in validation_examples(demo_loo, zero.retriever_, zero._maker, users=150, candidates=N, seed=1)
           if e.label >= 0]
    assert len(val) >= 20

    def mean_rank(model):
        rows = model.llm.next_token_scores([e.prompt for e in val], labels(N))
        return np.mean([1 + sum(s > row[e.label] for s in row[:e.n]) for row, e in zip(rows, val)])

    assert mean_rank(trained) < mean_rank(zero) - 0.3


def test_save_and_load_give_the_same_rankings(pair, demo_loo, tmp_path):
    _, trained = pair
    hists = [list(c.history) for c in demo_loo.test[:8]]
    trained.save(tmp_path / "m")
    assert (tmp_path / "m" / "lora" / "adapter_model.safetensors").is_file()
    loaded = load_model(tmp_path / "m")
    assert loaded.adapter_ is not None and loaded.fit_info_["training"]["train_users"] == 60
    assert loaded.recommend(hists, k=10).items == trained.recommend(hists, k=10).items
    sd_a, sd_b = trained.llm.model.state_dict(), loaded.llm.model.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    loaded.save(tmp_path / "again")  # a loaded model saves its base and adapter again, not the merged weights
    again = load_model(tmp_path / "again")
    assert again.recommend(hists, k=10).items == trained.recommend(hists, k=10).items


@pytest.mark.parametrize("negatives", ["retriever", "random"])
def test_labels_are_training_items_only(demo_loo, pair, negatives):
    zero, _ = pair
    exs = examples(zero, demo_loo, users=200, negatives=negatives)
    test_target = {c.user: c.target for c in demo_loo.test}
    valid_target = {c.user: c.target for c in demo_loo.valid}
    assert len(exs) >= 100
    titles = dict(zip(demo_loo.catalog.ids, demo_loo.catalog.titles))
    for e in exs:
        seq = demo_loo.train.items[e.user]
        assert e.target == seq[-1] and e.target != test_target.get(e.user) and e.target != valid_target.get(e.user)
        assert 0 <= e.label < e.n == N
        shown = zero._maker.title(titles[e.target])
        assert f'({"ABCDEF"[e.label]}) "{shown}"' in e.prompt
    assert len({e.label for e in exs}) > 1  # the inserted targets are spread over the letters


def test_bad_training_parameters_are_clear_errors(demo_loo):
    for kw, what in [({"train_users": -1}, "train_users"), ({"negatives": "hard"}, "negatives"),
                     ({"label_loss": "full"}, "label_loss"), ({"lora_r": 0}, "lora_r"),
                     ({"train_users": 5, "mode": "listwise"}, "verbalizer mode only"),
                     ({"train_users": 5, "backend": "openai:http://127.0.0.1:9/v1#m"}, "local backend")]:
        with pytest.raises(ValueError, match=what):
            create("llm-rerank", **dict(TINY, **kw))
    with pytest.raises(ValueError, match="lora_layers must be between 0"):
        create("llm-rerank", **dict(TINY, train_users=5, lora_layers=99, valid_users=0)).fit(demo_loo)
    with pytest.raises(ParamError, match="llm-rerank.negatives must be one of"):
        resolve_params(["negatives=hard"], ["llm-rerank"])
