"""Run configs: every bad field is an error naming the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genrec.errors import ConfigError
from genrec.experiments.config import load_config

GOOD = '''title = "t"
name = "t"
[data]
dataset = "demo"
[[models]]
name = "itemknn"
params = { neighbors = 20 }
grid = { recency_decay = [1.0, 0.5] }
score_only = ["recency_decay"]
'''


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return p


def test_a_good_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.models[0].params == {"neighbors": 20} and cfg.tune.method == "coordinate"
    assert cfg.evaluate.ks == [5, 10, 20, 40] and cfg.data.split is None


@pytest.mark.parametrize("edit, field, words", [
    (lambda s: 'colour = "red"\n' + s, "colour", "unknown field"),
    (lambda s: s + 'colour = "red"\n', "models[0].colour", "unknown field"),
    (lambda s: s.replace('dataset = "demo"', 'dataset = "demo"\nspilt = "loo"'), "data.spilt", "unknown field"),
    (lambda s: s.replace('name = "t"', 'name = "t"\nseed = "zero"'), "seed", "integer"),
    (lambda s: s.replace("neighbors = 20", "neighbours = 20"), "models[0].params.neighbours", "no parameter"),
    (lambda s: s.replace('name = "itemknn"', 'name = "itemknm"'), "models[0].name", "unknown model"),
    (lambda s: s.replace('"demo"', '"demo-shop"'), "data.dataset", "unknown dataset"),
    (lambda s: s.replace('score_only = ["recency_decay"]', 'score_only = ["shrinkage"]'),
     "models[0].score_only[0]", "not in this model's grid"),
    (lambda s: s + '[tune]\nmetric = "recall10"\n', "tune.metric", "name@K"),
    (lambda s: s + '[evaluate]\nks = [10, 0]\n', "evaluate.ks", "positive"),
    (lambda s: 'anchors = ["no-such-table"]\n' + s, "anchors[0]", "unknown anchor"),
    (lambda s: s.replace('score_only', 'time_budget_minutes = 5\nscore_only'), "models[0].time_budget_minutes",
     "no time_budget parameter"),
    (lambda s: s.replace("[[models]]", "[[models]]\nlabel = 'a'") + '[[models]]\nname = "pop"\nlabel = "a"\n',
     "models", "labelled 'a'"),
])
def test_a_bad_field_is_named_with_the_file(tmp_path, edit, field, words):
    p = write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.field == field and str(e.value.path) == str(p)
    assert str(p) in str(e.value) and f"field {field!r}" in str(e.value) and words in str(e.value)


def test_missing_section_and_bad_toml(tmp_path):
    p = write(tmp_path, 'title = "t"\nname = "t"\n[[models]]\nname = "pop"\n')
    with pytest.raises(ConfigError, match=r"field 'data': Field required"):
        load_config(p)
    p = write(tmp_path, 'title = "t\n')
    with pytest.raises(ConfigError, match=r"run.toml: not valid TOML.*line 1"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_the_cli_reports_one_line_and_exit_code_2(tmp_path):
    p = write(tmp_path, GOOD.replace("neighbors = 20", "neighbours = 20"))
    r = subprocess.run([sys.executable, "-m", "genrec.cli", "bench", str(p)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "models[0].params.neighbours" in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr


def test_the_committed_configs_are_valid():
    configs = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "configs").glob("*.toml"))
    assert configs, "benchmarks/configs holds the run configs"
    pages = {}
    for c in configs:
        cfg = load_config(c)
        page = (c.parent / cfg.out / cfg.name).resolve()
        assert page not in pages, f"{c} and {pages.get(page)} would write the same results page"
        pages[page] = c
        assert f"genrec bench benchmarks/configs/{c.name}" in c.read_text(), f"{c}: say the command in a comment"
