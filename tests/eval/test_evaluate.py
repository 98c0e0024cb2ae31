import json
import math
import mmap

import numpy as np
import pytest

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split
from genrec.eval import metrics as M
from genrec.eval.evaluate import evaluate
from genrec.eval.report import markdown_table
from genrec.models.registry import create


def _split():
    # Popularity in training: a(3) > b(2) > c(1); d, e never trained.
    cat = Catalog([Item("a", "A", "X", ("Makeup", "Eyes")), Item("b", "B", "Y", ("Makeup", "Lips")),
                   Item("c", "C", "X", ("Hair",)), Item("d", "D"), Item("e", "E")])
    train = Sequences({"t1": ["a", "b", "c"], "t2": ["a", "b"], "t3": ["a"]})
    test = [Case("x1", ("c",), "a"),  # rank 1 (c excluded from the list)
            Case("x2", ("a",), "c"),  # list b, c -> rank 2
            Case("x3", ("a",), "e")]  # list b, c: never retrieved
    return Split(cat, train, test, test, "user", 0)


def test_evaluate_pop_by_hand():
    sp = _split()
    rep = evaluate(create("pop").fit(sp), sp, ks=(1, 2), progress=False)
    assert [c["rank"] for c in rep.per_case] == [1, 2, 0]
    assert rep.table["recall@1"] == pytest.approx(1 / 3)
    assert rep.table["recall@2"] == pytest.approx(2 / 3)
    assert rep.table["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert rep.table["mrr@2"] == pytest.approx((1 + 0.5) / 3)
    assert rep.table["precision@2"] == pytest.approx(2 / 3 / 2)
    # case x1: list [a, b]: categories {Makeup,Eyes} vs {Makeup,Lips}: J = 1/3
    assert rep.lists[0][:2] == ["a", "b"]
    assert rep.run_card["split"]["protocol"] == "user" and rep.run_card["ranking"] == "full"
    assert rep.run_card["peak_memory_mb"] > 0


def test_evaluate_attribute_metrics_equal_pure_functions(demo_loo):
    model = create("pop").fit(demo_loo)
    rep = evaluate(model, demo_loo, ks=(5, 10), progress=False)
    from genrec.eval.evaluate import item_attributes

    attrs = item_attributes(demo_loo.catalog, "categories")
    want = np.nanmean([M.diversity_at_k(r, attrs, 10) for r in rep.lists])
    assert rep.table["diversity_categories@10"] == pytest.approx(want)
    want_c = np.nanmean([M.coverage_at_k(r, c.history, attrs, 5) for r, c in zip(rep.lists, demo_loo.test)])
    assert rep.table["coverage_categories@5"] == pytest.approx(want_c)


def test_report_save_and_table(tmp_path, demo_loo):
    reps = [evaluate(create(n).fit(demo_loo), demo_loo, ks=(10,), progress=False) for n in ("pop", "random")]
    md = markdown_table(reps)
    assert md.splitlines()[0].startswith("| model | recall@10 | ndcg@10")
    assert "| pop |" in md and "| random |" in md
    reps[0].save(tmp_path / "pop")
    data = json.loads((tmp_path / "pop" / "metrics.json").read_text())
    assert data["metrics"]["recall@10"] == reps[0].table["recall@10"]
    assert sum(1 for _ in open(tmp_path / "pop" / "cases.jsonl")) == len(demo_loo.test)


def test_sampled_metrics_warn_and_are_higher(demo_loo):
    model = create("pop").fit(demo_loo)
    full = evaluate(model, demo_loo, ks=(10,), progress=False)
    with pytest.warns(UserWarning, match="not comparable"):
        sampled = evaluate(model, demo_loo, ks=(10,), progress=False, sampled_negatives=99)
    assert sampled.table["recall@10"] > full.table["recall@10"]
    assert sampled.run_card["ranking"].startswith("sampled")


def test_bad_ks_and_empty_cases(demo_loo):
    model = create("pop").fit(demo_loo)
    with pytest.raises(ValueError):
        evaluate(model, demo_loo, ks=(0,), progress=False)
    empty = Split(demo_loo.catalog, demo_loo.train, [], [], "loo", 0)
    with pytest.raises(ValueError, match="no test cases"):
        evaluate(model, empty, progress=False)


def test_peak_memory_resets_per_model_and_says_its_scope():
    from genrec.eval import runcard

    if not runcard.reset_peak_memory("test start"):
        assert "not possible" in runcard.peak_memory_scope()
        pytest.skip("this kernel does not allow resetting the peak RSS")
    # Reset first: the process's own peak may be far above anything this test allocates (earlier
    # tests in the same pytest process), so the 200 MiB must be measured from a fresh peak. The
    # memory is a fresh anonymous mapping, not a bytearray: malloc may hand out heap pages that
    # earlier tests freed but left resident, and then neither allocating nor freeing moves the RSS.
    big = mmap.mmap(-1, 200 * 2**20)
    for offset in range(0, len(big), mmap.PAGESIZE):  # touch every page: 200 MiB resident
        big[offset] = 1
    with_big = runcard.peak_memory_mb()
    big.close()  # unmapped: the RSS drops at once
    assert runcard.reset_peak_memory("test step")
    assert runcard.peak_memory_mb() < with_big - 150
    assert runcard.peak_memory_scope() == "peak RSS since test step (includes memory already held then)"
    sp = _split()
    assert evaluate(create("pop").fit(sp), sp, ks=(1,), progress=False).run_card["peak_memory_scope"] == \
        runcard.peak_memory_scope()


def test_machine_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from genrec.eval.runcard import machine; m = machine(); "
            "assert 'torch' not in sys.modules; print(m['cpus'])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# -- leakage through saved models, unreachable targets, why per case, fit_info -------------------------

def test_saved_model_refuses_targets_it_trained_on(tmp_path, demo_small):
    from genrec.data.splits import make_split
    from genrec.eval.provenance import LeakedEvaluationError
    from genrec.models.registry import load_model

    user = make_split(demo_small.preprocess("gpt4rec"), "user", seed=0)
    loo = make_split(demo_small.preprocess("standard"), "loo", seed=0)
    create("itemknn").fit(user).save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "genrec_model.json").read_text())["trained_on"]
    assert meta["dataset"] == "demo" and meta["split"] == "user" and meta["preprocess"] == "gpt4rec"
    assert meta["train_users"] == len(user.train) and len(meta["train_sha256"]) == 64
    model = load_model(tmp_path / "m")
    ok = evaluate(model, user, ks=(10,), progress=False)  # its own split: clean
    assert ok.run_card["leakage"]["status"] == "clean" and not ok.leaked
    with pytest.raises(LeakedEvaluationError, match=r"320 of 400 test targets.*split 'user' vs 'loo'") as e:
        evaluate(model, loo, ks=(10,), progress=False)
    assert "\n" not in str(e.value) and "--allow-leak" in str(e.value)
    bad = evaluate(model, loo, ks=(10,), progress=False, allow_leak=True)
    assert bad.leaked and bad.title == "itemknn (LEAKED)" and "LEAKED" in markdown_table([bad])
    assert bad.run_card["leakage"]["cases_trained_on"] == 320
    # leaked cases are exactly the training users of the user split
    assert {c.user for c in loo.test} & set(user.train.users) and len(set(user.train.users) & {c.user for c in loo.test}) == 320
    # the same model fitted in this process is checked the same way
    with pytest.raises(LeakedEvaluationError):
        evaluate(create("itemknn").fit(user), loo, ks=(10,), progress=False)


def test_saved_model_on_unknown_items_says_so(tmp_path, demo_loo):
    from genrec.data.catalog import Catalog, Item
    from genrec.eval.provenance import LeakedEvaluationError

    other = Split(Catalog([Item(f"z{i}", f"Z {i}") for i in range(5)]),
                  Sequences({"a": ["z0", "z1", "z2"]}), [], [Case("b", ("z0",), "z3"), Case("c", ("z1",), "z4")], "loo", 0,
                  {"dataset": "other"})
    create("pop").fit(other).save(tmp_path / "m")
    from genrec.models.registry import load_model

    with pytest.raises(LeakedEvaluationError, match=r"does not know 400 of the 400 test target items.*'other'"):
        evaluate(load_model(tmp_path / "m"), demo_loo, ks=(10,), progress=False)


def test_unreachable_targets_are_counted_and_reported():
    sp = _split()
    sp.test = [Case("x1", ("c", "a"), "a"), Case("x2", ("a",), "c")]  # x1's target is in its history
    rep = evaluate(create("pop").fit(sp), sp, ks=(2,), progress=False)
    assert rep.run_card["unreachable_targets"] == 1
    assert any("1 of 2 targets are already in their history" in n for n in rep.notes())
    rep = evaluate(create("pop").fit(sp), sp, ks=(2,), progress=False, exclude_history=False)
    assert rep.run_card["unreachable_targets"] == 0


def test_cases_carry_why_and_card_carries_fit_info(tmp_path, demo_user):
    model = create("title-bm25", tune_bm25=False, num_queries=3).fit(demo_user)
    model.fit_info_ = {"epochs_run": 0, "best_epoch": None, "stop_reason": "no training", "precision": "fp32",
                       "steps": 0, "train_seconds": np.float64(0.5)}  # numpy scalars are saved as numbers
    rep = evaluate(model, demo_user, ks=(10,), progress=False, max_cases=20)
    rep.save(tmp_path / "r")
    rows = [json.loads(l) for l in open(tmp_path / "r" / "cases.jsonl")]
    assert len(rows) == 20 and all("rank" in r for r in rows)
    assert all(len(r["why"]["queries"]) == 3 for r in rows), rows[0]
    assert rep.run_card["fit_info"]["stop_reason"] == "no training"
    model.save(tmp_path / "m")
    from genrec.models.registry import load_model

    assert load_model(tmp_path / "m").fit_info_ == {**model.fit_info_, "train_seconds": 0.5}
    rep = evaluate(create("pop").fit(demo_user), demo_user, ks=(10,), progress=False, max_cases=5)
    assert [r["why"] for r in rep.per_case] == [None] * 5 and rep.run_card["fit_info"] is None


def test_model_saved_without_provenance_is_evaluated_with_a_note(tmp_path, demo_loo):
    from genrec.models.registry import load_model

    m = create("pop").fit(demo_loo)
    m.save(tmp_path / "m")
    load_model(tmp_path / "m").save(tmp_path / "again")  # a loaded model keeps its provenance when saved again
    again = json.loads((tmp_path / "again" / "genrec_model.json").read_text())
    assert again["trained_on"]["split"] == "loo" and (tmp_path / "again" / "training_pairs.npz").is_file()
    meta = json.loads((tmp_path / "m" / "genrec_model.json").read_text())
    del meta["trained_on"]  # as saved by genrec before provenance existed
    (tmp_path / "m" / "genrec_model.json").write_text(json.dumps(meta))
    rep = evaluate(load_model(tmp_path / "m"), demo_loo, ks=(10,), progress=False)
    assert rep.run_card["leakage"]["status"] == "unchecked"
    assert any("leakage could not be checked" in n for n in rep.notes())


def test_fit_line_says_what_happened_in_training():
    from genrec.eval.report import fit_line

    info = {"epochs_run": 5, "best_epoch": 3, "stop_reason": "patience 2 ran out", "precision": "bf16",
            "steps": 1200, "train_seconds": 11.04}
    assert fit_line("sasrec", info, 12.34) == ("sasrec: trained in 12.3 s: 5 epochs run, kept epoch 3, 1,200 steps, "
                                               "stopped: patience 2 ran out, precision bf16, training 11.0 s")
    assert fit_line("pop", None, 0.01) == "pop: trained in 0.0 s (the model reports no training details)"
    assert fit_line("pop", None) == "pop: saved model (the model reports no training details)"
    assert fit_line("title-bm25", {"valid_users": 50, "k1": [1]}) == "title-bm25: saved model: valid_users 50"


def test_cold_start_view_refuses_a_model_that_trained_on_the_cold_items(demo_small):
    from genrec.data.splits import make_split
    from genrec.eval.provenance import LeakedEvaluationError

    pre = demo_small.preprocess("standard")
    warm = make_split(pre, "loo", seed=0)
    cold = make_split(pre, "loo", seed=0, cold_items=0.2)
    honest = create("pop").fit(cold)
    assert evaluate(honest, cold.cold_view(), ks=(10,), progress=False).run_card["leakage"]["status"] == \
        "same training data"
    with pytest.raises(LeakedEvaluationError, match="cold-start targets are items it was trained on"):
        evaluate(create("pop").fit(warm), cold.cold_view(), ks=(10,), progress=False)
