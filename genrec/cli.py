"""genrec's one entry point: quickstart, datasets, train, evaluate, recommend, serve.

Heavy libraries are imported inside the commands, so ``genrec --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import NoReturn, Optional

import typer

from genrec.cli_info import datasets_app, models_app
from genrec.cli_support import (WHICH, DataDirOpt, MinRatingOpt, UsageError, check_choice, check_data_args,
                                check_positive, default_preset, fit_seed, parse_ks, presets_help, resolve_history,
                                set_threads, thread_params)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generative (LM-based) and classical recommenders on one evaluation harness.")
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")

DatasetOpt = typer.Option("demo", "--dataset", "-d", help="Dataset name (see `genrec datasets list`).")
SplitOpt = typer.Option(None, "--split", "-s", help="user (GPT4Rec), loo (leave-one-out) or temporal; default per dataset.")
PreOpt = typer.Option(None, "--preprocess", help="Preprocessing preset; default: gpt4rec for the user split, "
                      "standard otherwise. " + presets_help() + ".")
SeedOpt = typer.Option(0, "--seed", help="Seed of the split and the models.")
ParamOpt = typer.Option(None, "--param", "-p", help="Model parameter key=value (JSON value), or model.key=value for "
                        "one model; repeatable. `genrec models show NAME` lists them.")
EngineOpt = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data actors, each loading the "
                         "saved model once; see --ray-address, --workers).")
RayAddressOpt = typer.Option(None, "--ray-address", help="With --engine ray: a Ray cluster (auto, ray://host:10001, "
                             "host:6379); default: start a local instance.")
WorkersOpt = typer.Option(2, "--workers", help="With --engine ray: actors (each 1 CPU, --threads threads, default 1).")
ThreadsOpt = typer.Option(None, "--threads", help="Threads for torch, BLAS/OpenMP and numba, and for models "
                          "that take threads/num_threads (--param threads=N does the same).")


# The command line as given (main() records it), for commands that re-launch themselves.
_ARGV: list[str] = []


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _engine(engine: str, address: str | None, workers: int, threads: int | None):
    """None for the local engine, else a RayEngine (ray is imported only then)."""
    check_choice("--engine", engine, ("local", "ray"))
    check_positive("--workers", workers)
    if engine == "local":
        if address:
            raise UsageError("--ray-address needs --engine ray")
        return None
    try:
        from genrec.eval.ray_engine import RayEngine
    except ImportError as e:
        raise UsageError(f"--engine ray needs ray[data]: pip install 'genrec[ray]' ({e})") from None
    return RayEngine(address=address, workers=workers, threads=threads or 1)


def _fail(msg: str) -> NoReturn:
    typer.secho(f"error: {msg}", fg="red", err=True)
    raise typer.Exit(2)


def _models_checked(names: list[str], params: list[str] | None, seed: int, threads: int | None) -> list:
    """Construct the named models from ``--param`` pairs before any data is loaded: unknown names,
    keys, types and ranges are usage errors. ``threads=N`` without a model prefix is --threads."""
    from genrec.models.registry import create, resolve_params

    check_positive("--threads", threads)
    given = resolve_params(params, names, global_keys=("threads",))
    if "threads" in given[""]:
        t = given[""]["threads"]
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise UsageError(f"--param threads={t!r}: threads must be a positive integer")
        threads = t
    set_threads(threads)
    thread_params(names, threads, given)
    return [create(n, **fit_seed(n, given[n], seed)) for n in names]


def _load_split(dataset: str, data_dir, split: str | None, preprocess: str | None, seed: int, download: bool = False,
                cold_items: float = 0.0, min_rating: float | None = None, quiet: bool = False):
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split

    check_data_args(dataset, split, preprocess, min_rating)
    split, default_pre = default_preset(dataset, split)
    pre = preprocess or default_pre
    t = time.perf_counter()
    kw = {} if min_rating is None else {"min_rating": min_rating}
    ds = load_dataset(dataset, data_dir, preprocess=pre, download=download, **kw)
    sp = make_split(ds, split, seed=seed, cold_items=cold_items)
    if min_rating is not None:
        sp.info["min_rating"] = min_rating
    if not quiet:
        typer.echo(f"{dataset}{' (SYNTHETIC)' if ds.synthetic else ''}: {len(ds.sequences):,} users, "
                   f"{len(ds.catalog):,} items, {ds.sequences.num_interactions():,} interactions after "
                   f"'{pre}' preprocessing; split '{split}' (seed {seed}): {len(sp.train):,} training users, "
                   f"{len(sp.valid):,} validation and {len(sp.test):,} test cases [{time.perf_counter() - t:.1f} s]",
                   err=True)
    return sp


def _fit(model, sp):
    from genrec.eval.runcard import reset_peak_memory

    reset_peak_memory(f"{model.name}'s fit started")  # the run card's peak is then this model's, not an earlier one's
    t = time.perf_counter()
    model.fit(sp)
    return model, time.perf_counter() - t


def _print_reports(reports, fit_secs: list) -> str:
    """The table, then what a reader must know (leakage, unreachable targets), then one line per
    model on what happened in training. Returns the text written to table.md."""
    from genrec.eval.report import fit_line, markdown_table

    table = markdown_table(reports)
    lines = [n for r in reports for n in r.notes()]
    lines += [fit_line(r.model, r.run_card.get("fit_info"), s) for r, s in zip(reports, fit_secs)]
    text = table + "".join("\n" + ln for ln in lines)
    typer.echo(text)
    return text


@app.command()
def quickstart(dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
               models: str = typer.Option("gpt4rec,title-bm25,itemknn,pop", "--models", help="Comma-separated models to train."),
               seed: int = SeedOpt, users: int = typer.Option(2, help="How many users to show."),
               param: Optional[list[str]] = ParamOpt, threads: Optional[int] = ThreadsOpt) -> None:
    """Load data, train models, print their evaluation table and recommendations for a few users."""
    from genrec.eval.evaluate import evaluate

    names = [m.strip() for m in models.split(",") if m.strip()]
    check_positive("--users", users, 0)
    if not names:
        _fail(f"--models {models!r}: no model named")
    built = _models_checked(names, param, seed, threads)
    sp = _load_split(dataset, data_dir, None, None, seed)
    reports, fitted, secs_all = [], [], []
    for model in built:
        typer.echo(f"training {model.name} ...", err=True)
        model, secs = _fit(model, sp)
        reports.append(evaluate(model, sp, fit_seconds=secs))
        fitted.append(model)
        secs_all.append(secs)
    typer.echo("\nTest-set evaluation (full ranking over every item):\n")
    _print_reports(reports, secs_all)
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


@app.command()
def train(model: str = typer.Option(..., "--model", "-m"), dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
          split: Optional[str] = SplitOpt, preprocess: Optional[str] = PreOpt, seed: int = SeedOpt,
          param: Optional[list[str]] = ParamOpt,
          out: Path = typer.Option(..., "--out", "-o", help="Folder to save the trained model in."),
          evaluate_after: bool = typer.Option(True, "--evaluate/--no-evaluate"),
          min_rating: Optional[float] = MinRatingOpt, threads: Optional[int] = ThreadsOpt,
          nproc: int = typer.Option(1, "--nproc", help="Train a torch model data-parallel (PyTorch DDP) in this many "
                                    "local processes: re-launches this command under torch.distributed.run (gloo on "
                                    "CPU, nccl on GPU). Under torchrun or `accelerate launch` leave it at 1.")) -> None:
    """Train a model on a split and save it (a folder `genrec serve` and `recommend` can load).
    The folder records what it was trained on, so `evaluate --model-dir` refuses its training data.
    Launched distributed (--nproc, torchrun), every process trains on its share of each epoch's
    batches and only rank 0 saves, evaluates and prints."""
    from genrec.training import distributed

    check_data_args(dataset, split, preprocess, min_rating)
    check_positive("--nproc", nproc)
    (built,) = _models_checked([model], param, seed, threads)
    if (nproc > 1 or distributed.is_distributed()) and not built.capabilities.trains_with_torch:
        raise UsageError(f"--nproc/distributed launch: {model} does not train a torch network")
    if nproc > 1:
        if distributed.is_distributed():
            raise UsageError("--nproc: already launched distributed (WORLD_SIZE is set); leave --nproc at 1")
        rc = distributed.relaunch(nproc, "genrec.cli", _without_nproc(_ARGV))
        if rc:
            _fail(f"distributed training in {nproc} processes failed (exit code {rc}); see the messages above")
        return
    main_rank = distributed.is_main()
    if not main_rank:
        sys.stdout = open(os.devnull, "w")  # only rank 0 prints (errors still reach stderr)
    sp = _load_split(dataset, data_dir, split, preprocess, seed, min_rating=min_rating, quiet=not main_rank)
    m, secs = _fit(built, sp)
    if not main_rank:
        distributed.exit_worker()
    m.save(out)
    typer.echo(f"trained {model} in {secs:.1f} s; saved to {out}", err=True)
    if evaluate_after:
        from genrec.eval.evaluate import evaluate

        rep = evaluate(m, sp, fit_seconds=secs)
        rep.save(out / "evaluation")
        _print_reports([rep], [secs])
    else:
        from genrec.eval.report import fit_line

        typer.echo(fit_line(m.name, m.fit_info_, secs))


@app.command("evaluate")
def evaluate_cmd(model: list[str] = typer.Option(None, "--model", "-m", help="Model name; repeat for one table of several."),
                 model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="Evaluate a saved model instead; it "
                                                          "must not have been trained on the evaluated targets."),
                 dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt, split: Optional[str] = SplitOpt,
                 preprocess: Optional[str] = PreOpt, seed: int = SeedOpt, param: Optional[list[str]] = ParamOpt,
                 ks: str = typer.Option("5,10,20,40", "--ks", help="Comma-separated cut-offs K."),
                 which: str = typer.Option("test", "--on", help="test or valid"),
                 max_cases: Optional[int] = typer.Option(None, "--max-cases", help="Evaluate a seeded sample of cases."),
                 out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for metrics.json, cases "
                                                    "(rank and why per case) and table.md."),
                 cold_items: float = typer.Option(0.0, "--cold-items",
                                                  help="Hold out this fraction of items from training and evaluate "
                                                  "only cases whose target is one of them."),
                 allow_leak: bool = typer.Option(False, "--allow-leak", help="Evaluate a --model-dir model even on "
                                                 "targets it was trained on; the report then says LEAKED."),
                 min_rating: Optional[float] = MinRatingOpt, threads: Optional[int] = ThreadsOpt,
                 candidates: Optional[int] = typer.Option(None, "--candidates", help="Also rank each target among "
                                                          "N-1 random non-history items (LLMRank's protocol: 20); "
                                                          "seeded per user, not comparable with full ranking."),
                 by: Optional[list[str]] = typer.Option(None, "--by", help="Also print the metrics at K=10 (or the "
                                                        "largest K below) per group of this user attribute (e.g. "
                                                        "gender, age, occupation); repeatable."),
                 download: bool = typer.Option(False, "--download"), engine: str = EngineOpt,
                 ray_address: Optional[str] = RayAddressOpt, workers: int = WorkersOpt) -> None:
    """Fit (or load) models and evaluate them on one split, printing one table. With --engine ray
    the recommendations are computed by Ray actors (the metrics are the same to the bit)."""
    from genrec.eval.evaluate import evaluate
    from genrec.eval.provenance import LeakedEvaluationError
    from genrec.eval.report import Report

    if not model and not model_dir:
        _fail("give --model NAME (repeatable) or --model-dir PATH")
    k_list = parse_ks(ks)
    check_choice("--on", which, WHICH)
    check_positive("--max-cases", max_cases)
    if candidates is not None and candidates < 2:
        raise UsageError(f"--candidates {candidates}: must be at least 2")
    if not 0 <= cold_items < 1:
        raise UsageError(f"--cold-items {cold_items:g}: must be a fraction in [0, 1)")
    check_data_args(dataset, split, preprocess, min_rating)
    eng = _engine(engine, ray_address, workers, threads)
    built = _models_checked(list(model or []), param, seed, threads)
    loaded = None
    if model_dir:
        from genrec.models.registry import load_model

        loaded = load_model(model_dir)
    sp = _load_split(dataset, data_dir, split, preprocess, seed, download, cold_items, min_rating)
    eval_sp = sp.cold_view() if cold_items else sp
    if by:
        from genrec.eval.groups import user_groups

        for attr in by:
            try:
                user_groups(sp, attr)
            except ValueError as e:
                _fail(f"--by {attr}: {e}")
    reports: list[Report] = []
    secs_all: list[float | None] = []
    fitted: list = []
    try:
        if loaded is not None:
            if eng is not None:
                eng.model_dir = model_dir  # the actors load the folder itself
            reports.append(evaluate(loaded, eval_sp, k_list, allow_leak=allow_leak, which=which,
                                    max_cases=max_cases, seed=seed, engine=eng))
            secs_all.append(None)
            fitted.append(loaded)
        for m in built:
            m, secs = _fit(m, sp)
            if eng is not None:
                eng.model_dir = None  # saved to a temporary folder for the actors
            reports.append(evaluate(m, eval_sp, k_list, fit_seconds=secs, allow_leak=allow_leak, which=which,
                                    max_cases=max_cases, seed=seed, engine=eng))
            secs_all.append(secs)
            fitted.append(m)
    except LeakedEvaluationError as e:
        _fail(f"{'--model-dir ' + str(model_dir) + ': ' if loaded is not None else ''}{e}")
    text = _print_reports(reports, secs_all)
    if candidates:
        from genrec.eval.candidates import evaluate_candidates
        from genrec.eval.report import markdown_table

        reps = [evaluate_candidates(m, eval_sp, candidates, which=which, seed=seed, max_cases=max_cases, progress=False)
                for m in fitted]
        extra = (f"Target + {candidates - 1} random non-history items per case (seed {seed}; not comparable with "
                 "the full-ranking table):\n\n" + markdown_table(reps, extra=("eval_seconds",)))
        typer.echo(extra)
        text += "\n\n" + extra
    if by:
        from genrec.eval.groups import group_tables

        extra = group_tables(reports, eval_sp, by, k_list)
        typer.echo(extra)
        text += "\n\n" + extra
    if out:
        for r in reports:
            r.save(out / r.model)
        (out / "table.md").write_text(text + "\n")


@app.command()
def recommend(model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="A folder written by `genrec train`."),
              model: Optional[str] = typer.Option(None, "--model", "-m", help="Fit this model on the split instead."),
              dataset: str = DatasetOpt, data_dir: Optional[Path] = DataDirOpt, split: Optional[str] = SplitOpt,
              preprocess: Optional[str] = PreOpt, seed: int = SeedOpt, param: Optional[list[str]] = ParamOpt,
              history: Optional[str] = typer.Option(None, "--history", help="Comma-separated item ids or titles "
                                                    "(exact, any case), oldest first; with --model, default: the "
                                                    "first test user's history."),
              k: int = typer.Option(10, "-k", help="How many items to recommend."),
              min_rating: Optional[float] = MinRatingOpt, threads: Optional[int] = ThreadsOpt,
              users_file: Optional[Path] = typer.Option(None, "--users-file", help="Batch mode (with --model-dir): "
                                                        "one user per line, USER<TAB>ITEM,ITEM,... or JSON "
                                                        '{"user": ..., "history": [...]}; needs --out.'),
              out: Optional[Path] = typer.Option(None, "--out", "-o", help="Batch mode: recs.parquet or recs.jsonl."),
              engine: str = EngineOpt, ray_address: Optional[str] = RayAddressOpt,
              workers: int = WorkersOpt) -> None:
    """Recommend for a history with a saved model (--model-dir) or one fitted now (--model): items and why.
    Batch mode: --users-file and --out, optionally on Ray (--engine ray)."""
    if bool(model) == bool(model_dir):
        _fail("give exactly one of --model NAME or --model-dir PATH")
    check_positive("-k", k)
    if users_file is not None or out is not None:
        _recommend_batch(model_dir, users_file, out, k, engine, ray_address, workers, threads, history)
        return
    if engine != "local":
        raise UsageError("--engine ray is for batch mode (--users-file and --out)")
    if model_dir and not (history or "").strip():
        _fail("--history: recommend needs a history: item ids or titles, comma-separated, oldest first")
    if model_dir:
        from genrec.models.registry import load_model

        m = load_model(model_dir)
    else:
        assert model is not None  # exactly one of --model and --model-dir, checked above
        check_data_args(dataset, split, preprocess, min_rating)
        (built,) = _models_checked([model], param, seed, threads)
        sp = _load_split(dataset, data_dir, split, preprocess, seed, min_rating=min_rating)
        m, secs = _fit(built, sp)
        typer.echo(f"trained {model} in {secs:.1f} s", err=True)
        if history is None and sp.test:
            history = ",".join(sp.test[0].history)
            typer.echo(f"history of test user {sp.test[0].user} (split '{sp.protocol}'):")
    if history is None or not history.strip():
        _fail("--history: recommend needs a history: item ids or titles, comma-separated, oldest first")
    h, said = resolve_history(history, m.catalog)
    for line in said:
        typer.echo(f"   {line}")
    _print_history_and_recs(m, h, k)


def _recommend_batch(model_dir: Optional[Path], users_file: Optional[Path], out: Optional[Path], k: int, engine: str,
                     ray_address: Optional[str], workers: int, threads: Optional[int], history: Optional[str]) -> None:
    from genrec.eval.batch_recommend import OUT_SUFFIXES, read_users_file, recommend_users, write_rows

    if model_dir is None or users_file is None or out is None:
        raise UsageError("batch mode needs --model-dir, --users-file and --out together")
    if history is not None:
        raise UsageError("--history and --users-file exclude each other")
    if out.suffix not in OUT_SUFFIXES:
        raise UsageError(f"--out {out}: must end in {' or '.join(OUT_SUFFIXES)}")
    check_positive("--threads", threads)
    set_threads(threads)
    eng = _engine(engine, ray_address, workers, threads)
    users = read_users_file(users_file)
    from genrec.models.registry import load_model

    m = load_model(model_dir)
    if eng is not None:
        eng.model_dir = model_dir
    t = time.perf_counter()
    rows = recommend_users(m, users, k, engine=eng)
    write_rows(rows, out)
    typer.echo(f"{len(rows):,} users, top {k} each, written to {out} [{time.perf_counter() - t:.1f} s, engine "
               f"{'local' if eng is None else eng.describe()}]", err=True)


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
                                                "(local development only; also GENREC_OPEN_WRITES=1)."),
          chat_backend: str = typer.Option(None, "--chat-backend", help="LLM that turns chat messages into search "
                                           "queries (and ranks, with --chat-llm-rank): 'smollm2-135m', 'hf:<id or folder>', 'openai:<base_url>#<model>' "
                                           "(prompts leave the process) or 'scratch'; default: none (the message "
                                           "is the query)."),
          chat_embedder: str = typer.Option(None, "--chat-embedder", help="Sentence embedder for chat search "
                                            "besides BM25: 'all-minilm-l6-v2' (packaged) or a sentence-transformers "
                                            "id/folder; default: BM25 only."),
          chat_send_user_id: bool = typer.Option(False, "--chat-send-user-id",
                                                 help="Put the user id in chat LLM prompts (default: never)."),
          chat_send_profile: bool = typer.Option(False, "--chat-send-profile", help="Put the user's own item titles "
                                                 "(their history) in chat LLM prompts (default: never)."),
          chat_llm_cache: str = typer.Option("off", "--chat-llm-cache", help="Record-replay cache of chat LLM calls "
                                             "(it stores prompts, so user messages): off, record or replay; its "
                                             "file is logged at start and shown by /health."),
          chat_llm_rank: int = typer.Option(0, "--chat-llm-rank", help="Let the chat LLM re-order the top N "
                                            "candidates (0 or 2-26; Chat-Rec): one forward pass scoring each candidate's "
                                            "letter (verbalizer); the rest keep the fused order. Default 0: the "
                                            "LLM only writes the search query.")) -> None:
    """Serve a saved model over HTTP with a web page at /. Write endpoints need the bearer token in
    $GENREC_TOKEN (kept out of the command line, where `ps` would show it); without it they answer
    403 unless --open-writes is given. POST /chat is the conversational recommender (--chat-*)."""
    from genrec.serve.chatting import ChatConfig, check_llm_rank
    from genrec.serve.server import run

    try:
        check_llm_rank(chat_llm_rank, needs_backend=chat_backend is None)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--chat-llm-rank") from None
    chat = ChatConfig(backend=chat_backend, embedder=None if (chat_embedder or "none").lower() == "none"
                      else chat_embedder, send_user_id=chat_send_user_id, send_profile=chat_send_profile,
                      llm_cache=chat_llm_cache, llm_rank=chat_llm_rank)
    try:
        chat.check()
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--chat-backend / --chat-llm-cache") from None
    run(model_dir=model_dir, db_url=db, host=host, port=port, protect_reads=protect_reads or None,
        open_writes=open_writes or None, chat=chat)


from genrec.experiments.cli import bench  # noqa: E402  (experiments: `genrec bench CONFIG`)
app.command()(bench)


def _click_exceptions() -> ModuleType:
    import importlib

    try:  # typer >= 0.26 vendors click
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def main(argv: list[str] | None = None) -> None:
    """The ``genrec`` command. Usage errors, bad parameters and genrec's own errors print one line
    (``error: ...``) and exit with code 2; never a traceback."""
    from genrec.errors import GenrecError

    click = _click_exceptions()
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        rc = app(args=argv, prog_name="genrec", standalone_mode=False)
    except getattr(click, "NoArgsIsHelpError", ()) as e:
        typer.echo(e.format_message(), err=True)
        sys.exit(2)
    except click.UsageError as e:
        where = f"{e.ctx.command_path}: " if e.ctx is not None else ""
        cause = getattr(e.__cause__, "errors", None)  # typer's pydantic coercion knows the bad value
        got = f" (got {cause()[0]['input']!r})" if callable(cause) and cause() and "input" in cause()[0] else ""
        typer.secho(f"error: {where}{' '.join(e.format_message().split())}{got}", fg="red", err=True)
        sys.exit(2)
    except click.ClickException as e:
        typer.secho(f"error: {' '.join(e.format_message().split())}", fg="red", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.secho("aborted", fg="red", err=True)
        sys.exit(1)
    except (GenrecError, ValueError, FileNotFoundError) as e:  # ParamError and constructors' checks are ValueErrors
        if os.environ.get("GENREC_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        typer.secho(f"error: {msg}", fg="red", err=True)
        sys.exit(2)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
