"""SASRec and BERT4Rec: real tiny models trained on the synthetic demo shop (loo split)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genrec.data.catalog import Item  # noqa: E402
from genrec.data.loaders.demo import make_demo_shop  # noqa: E402
from genrec.data.splits import make_split  # noqa: E402
from genrec.errors import GenrecError  # noqa: E402
from genrec.eval.evaluate import evaluate  # noqa: E402
from genrec.models.baselines.bert4rec import BERT4Rec  # noqa: E402
from genrec.models.baselines.pop import PopRec  # noqa: E402
from genrec.models.baselines.sasrec import SASRec  # noqa: E402
from genrec.models.baselines.seqnet import left_pad, length_buckets  # noqa: E402
from genrec.models.registry import create, load_model  # noqa: E402

SMALL = dict(hidden=32, max_len=20, dropout=0.1, threads=1, progress=False, bf16=False, patience=None, seed=0)


@pytest.fixture(scope="module")
def split():
    # 600 users, 500 items; each user follows a routine of product types (learnable order).
    return make_split(make_demo_shop(n_users=600, items_per_type=10, seed=7), "loo", seed=0)


@pytest.fixture(scope="module")
def pop_recall(split) -> float:
    return evaluate(PopRec().fit(split), split, ks=(10,), progress=False).table["recall@10"]


@pytest.fixture(scope="module")
def sasrec(split) -> SASRec:
    return SASRec(epochs=4, lr=5e-3, batch_size=64, **SMALL).fit(split)


@pytest.fixture(scope="module")
def bert4rec(split) -> BERT4Rec:
    return BERT4Rec(epochs=7, lr=5e-3, batch_size=32, mask_prob=0.3, **SMALL).fit(split)


def _recall(model, split) -> float:
    return evaluate(model, split, ks=(10,), progress=False).table["recall@10"]


# -- quality: a few epochs beat popularity clearly (measured test Recall@10: pop 0.060, SASRec-CE
#    0.293 after 4 epochs, SASRec-BCE 0.218 and SASRec-SCE 0.250 after 5, BERT4Rec 0.245 after 7) --

def test_sasrec_ce_beats_pop(sasrec, split, pop_recall):
    assert _recall(sasrec, split) > pop_recall + 0.15
    info = sasrec.fit_info_
    assert {k: info[k] for k in ("epochs_run", "best_epoch", "stop_reason", "precision", "steps")} == {
        "epochs_run": 4, "best_epoch": 4, "stop_reason": "max_epochs", "precision": "fp32", "steps": 40}
    assert info["valid_users"] == len(split.valid) and info["train_seconds"] > 0
    # 10 batches per epoch: validated every 50 steps at most, and once more when training ends
    assert [h["step"] for h in sasrec.fit_history_] == [40]


@pytest.mark.parametrize("loss", ["bce", "sce"])
def test_sasrec_sampled_losses_beat_pop(loss, split, pop_recall):
    m = SASRec(loss=loss, negatives=64, epochs=5, lr=5e-3, batch_size=64, **SMALL).fit(split)
    assert _recall(m, split) > pop_recall + 0.1


def test_bert4rec_beats_pop(bert4rec, split, pop_recall):
    assert _recall(bert4rec, split) > pop_recall + 0.1


# -- behaviour -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["sasrec", "bert4rec"])
def test_save_load_round_trip(which, request, split, tmp_path):
    model = request.getfixturevalue(which)
    hists = [list(c.history) for c in split.test[:20]]
    before = model.recommend(hists, k=10)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    after = loaded.recommend(hists, k=10)
    assert after.items == before.items
    np.testing.assert_array_equal(np.array(after.scores), np.array(before.scores))
    assert loaded.fit_info_ == model.fit_info_ and loaded.fit_history_ == model.fit_history_


@pytest.mark.parametrize("which", ["sasrec", "bert4rec"])
def test_batch_equals_single(which, request, split):
    model = request.getfixturevalue(which)
    enc, _ = model.encode_histories([list(c.history) for c in split.test[:12]])
    assert len({len(h) for h in enc}) > 3  # really different lengths (different padding)
    batch = model.score(enc)
    single = np.concatenate([model.score([h]) for h in enc])
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("which", ["sasrec", "bert4rec"])
def test_empty_and_unknown_histories(which, request, split):
    model = request.getfixturevalue(which)
    recs = model.recommend([[], ["no-such-item"]], k=7)
    assert [len(r) for r in recs.items] == [7, 7]
    assert all(any("popularity" in n for n in notes) for notes in recs.notes)
    assert any("unknown" in n for n in recs.notes[1])
    top_pop = [split.catalog.id_at(i) for i in np.argsort(-model.pop_, kind="stable")[:7]]
    assert set(recs.items[0]) == set(top_pop)


@pytest.mark.parametrize("which", ["sasrec", "bert4rec"])
def test_long_history_keeps_most_recent(which, request, split):
    model = request.getfixturevalue(which)
    rng = np.random.default_rng(1)
    long = rng.choice(len(split.catalog), size=3 * model.max_len, replace=False)
    keep = model.max_len - 1 if which == "bert4rec" else model.max_len
    np.testing.assert_allclose(model.score([long]), model.score([long[-keep:]]), rtol=1e-5, atol=1e-5)
    assert not np.allclose(model.score([long]), model.score([long[:keep]]), atol=1e-3)
    recs = model.recommend([[split.catalog.id_at(int(i)) for i in long]], k=5)
    assert any("most recent" in n for n in recs.notes[0])
    assert not set(recs.items[0]) & {split.catalog.id_at(int(i)) for i in long}  # history excluded


def test_items_added_after_fit_get_no_score(split):
    m = SASRec(epochs=1, batch_size=128, **SMALL).fit(split)
    m.catalog = split.catalog.copy()  # do not grow the shared fixture's catalog
    m.add_items([Item(id="NEW-1", title="new thing")])
    h = list(split.test[0].history)
    recs = m.recommend([h + ["NEW-1"], ["NEW-1"]], k=len(m.catalog))
    assert "NEW-1" not in recs.items[0] and len(recs.items[0]) == len(m.catalog) - 1 - len(set(h))
    assert any("added after training" in n for n in recs.notes[0])
    assert any("popularity" in n for n in recs.notes[1])
    np.testing.assert_allclose(m.score(m.encode_histories([h + ["NEW-1"]])[0]),
                               m.score(m.encode_histories([h])[0]), atol=1e-6)


# -- resumable, deterministic training -------------------------------------------------------------

def _state(model) -> dict:
    return {k: v.clone() for k, v in model.net_.state_dict().items()}


@pytest.mark.parametrize("cls", [SASRec, BERT4Rec])
def test_resume_equals_uninterrupted(cls, tmp_path):
    from genrec.training.checkpoint import CHECKPOINT_FILE

    small = make_split(make_demo_shop(n_users=150, items_per_type=4, seed=3), "loo", seed=0)
    params = dict(SMALL, hidden=16, max_len=10, batch_size=32, eval_every=5)  # 5 batches: once per epoch
    full = cls(epochs=4, checkpoint_dir=str(tmp_path / "a"), **params).fit(small)
    cls(epochs=2, checkpoint_dir=str(tmp_path / "b"), **params).fit(small)  # "interrupted" after 2
    ck = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=False)
    assert ck["progress"]["epoch"] == 2 and ck["optimizer"]["state"]
    resumed = cls(epochs=4, checkpoint_dir=str(tmp_path / "b"), **params).fit(small)
    assert resumed.fit_history_ == [dict(r, seconds=resumed.fit_history_[n]["seconds"], elapsed=resumed.fit_history_[n]["elapsed"],
                                         valid_seconds=resumed.fit_history_[n]["valid_seconds"])
                                    for n, r in enumerate(full.fit_history_)]
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca = torch.load(tmp_path / "a" / CHECKPOINT_FILE, weights_only=False)
    cb = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=False)
    assert ca["progress"]["step"] == cb["progress"]["step"] == 20
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    s_a, s_b = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert all(torch.equal(s_a[i]["exp_avg_sq"], s_b[i]["exp_avg_sq"]) for i in s_a)
    # Same seed, fresh run without checkpoints: the same weights again (deterministic).
    again = cls(epochs=4, **params).fit(small)
    assert all(torch.equal(a[k], _state(again)[k]) for k in a)
    # A checkpoint from other parameters is refused, not silently mixed in.
    with pytest.raises(GenrecError, match="another model configuration.*hidden: checkpoint 16, now 8"):
        cls(epochs=5, checkpoint_dir=str(tmp_path / "b"), **dict(params, hidden=8)).fit(small)


def test_early_stopping_keeps_best_epoch(split):
    m = SASRec(epochs=30, lr=5e-2, batch_size=64, **dict(SMALL, patience=1, min_steps=0, eval_every=10)).fit(split)
    info, hist = m.fit_info_, m.fit_history_
    vals = [e["ndcg@10"] for e in hist]
    assert info["stop_reason"] == "early_stopping" and info["epochs_run"] < 30
    assert info["best_epoch"] == int(np.argmax(vals)) + 1 and info["best_valid"] == max(vals)
    assert info["epochs_run"] == info["best_epoch"] + 1  # stopped after one bad epoch


def test_default_training_counts_steps_not_epochs(split):
    """Defaults on small data: early stopping waits for min_steps (500) optimizer steps and
    validates every 50 steps when an epoch is shorter."""
    m = SASRec(hidden=16, max_len=10, threads=1, progress=False, bf16=False, seed=0, epochs=3)
    cfg = m._trainer_config(n_train=600)  # 5 batches of 128 per epoch
    assert (cfg.min_steps, cfg.eval_every, cfg.patience, cfg.max_epochs) == (500, 50, 5, 3)
    assert m._trainer_config(n_train=128 * 80).eval_every is None  # 80 batches: validate per epoch


def test_forced_bf16_scores_close_to_fp32(sasrec, split):
    from genrec.torch_utils import resolve_bf16

    assert resolve_bf16(True, torch.device("cpu")) and not resolve_bf16(False, torch.device("cpu"))
    enc, _ = sasrec.encode_histories([list(c.history) for c in split.test[:8]])
    fp32 = sasrec.score(enc)
    sasrec.bf16 = True
    try:
        bf16 = sasrec.score(enc)
    finally:
        sasrec.bf16 = False
    assert not np.array_equal(fp32, bf16)  # really ran in bf16
    np.testing.assert_allclose(bf16, fp32, atol=0.1 * np.abs(fp32).max())
    top_fp32, top_bf16 = np.argsort(-fp32, 1)[:, :10], np.argsort(-bf16, 1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_fp32, top_bf16)])
    assert overlap >= 0.7


# -- pieces ----------------------------------------------------------------------------------------

def test_left_pad_and_buckets():
    out = left_pad([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    np.testing.assert_array_equal(out, [[2, 3], [0, 4], [0, 0]])
    lengths = np.random.default_rng(0).integers(1, 50, size=1000)
    batches = length_buckets(lengths, 64, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 4  # batches hold similar lengths


def test_registry_and_bad_params(split):
    assert isinstance(create("sasrec", epochs=1), SASRec)
    assert isinstance(create("bert4rec", epochs=1), BERT4Rec)
    with pytest.raises(ValueError, match="loss"):
        SASRec(loss="hinge", epochs=1, **SMALL).fit(split)
    with pytest.raises(GenrecError, match="not fitted"):
        SASRec().recommend([["x"]])
