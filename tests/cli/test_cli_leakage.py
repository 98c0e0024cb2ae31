"""`evaluate --model-dir` refuses targets the saved model was trained on (issue 17)."""

import json

from tests.cli.helpers import run


def test_model_dir_trained_on_user_split_is_refused_on_loo(tmp_path):
    m = tmp_path / "knn"
    r = run("train", "-m", "itemknn", "-s", "user", "-o", str(m), "--no-evaluate")
    assert r.returncode == 0, r.stderr
    meta = json.loads((m / "genrec_model.json").read_text())
    assert meta["trained_on"]["split"] == "user" and (m / meta["trained_on"]["pairs_file"]).is_file()
    r = run("evaluate", "--model-dir", str(m), "-s", "loo", "--ks", "10")
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert r.returncode == 2 and len(err) == 1 and "| itemknn" not in r.stdout
    assert "1,600 of 2,000 test targets were in that user's training data" in err[0]
    assert "preprocess 'gpt4rec' vs 'standard', split 'user' vs 'loo'" in err[0] and "--allow-leak" in err[0]
    r = run("evaluate", "--model-dir", str(m), "-s", "loo", "--ks", "10", "--allow-leak", "-o", str(tmp_path / "ev"))
    assert r.returncode == 0 and "| itemknn (LEAKED) |" in r.stdout and "LEAKED: 1,600 of 2,000" in r.stdout
    card = json.loads((tmp_path / "ev" / "itemknn" / "metrics.json").read_text())["run_card"]
    assert card["leakage"]["status"] == "LEAKED" and card["leakage"]["cases_trained_on"] == 1600
    assert "LEAKED" in (tmp_path / "ev" / "table.md").read_text()
    r = run("evaluate", "--model-dir", str(m), "-s", "user", "--ks", "10")  # its own split: fine
    assert r.returncode == 0 and "| itemknn |" in r.stdout and "LEAKED" not in r.stdout


def test_evaluate_out_writes_why_beside_rank(tmp_path):
    r = run("evaluate", "-m", "title-bm25", "-p", "tune_bm25=false", "-p", "num_queries=2", "--ks", "10",
            "--max-cases", "10", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in (tmp_path / "title-bm25" / "cases.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(isinstance(x["rank"], int) and len(x["why"]["queries"]) == 2 for x in rows)
    assert "title-bm25: trained in" in r.stdout
