import json
import math

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

    big = bytearray(200 * 2**20)
    big[:: 4096] = b"x" * len(big[:: 4096])  # touch every page: 200 MiB resident
    before = runcard.peak_memory_mb()
    del big
    if not runcard.reset_peak_memory("test step"):
        assert "not possible" in runcard.peak_memory_scope()
        pytest.skip("this kernel does not allow resetting the peak RSS")
    assert runcard.peak_memory_mb() < before - 150
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
