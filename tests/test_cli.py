"""The real `genrec` command, run as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path


# genrec-seq2seq small enough to pretrain and fine-tune one epoch each on the demo shop in seconds
SEQ2SEQ_TINY = ["pretrain_epochs=1", "finetune_epochs=1", "d_model=16", "heads=2", "max_len=4", "batch_size=256",
                "valid_users=50", "threads=1", "progress=false"]


def genrec(*args, check=True, env=None):
    r = subprocess.run([sys.executable, "-m", "genrec.cli", *args], capture_output=True, text=True, timeout=300,
                       env=None if env is None else {**os.environ, **env})
    if check and r.returncode != 0:
        raise AssertionError(f"genrec {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def test_import_stays_light():
    code = ("import sys, genrec, genrec.cli, genrec.models.registry, genrec.eval.evaluate; "
            "heavy = [m for m in ('torch', 'transformers', 'implicit', 'bm25s', 'fastapi') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quickstart_prints_table_and_recommendations():
    r = genrec("quickstart", "--models", "pop,random", "--users", "1")
    assert "| model | recall@5" in r.stdout and "| pop |" in r.stdout
    assert "history (oldest first)" in r.stdout and "pop recommends:" in r.stdout
    assert "SYNTHETIC" in r.stderr


def test_unknown_model_and_dataset_are_clear_errors():
    r = genrec("evaluate", "--model", "nope", check=False)
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr
    r = genrec("evaluate", "--model", "pop", "--dataset", "nope", check=False)
    assert r.returncode == 2 and "unknown dataset 'nope'" in r.stderr
    r = genrec("evaluate", "--model", "pop", "--param", "oops", check=False)
    assert r.returncode == 2 and "key=value" in r.stderr


def test_train_then_recommend_and_evaluate_saved(tmp_path):
    out = tmp_path / "pop"
    genrec("train", "--model", "pop", "--split", "loo", "--out", str(out))
    assert (out / "genrec_model.json").is_file() and (out / "evaluation" / "metrics.json").is_file()
    first = json.loads((out / "catalog.jsonl").read_text().splitlines()[0])["id"]
    r = genrec("recommend", "--model-dir", str(out), "--history", first, "-k", "3")
    assert " 1. " in r.stdout and " 4. " not in r.stdout
    r = genrec("recommend", "--model-dir", str(out), "--history", f"{first},unknown-id", "-k", "3", check=False)
    assert r.returncode == 2 and "'unknown-id' is neither an item id nor a title" in r.stderr
    r = genrec("evaluate", "--model-dir", str(out), "--split", "loo", "--ks", "10", "--out", str(tmp_path / "ev"))
    assert "| pop |" in r.stdout and (tmp_path / "ev" / "table.md").is_file()


def test_several_models_one_table():
    r = genrec("evaluate", "--model", "pop", "--model", "random", "--split", "user", "--ks", "10",
               "--param", "random.seed=3")
    rows = [l for l in r.stdout.splitlines() if l.startswith("| ")]
    assert [l.split("|")[1].strip() for l in rows] == ["model", "pop", "random"]


def _params(model: str, pairs: list[str]) -> list[str]:
    return [a for p in pairs for a in ("--param", f"{model}.{p}")]


def test_recommend_fits_a_named_model_then_recommends():
    r = genrec("recommend", "--model", "genrec-seq2seq", "--dataset", "demo", "--split", "user", "-k", "4",
               *_params("genrec-seq2seq", SEQ2SEQ_TINY))
    assert "trained genrec-seq2seq in" in r.stderr and "split 'user'" in r.stderr
    out = r.stdout
    assert "history of test user" in out and "   had: " in out and "genrec-seq2seq recommends:" in out
    assert " 4. " in out and " 5. " not in out
    # max_len=4 keeps the last 3 items; demo histories are longer, and the note says so
    assert "note: long history: only the most recent 3 items were used" in out
    r = genrec("recommend", "--model", "pop", "--history", "D00589", "-k", "2")
    assert "had: " in r.stdout and "pop recommends:" in r.stdout
    assert "history of test user" not in r.stdout
    r = genrec("recommend", check=False)
    assert r.returncode == 2 and "exactly one of --model NAME or --model-dir PATH" in r.stderr


def test_evaluate_seq2seq_next_to_pop_with_per_model_peak_memory(tmp_path):
    r = genrec("evaluate", "--model", "genrec-seq2seq", "--model", "pop", "--dataset", "demo", "--ks", "10",
               "--max-cases", "60", "--out", str(tmp_path), *_params("genrec-seq2seq", SEQ2SEQ_TINY))
    rows = [l.split("|")[1].strip() for l in r.stdout.splitlines() if l.startswith("| ")]
    assert rows == ["model", "genrec-seq2seq", "pop"]
    for name in ("genrec-seq2seq", "pop"):
        card = json.loads((tmp_path / name / "metrics.json").read_text())["run_card"]
        assert card["cases"] == 60 and card["peak_memory_mb"] > 0
        assert card["peak_memory_scope"].startswith(f"peak RSS since {name}'s fit started"), card
    seq = json.loads((tmp_path / "genrec-seq2seq" / "metrics.json").read_text())["run_card"]
    assert seq["params"]["d_model"] == 16 and seq["params"]["finetune_epochs"] == 1


def test_datasets_list_says_where_files_were_found(tmp_path):
    from genrec.data.registry import DATASETS

    (tmp_path / "ml-1m").mkdir()
    for f in ("ratings.dat", "movies.dat"):
        (tmp_path / "ml-1m" / f).write_text("")
    r = genrec("datasets", "list", env={"GENREC_DATA_DIR": str(tmp_path), "GENREC_CACHE": str(tmp_path / "cache")})
    lines = r.stdout.splitlines()
    names = [l.split()[0] for l in lines[0::2]]
    assert names == list(DATASETS)
    where = {n: l.strip() for n, l in zip(names, lines[1::2])}
    assert where["demo"] == "built in" and where["ml-1m"] == str(tmp_path / "ml-1m")
    assert all(w == "built in" or w.startswith("not found") or Path(w).is_dir() for w in where.values()), where
    assert "MovieLens 1M" in lines[names.index("ml-1m") * 2]


def test_datasets_stats_prints_counts_before_truncation():
    r = genrec("datasets", "stats", "demo", "--preprocess", "gpt4rec")
    rows = {l.split("|")[1].strip(): l for l in r.stdout.splitlines() if l.startswith("| ")}
    assert set(rows) == {"demo", "raw", "after 'gpt4rec'", "'gpt4rec' without truncate(last 15)"}
    assert rows["after 'gpt4rec'"].split("|")[-2].strip() == "15"  # max length after truncation
    assert int(rows["'gpt4rec' without truncate(last 15)"].split("|")[-2]) > 15
    assert "GPT4Rec's Table 2" in r.stdout
    r = genrec("datasets", "stats", "demo", "--preprocess", "standard")
    assert "without truncate" not in r.stdout
