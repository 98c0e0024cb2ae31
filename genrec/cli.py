"""genrec's one entry point: quickstart, datasets, train, evaluate, recommend, serve.

Heavy libraries are imported inside the commands, so ``genrec --help`` starts fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generative (LM-based) and classical recommenders on one evaluation harness.")
datasets_app = typer.Typer(no_args_is_help=True, help="List datasets and print their statistics.")
app.add_typer(datasets_app, name="datasets")

DatasetOpt = typer.Option("demo", "--dataset", "-d", help="Dataset name (see `genrec datasets list`).")
DataDirOpt = typer.Option(None, "--data-dir", help="Folder with the dataset's files (or a parent of <name>/).")
SplitOpt = typer.Option(None, "--split", "-s", help="user (GPT4Rec), loo (leave-one-out) or temporal; default per dataset.")
PreOpt = typer.Option(None, "--preprocess", help="gpt4rec, standard or none; default: gpt4rec for the user split, standard otherwise.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the split and the models.")
ParamOpt = typer.Option(None, "--param", "-p", help="Model parameter key=value (JSON value), or model.key=value for one model; repeatable.")


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(2)


def parse_params(params: list[str] | None, model: str) -> dict[str, Any]:
    """``--param`` pairs for ``model``; a malformed pair is a usage error."""
    from genrec.models.registry import parse_params as parse

    try:
        return parse(params, model)
    except ValueError as e:
        _fail(f"--param: {e}")


def _load_split(dataset: str, data_dir, split: str | None, preprocess: str | None, seed: int, download: bool = False,
                cold_items: float = 0.0):
    from genrec.data.registry import load_dataset, spec
    from genrec.data.splits import make_split

    s = spec(dataset)
    split = split or s.default_split
    pre = preprocess or s.default_preprocess.get(split, "standard")
    t = time.perf_counter()
    ds = load_dataset(dataset, data_dir, preprocess=pre, download=download)
    sp = make_split(ds, split, seed=seed, cold_items=cold_items)
    typer.echo(f"{dataset}{' (SYNTHETIC)' if ds.synthetic else ''}: {len(ds.sequences):,} users, "
               f"{len(ds.catalog):,} items, {ds.sequences.num_interactions():,} interactions after "
               f"'{pre}' preprocessing; split '{split}' (seed {seed}): {len(sp.train):,} training users, "
               f"{len(sp.valid):,} validation and {len(sp.test):,} test cases [{time.perf_counter() - t:.1f} s]", err=True)
    return sp


def _fit(name: str, sp, params: dict, seed: int):
    from genrec.eval.runcard import reset_peak_memory
    from genrec.models.registry import create, model_class
    import inspect

    if "seed" in inspect.signature(model_class(name).__init__).parameters and "seed" not in params:
        params = {**params, "seed": seed}
    model = create(name, **params)
    reset_peak_memory(f"{name}'s fit started")  # the run card's peak is then this model's, not an earlier one's
    t = time.perf_counter()
    model.fit(sp)
    return model, time.perf_counter() - t


@app.command()
def quickstart(dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
               models: str = typer.Option("gpt4rec,title-bm25,itemknn,pop", "--models", help="Comma-separated models to train."),
               seed: int = SeedOpt, users: int = typer.Option(2, help="How many users to show."),
               param: Optional[list[str]] = ParamOpt) -> None:
    """Load data, train models, print their evaluation table and recommendations for a few users."""
    from genrec.eval.evaluate import evaluate
    from genrec.eval.report import markdown_table

    sp = _load_split(dataset, data_dir, None, None, seed)
    reports, fitted = [], []
    for name in [m.strip() for m in models.split(",") if m.strip()]:
        typer.echo(f"training {name} ...", err=True)
        model, secs = _fit(name, sp, parse_params(param, name), seed)
        reports.append(evaluate(model, sp, fit_seconds=secs))
        fitted.append(model)
    typer.echo("\nTest-set evaluation (full ranking over every item):\n")
    typer.echo(markdown_table(reports))
    for case in sp.test[:users]:
        typer.echo(f"\nUser {case.user}: history (oldest first)")
        for i in case.history:
            typer.echo(f"   - {sp.catalog[i].title}")
        typer.echo(f"   next actually bought: {sp.catalog[case.target].title}")
        for model in fitted:
            recs = model.recommend([list(case.history)], k=5)
            _print_recs(model.name, recs, sp.catalog, 0, case.target)


def _print_recs(name: str, recs, catalog, n: int, target: str | None = None) -> None:
    typer.echo(f"   {name} recommends:")
    from genrec.core.why import as_why

    why = as_why(recs.why[n])
    if why.queries:
        typer.echo("     interests it inferred (generated queries):")
        for q in why.queries:
            score = "" if q.score is None else f" (score {q.score:.2f})"
            typer.echo(f"       \"{q.text}\"{score} -> {len(q.items)} items")
    if why.profile:
        typer.echo(f"     profile: {why.profile}")
    for rank, (i, s) in enumerate(zip(recs.items[n], recs.scores[n]), 1):
        mark = "  <- the actual next item" if i == target else ""
        title = catalog[i].title if i in catalog else i
        typer.echo(f"     {rank:2d}. {title}  [{i}, {s:.3f}]{mark}")
        reason = why.explanation_for(i)
        if reason is not None:
            typer.echo(f"         why: {reason.text}")
    for note in recs.notes[n]:
        typer.echo(f"     note: {note}")


@datasets_app.command("list")
def datasets_list() -> None:
    """Known datasets and whether their files are found here."""
    from genrec.data.registry import DATASETS, find_dataset_dir

    for name, s in DATASETS.items():
        if s.folder is None:
            where = "built in"
        else:
            try:
                where = str(find_dataset_dir(name))
            except Exception:
                where = "not found (see --data-dir, or --download where a URL is known)"
        typer.echo(f"{name:16s} {s.description}\n{'':16s} {where}")


@datasets_app.command("stats")
def datasets_stats(name: str, data_dir: Optional[Path] = DataDirOpt,
                   preprocess: str = typer.Option("gpt4rec", "--preprocess"),
                   download: bool = typer.Option(False, "--download")) -> None:
    """Users, items, interactions and sequence lengths before and after preprocessing."""
    from dataclasses import replace

    from genrec.data.dataset import preset
    from genrec.data.registry import load_dataset

    raw = load_dataset(name, data_dir, download=download)
    p = preset(preprocess)
    done = raw.preprocess(p)
    rows = [("raw", raw.stats()), (f"after '{preprocess}'", done.stats())]
    if p.max_len:  # papers often count before truncating (GPT4Rec's Table 2 does)
        untrunc = raw.preprocess(replace(p, max_len=None, name=f"{p.name} without truncation"))
        rows.append((f"'{preprocess}' without truncate(last {p.max_len})", untrunc.stats()))
    keys = ["users", "items", "interactions", "avg_length", "median_length", "min_length", "max_length"]
    typer.echo("| " + " | ".join([name] + keys) + " |")
    typer.echo("|" + "---|" * (len(keys) + 1))
    for label, st in rows:
        typer.echo("| " + " | ".join([label] + [f"{st[k]:,.3f}" if isinstance(st[k], float) else f"{st[k]:,}" for k in keys]) + " |")
    for line in done.info.get("preprocess_log", []):
        typer.echo(f"  step: {line}")
    if p.max_len:
        typer.echo(f"  note: the last row is every step but the truncation to {p.max_len} items; GPT4Rec's "
                   "Table 2 counts users, items and interactions there and the average length after truncation")


@app.command()
def train(model: str = typer.Option(..., "--model", "-m"), dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
          split: Optional[str] = SplitOpt, preprocess: Optional[str] = PreOpt, seed: int = SeedOpt,
          param: Optional[list[str]] = ParamOpt,
          out: Path = typer.Option(..., "--out", "-o", help="Folder to save the trained model in."),
          evaluate_after: bool = typer.Option(True, "--evaluate/--no-evaluate")) -> None:
    """Train a model on a split and save it (a folder `genrec serve` and `recommend` can load)."""
    sp = _load_split(dataset, data_dir, split, preprocess, seed)
    m, secs = _fit(model, sp, parse_params(param, model), seed)
    m.save(out)
    typer.echo(f"trained {model} in {secs:.1f} s; saved to {out}", err=True)
    if evaluate_after:
        from genrec.eval.evaluate import evaluate

        rep = evaluate(m, sp, fit_seconds=secs)
        rep.save(out / "evaluation")
        typer.echo(rep.markdown())


@app.command("evaluate")
def evaluate_cmd(model: list[str] = typer.Option(None, "--model", "-m", help="Model name; repeat for one table of several."),
                 model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="Evaluate a saved model instead."),
                 dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt, split: Optional[str] = SplitOpt,
                 preprocess: Optional[str] = PreOpt, seed: int = SeedOpt, param: Optional[list[str]] = ParamOpt,
                 ks: str = typer.Option("5,10,20,40", "--ks"), which: str = typer.Option("test", "--on", help="test or valid"),
                 max_cases: Optional[int] = typer.Option(None, "--max-cases", help="Evaluate a seeded sample of cases."),
                 out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for metrics.json, cases and table.md."),
                 cold_items: float = typer.Option(0.0, "--cold-items", help="Hold out this fraction of items from "
                                                  "training and evaluate only cases whose target is one of them."),
                 download: bool = typer.Option(False, "--download")) -> None:
    """Fit (or load) models and evaluate them on one split, printing one table."""
    from genrec.eval.evaluate import evaluate
    from genrec.eval.report import markdown_table

    if not model and not model_dir:
        _fail("give --model NAME (repeatable) or --model-dir PATH")
    sp = _load_split(dataset, data_dir, split, preprocess, seed, download, cold_items)
    eval_sp = sp.cold_view() if cold_items else sp
    k_list = [int(k) for k in ks.split(",")]
    reports = []
    if model_dir:
        from genrec.models.registry import load_model

        reports.append(evaluate(load_model(model_dir), eval_sp, k_list, which=which, max_cases=max_cases, seed=seed))
    for name in model or []:
        m, secs = _fit(name, sp, parse_params(param, name), seed)
        reports.append(evaluate(m, eval_sp, k_list, which=which, max_cases=max_cases, seed=seed, fit_seconds=secs))
    table = markdown_table(reports)
    typer.echo(table)
    if out:
        for r in reports:
            r.save(out / r.model)
        (out / "table.md").write_text(table + "\n")


@app.command()
def recommend(model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="A folder written by `genrec train`."),
              model: Optional[str] = typer.Option(None, "--model", "-m", help="Fit this model on the split instead."),
              dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt, split: Optional[str] = SplitOpt,
              preprocess: Optional[str] = PreOpt, seed: int = SeedOpt, param: Optional[list[str]] = ParamOpt,
              history: Optional[str] = typer.Option(None, "--history", help="Comma-separated item ids, oldest first; "
                                                    "with --model, default: the first test user's history."),
              k: int = typer.Option(10, "-k")) -> None:
    """Recommend for a history with a saved model (--model-dir) or one fitted now (--model): items and why."""
    if bool(model) == bool(model_dir):
        _fail("give exactly one of --model NAME or --model-dir PATH")
    h = [x.strip() for x in (history or "").split(",") if x.strip()]
    if model_dir:
        from genrec.models.registry import load_model

        m = load_model(model_dir)
    else:
        sp = _load_split(dataset, data_dir, split, preprocess, seed)
        m, secs = _fit(model, sp, parse_params(param, model), seed)
        typer.echo(f"trained {model} in {secs:.1f} s", err=True)
        if history is None and sp.test:
            h = list(sp.test[0].history)
            typer.echo(f"history of test user {sp.test[0].user} (split '{sp.protocol}'):")
    _print_history_and_recs(m, h, k)


def _print_history_and_recs(m, h: list[str], k: int) -> None:
    recs = m.recommend([h], k=k)
    for i in h:
        if i in m.catalog:
            typer.echo(f"   had: {m.catalog[i].title}")
    _print_recs(m.name, recs, m.catalog, 0)


@app.command()
def serve(model_dir: Path = typer.Option(..., "--model-dir"),
          db: str = typer.Option(None, "--db", help="SQLAlchemy URL: SQLite file or PostgreSQL (default: "
                                 "$GENREC_DB_URL, else sqlite:///genrec.db)."),
          host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8000, "--port"),
          protect_reads: bool = typer.Option(False, "--protect-reads", help="Require the token for reads too."),
          open_writes: bool = typer.Option(False, "--open-writes",
                                           help="Without $GENREC_TOKEN, let anyone who can reach the service write "
                                                "(local development only; also GENREC_OPEN_WRITES=1).")) -> None:
    """Serve a saved model over HTTP with a web page at /. Write endpoints need the bearer token in
    $GENREC_TOKEN (kept out of the command line, where `ps` would show it); without it they answer
    403 unless --open-writes is given."""
    from genrec.serve.app import run

    run(model_dir=model_dir, db_url=db, host=host, port=port, protect_reads=protect_reads or None,
        open_writes=open_writes or None)


def main() -> None:
    from genrec.errors import GenrecError

    try:
        app()
    except (GenrecError, FileNotFoundError) as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
