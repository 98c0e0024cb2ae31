"""`genrec models`, `datasets stats` presets and --min-rating, `recommend` by title."""

import inspect

from tests.cli.helpers import run


def test_every_registered_parameter_has_help_and_the_table_names_no_other():
    from genrec.models.params import HELP, RANGES
    from genrec.models.registry import param_infos
    from genrec.models.registry import MODELS

    used = set()
    for name in MODELS:
        for p in param_infos(name):
            assert p.help, f"{name}.{p.name} has no help: add it to genrec/models/params.py HELP"
            used |= {p.name, f"{name}.{p.name}"}
    stale = [k for k in list(HELP) + list(RANGES) if k not in used]
    assert not stale, f"help/ranges for parameters no model has: {stale}"


def test_models_lists_and_shows_parameters():
    r = run("models")
    assert r.returncode == 0
    from genrec.models.registry import MODELS

    assert [ln.split()[0] for ln in r.stdout.splitlines()] == list(MODELS)
    r = run("models", "show", "gpt4rec")
    assert r.returncode == 0
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:] if not ln.strip().startswith("capabilities:")}
    from genrec.models.gpt4rec import GPT4Rec

    assert set(rows) == set(inspect.signature(GPT4Rec.__init__).parameters) - {"self"}
    assert '"products"' in rows["domain"] and "str" in rows["domain"] and "movies" in rows["domain"]
    assert "int | None" in rows["patience"] and "null = never" in rows["patience"]
    assert "(no parameters)" in run("models", "show", "pop").stdout


def test_datasets_stats_uses_the_preset_evaluate_uses_and_help_names_presets(tmp_path):
    r = run("datasets", "stats", "demo")  # demo's default split is 'user', which evaluate preprocesses with gpt4rec
    assert r.returncode == 0 and r.stdout.startswith("preset 'gpt4rec' (") and "`genrec evaluate -d demo -s user` uses" in r.stdout
    r = run("datasets", "stats", "demo", "--split", "loo")
    assert r.stdout.startswith("preset 'standard' (remove repeated items") and "after 'standard'" in r.stdout
    r = run("datasets", "stats", "demo", "--split", "loo", "--preprocess", "none")
    assert "`genrec evaluate -d demo -s loo` uses 'standard'" in r.stdout.splitlines()[0]
    h = run("datasets", "stats", "--help").stdout
    assert "keep each user's last 15" in " ".join(h.replace("│", " ").split())
    from tests.data.test_loaders_movielens import write_100k

    write_100k(tmp_path / "ml-100k")
    r = run("datasets", "stats", "ml-100k", "--data-dir", str(tmp_path), "--min-rating", "4", "--preprocess", "none")
    assert r.returncode == 0, r.stderr
    raw = [ln for ln in r.stdout.splitlines() if ln.startswith("| raw")][0]
    assert raw.split("|")[4].strip() == "3"  # 3 of the 5 ratings are >= 4


def test_recommend_reads_titles_and_refuses_no_history(tmp_path):
    r = run("train", "-m", "pop", "-s", "loo", "-o", str(tmp_path / "pop"), "--no-evaluate")
    assert r.returncode == 0, r.stderr
    assert "pop: trained in" in r.stdout  # the training line
    r = run("recommend", "--model-dir", str(tmp_path / "pop"), "-k", "2")
    assert r.returncode == 2 and "recommend needs a history" in r.stderr
    from genrec.data.catalog import Catalog

    cat = Catalog.load(tmp_path / "pop" / "catalog.jsonl")
    title = next(it.title for it in cat if "," in it.title)  # a title with a comma, given in another case
    item = next(it.id for it in cat if it.title == title)
    r = run("recommend", "--model-dir", str(tmp_path / "pop"), "-k", "2", "--history", f"{title.upper()},{cat.ids[0]}")
    assert r.returncode == 0, r.stderr
    assert f"read {title.upper()!r} as item {item} (title match)" in r.stdout and f"had: {title}" in r.stdout
    r = run("recommend", "--model-dir", str(tmp_path / "pop"), "--history", title[:-3])
    assert r.returncode == 2 and "neither an item id nor a title" in r.stderr and repr(title) in r.stderr
