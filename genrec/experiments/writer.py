"""Results pages of ``genrec bench``: ``<name>.json`` (everything) and ``<name>.md`` (the table, the
machine facts measured during the run, anchors, parameters, tuning). Hand-written notes below
:data:`MARKER` survive a rerun (:func:`genrec.eval.report.write_keeping_notes`)."""

from __future__ import annotations

import json
from pathlib import Path

from genrec.eval.report import write_keeping_notes

MARKER = "<!-- hand-written notes below this line are kept when `genrec bench` rewrites the page -->"


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _short(metric: str) -> str:
    return (metric.replace("recall@", "R@").replace("ndcg@", "N@").replace("precision@", "P@")
            .replace("popular_share@", "pop share@"))


def _extra_sections(cfg: dict, rows: list[dict]) -> list[str]:
    """The 20-candidate protocol's table and the per-group tables, when the config asked for them."""
    ev, out = cfg["evaluate"], []
    n = ev.get("candidates")
    if n and any(r.get("candidates") for r in rows):
        cks = sorted(k for k in (1, 5, 10, 20) if k <= n)
        cols = [f"{m}@{k}" for m in ("recall", "ndcg") for k in cks]
        out += ["", f"## LLMRank protocol: target + {n - 1} random non-history items per test case", "",
                "Seeded per user (genrec.eval.candidates); not comparable with the full-ranking table above.", "",
                "| model | " + " | ".join(_short(c) for c in cols) + " | cases |", "|---|" + "---|" * (len(cols) + 1)]
        for r in rows:
            c = r.get("candidates")
            if c:
                out.append(f"| {r['model']} | " + " | ".join(_fmt(c["metrics"].get(x)) for x in cols)
                           + f" | {c['cases']} |")
    if ev.get("by") and any(r.get("groups") for r in rows):
        from genrec.eval.groups import group_k

        k = group_k(ev["ks"])
        out += ["", f"## By user group (K={k})", "",
                f"N@{k} per group; pop share@{k}: share of the top-{k} slots from the 20% most popular training "
                "items. Groups are ordered by size; every per-group number is in the JSON (`groups`)."]
        for attr in ev["by"]:
            groups: dict = next((r["groups"][attr] for r in rows if r.get("groups")), {})
            names = list(groups)
            for metric in (f"ndcg@{k}", f"popular_share@{k}"):
                out += ["", f"{attr}, {_short(metric)}:", "",
                        "| model | " + " | ".join(f"{g} ({groups[g]['users']})" for g in names) + " |",
                        "|---|" + "---|" * len(names)]
                for r in rows:
                    gs = (r.get("groups") or {}).get(attr, {})
                    out.append(f"| {r['model']} | " + " | ".join(_fmt(gs.get(g, {}).get(metric)) for g in names) + " |")
    return out


def machine_line(m: dict) -> str:
    """The machine as measured: CPU, cores, load average at the start and the end of the run."""
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    flags = f" ({' '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    return (f"{m.get('cpu') or m.get('processor')}{flags}, {m.get('cpus')} CPUs{gpu}, {m.get('platform')}; "
            f"load average (1, 5, 15 min) {m.get('load_average_start')} at the start, "
            f"{m.get('load_average_end')} at the end")


def _users_per_s(row: dict) -> str:
    """Test cases ranked per second of ``eval s`` (inference speed)."""
    cases, sec = row.get("test_cases"), row.get("eval_seconds")
    if not cases or not sec:
        return "–"
    rate = cases / sec
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def _kept_lines(res: dict) -> list[str]:
    """With ``--resume``: which rows an earlier run measured, and when (their own load average)."""
    kept = set(res.get("kept_rows") or [])
    if not kept:
        return []
    parts = [f"{r['model']} (run of {r.get('run_started_utc', '?')}, load after {r.get('load_average_after', '?')})"
             for r in res["results"] if r["model"] in kept]
    return ["Rows kept from earlier runs of this config (`--resume`; same data, evaluation and model entry): "
            + "; ".join(parts) + ".", ""]


def markdown(res: dict) -> str:
    """The Markdown page of a results dict written by :func:`genrec.experiments.runner.run`."""
    cfg, data, rows = res["config"], res["data"], res["results"]
    ks = cfg["evaluate"]["ks"]
    cols = [f"{m}@{k}" for m in cfg["evaluate"].get("metrics", ["recall", "ndcg"]) for k in ks]
    v = res["versions"]
    synthetic = " (SYNTHETIC)" if data.get("synthetic") else ""
    done = "" if res.get("complete", True) else (
        f"**Incomplete: {len(rows)} of {len(cfg['models'])} models so far (the run is going on or stopped).**  ")
    lines = [f"# {res['title']}", "",
             f"Command: `{res['command']}`  ",
             *([done] if done else []),
             f"Date (UTC): {res['started_utc']} to {res['finished_utc']}; wall time {res['wall_seconds']:.0f} s; "
             f"seed {res['seed']}; torch threads {res['threads'] or 'default'}.  ",
             f"Machine (measured during the run): {machine_line(res['machine'])}.  ",
             "Versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "numpy", "torch", "transformers", "implicit")
                                      if k in v) + ".  ",
             f"Data: {data['dataset']}{synthetic}, `{data['split']}` split, `{data['preprocess']}` preprocessing; "
             f"{data['train_users']:,} training users, {data['items']:,} items, {data['valid_cases']:,} validation "
             f"and {data['test_cases']:,} test cases"
             + (f" ({cfg['evaluate']['max_cases']} test cases evaluated)" if cfg["evaluate"]["max_cases"] else "")
             + "; full ranking over every item, history excluded.", "",
             *_kept_lines(res),
             "| model | " + " | ".join(_short(c) for c in cols) + " | fit s | eval s | users/s | peak MB |",
             "|---|" + "---|" * (len(cols) + 4)]
    for r in rows:
        lines.append(f"| {r['model']} | " + " | ".join(_fmt(r["metrics"].get(c)) for c in cols)
                     + f" | {r['fit_seconds']:.1f} | {r['eval_seconds']:.1f} | {_users_per_s(r)} "
                     f"| {r['peak_memory_mb']:.0f} |")
    lines += _extra_sections(cfg, rows)
    if res["anchors"]:
        lines += ["", "Published anchors (other preprocessing and code; read them, do not chase them):", ""]
        for a in res["anchors"]:
            notes = f" ({'; '.join(a['notes'])})" if a.get("notes") else ""
            lines.append(f"- {a['label']}: " + ", ".join(f"{_short(k)} {x}" for k, x in a["metrics"].items())
                         + f"{notes}. Source: {a['source']}" + (f", {a['where']}" if a.get("where") else "") + ".")
    lines += ["", "## Parameters", ""]
    for r in rows:
        mark = " (tuned on validation cases)" if r.get("tuning") else ""
        lines.append(f"- **{r['model']}** (`{r['name']}`){mark}: `{json.dumps(r['params'], default=str)}`")
    trained = [r for r in rows if r.get("fit_info")]
    if trained:
        from genrec.eval.report import fit_line

        lines += ["", "## Training (what the models report about their fit)", ""]
        lines += [f"- {fit_line(r['model'], r['fit_info'], r['fit_seconds'])}" for r in trained]
    tuned = [r for r in rows if r.get("tuning")]
    if tuned:
        t = cfg["tune"]
        cases = t["max_cases"] or "all"
        lines += ["", "## Tuning", "",
                  f"`{t['method']}` search on {cases} validation cases, by {t['metric']}"
                  + (f" then {t['tiebreak']}" if t["tiebreak"] else "")
                  + "; the test cases were used once, for the table above. Every trial is in the JSON.", ""]
        for r in tuned:
            tu = r["tuning"]
            start = tu["trials"][0]["params"]
            changed = {k: x for k, x in tu["best"].items() if start.get(k) != x}
            lines.append(f"- {r['model']}: {len(tu['trials'])} trials; best "
                         + " / ".join(f"{m} {x:.4f}" for m, x in tu["best_valid"].items())
                         + f" with {json.dumps(changed, default=str) if changed else 'the starting values'}")
    lines += ["", "fit s: wall seconds of `fit` (after tuning); eval s: seconds ranking the test cases "
              "(the whole `evaluate` call, with its diversity metrics, is `eval_total_seconds` in the JSON); users/s: "
              "test cases per eval second; "
              "peak MB: peak resident memory from the start of the model's fit (`peak_memory_scope` in the JSON), "
              "which includes the data already loaded."]
    if res.get("notes"):
        lines += ["", "## Notes (from the config)", ""] + [f"- {n}" for n in res["notes"]]
    return "\n".join(lines) + "\n\n"


def write_results(out: str | Path, res: dict) -> tuple[Path, Path]:
    """Write ``<out>/<name>.json`` and ``<out>/<name>.md`` (notes below :data:`MARKER` kept)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js = out / f"{res['name']}.json"
    js.write_text(json.dumps(res, indent=1, default=str) + "\n")
    md = write_keeping_notes(out / f"{res['name']}.md", markdown(res), MARKER)
    return md, js
