"""The real `genrec` command, run as a user runs it."""

import json
import subprocess
import sys

import pytest


def genrec(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "genrec.cli", *args], capture_output=True, text=True, timeout=300)
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
    r = genrec("recommend", "--model-dir", str(out), "--history", f"{first},unknown-id", "-k", "3")
    assert " 1. " in r.stdout and "unknown item id" in r.stdout
    r = genrec("evaluate", "--model-dir", str(out), "--split", "loo", "--ks", "10", "--out", str(tmp_path / "ev"))
    assert "| pop |" in r.stdout and (tmp_path / "ev" / "table.md").is_file()


def test_several_models_one_table():
    r = genrec("evaluate", "--model", "pop", "--model", "random", "--split", "user", "--ks", "10",
               "--param", "random.seed=3")
    rows = [l for l in r.stdout.splitlines() if l.startswith("| ")]
    assert [l.split("|")[1].strip() for l in rows] == ["model", "pop", "random"]
