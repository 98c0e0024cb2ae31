"""`genrec bench CONFIG` end to end on the demo shop (pop + itemknn): JSON and Markdown pages with
the machine facts measured during the run, the command, tuning on validation, notes kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from genrec.experiments.writer import MARKER, markdown

CONFIG = '''title = "Tiny bench: demo shop"
name = "tiny"
out = "results"
notes = ["a note from the config"]
anchors = ["sasrec-beauty-loo"]
[data]
dataset = "demo"
split = "loo"
[evaluate]
ks = [5, 10]
[tune]
method = "grid"
max_cases = 100
[[models]]
name = "pop"
[[models]]
name = "itemknn"
label = "itemknn (tuned)"
grid = { neighbors = [20, 100], recency_decay = [1.0, 0.5] }
score_only = ["recency_decay"]
'''


def bench(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "genrec.cli", "bench", *args], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    return r


def test_bench_writes_json_and_markdown_with_measured_machine_facts(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    r = bench(str(cfg))
    out = tmp_path / "results"  # `out` is relative to the config's folder
    assert f"wrote {out / 'tiny.md'}" in r.stdout
    res = json.loads((out / "tiny.json").read_text())
    assert res["command"] == f"genrec bench {cfg}" and res["data"]["split"] == "loo" and res["complete"] is True
    m = res["machine"]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), None) if Path("/proc/cpuinfo").exists() else None
    assert m["cpu"] == cpu and m["cpus"] == os.cpu_count()
    for key in ("load_average_start", "load_average_end"):
        assert len(m[key]) == 3 and all(isinstance(x, float) and x >= 0 for x in m[key])
    rows = {row["model"]: row for row in res["results"]}
    assert set(rows) == {"pop", "itemknn (tuned)"}
    assert rows["pop"]["tuning"] is None and 0 <= rows["pop"]["metrics"]["recall@10"] <= 1
    assert "fit_info" in rows["pop"] and rows["pop"]["fit_info"] is None  # pop trains nothing to report
    tuning = rows["itemknn (tuned)"]["tuning"]
    assert len(tuning["trials"]) == 4 and [t["refit"] for t in tuning["trials"]] == [True, False, True, False]
    best = max(tuning["trials"], key=lambda t: t["score"])
    assert tuning["best"] == best["params"] == {k: v for k, v in rows["itemknn (tuned)"]["params"].items()
                                                if k in best["params"]}
    assert rows["itemknn (tuned)"]["metrics"]["recall@10"] > rows["pop"]["metrics"]["recall@10"]

    page = (out / "tiny.md").read_text()
    assert page.startswith("# Tiny bench: demo shop\n") and f"Command: `genrec bench {cfg}`" in page
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert ("avx2" in m["cpu_flags"]) == (" avx2" in flags)
    shown = f" ({' '.join(m['cpu_flags'])})" if m["cpu_flags"] else ""
    assert f"{m['cpu']}{shown}, {m['cpus']} CPUs" in page and str(m["load_average_start"]) in page
    assert str(m["load_average_end"]) in page and "SHARED" not in page and "demo (SYNTHETIC)" in page
    assert f"| pop | {rows['pop']['metrics']['recall@5']:.4f} |" in page
    assert "0.0605" in page and "a note from the config" in page and "`grid` search on 100 validation" in page

    assert "Incomplete" not in page
    partial = markdown({**res, "complete": False, "results": res["results"][:1]})
    assert "**Incomplete: 1 of 2 models so far" in partial and "| itemknn (tuned) |" not in partial

    # hand notes below the marker survive a rerun; the table above is rewritten
    (out / "tiny.md").write_text(page.replace("| pop |", "| POP |") + "my hand note\n")
    bench(str(cfg), "--out", str(tmp_path / "results"))
    again = (out / "tiny.md").read_text()
    assert again.endswith(MARKER + "\nmy hand note\n") and "| POP |" not in again
    assert f"--out {tmp_path / 'results'}" in again


def test_check_only_validates(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    r = bench(str(cfg), "--check")
    assert "valid (2 models)" in r.stdout and not (tmp_path / "results").exists()


def test_page_reports_what_training_did(tmp_path):
    """A row carrying the model's fit_info_ gets a line in a Training section of the page."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG.replace('anchors = ["sasrec-beauty-loo"]', "anchors = []"))
    bench(str(cfg))
    res = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert "## Training" not in markdown(res)
    info = {"epochs_run": 7, "best_epoch": 4, "stop_reason": "early_stopping", "precision": "bf16",
            "steps": 1234, "train_seconds": 56.7}
    res["results"][0]["fit_info"] = info
    page = markdown(res)
    assert "## Training" in page
    assert ("pop: trained in " in page and "7 epochs run, kept epoch 4, 1,234 steps, stopped: early_stopping, "
            "precision bf16, training 56.7 s" in page)


def test_resume_keeps_rows_of_the_same_config_and_reruns_changed_entries(tmp_path):
    """--resume keeps a row only when data, evaluation and that model's entry are unchanged."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    bench(str(cfg))
    js = tmp_path / "results" / "tiny.json"
    first = {r["model"]: r for r in json.loads(js.read_text())["results"]}

    # the itemknn entry changes (one grid value fewer); pop does not
    cfg.write_text(CONFIG.replace("neighbors = [20, 100]", "neighbors = [20]"))
    r = bench(str(cfg), "--resume")
    assert "pop: kept from the earlier run (--resume)" in r.stderr
    assert "itemknn (tuned): kept" not in r.stderr
    res = json.loads(js.read_text())
    rows = {row["model"]: row for row in res["results"]}
    assert res["kept_rows"] == ["pop"] and res["command"].endswith("--resume") and res["complete"] is True
    assert rows["pop"] == first["pop"]  # the earlier measurement, untouched
    assert rows["itemknn (tuned)"]["measured_utc"] >= first["itemknn (tuned)"]["measured_utc"]
    assert len(rows["itemknn (tuned)"]["tuning"]["trials"]) < len(first["itemknn (tuned)"]["tuning"]["trials"])
    assert "Rows kept from earlier runs" in (tmp_path / "results" / "tiny.md").read_text()

    # everything kept (the last model too): the pages are still written, and say the run is complete
    bench(str(cfg), "--resume")
    again = json.loads(js.read_text())
    assert again["kept_rows"] == ["pop", "itemknn (tuned)"] and again["complete"] is True
    assert "Incomplete" not in (tmp_path / "results" / "tiny.md").read_text()

    # other evaluation settings: nothing is kept
    cfg.write_text(CONFIG.replace("ks = [5, 10]", "ks = [5, 20]"))
    r = bench(str(cfg), "--resume")
    assert "starting afresh" in r.stderr and "kept from the earlier run" not in r.stderr
    assert json.loads(js.read_text())["kept_rows"] == []
