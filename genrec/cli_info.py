"""The informational commands: `genrec datasets list|stats` and `genrec models [show NAME]`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional

import typer

from genrec.cli_support import DataDirOpt, MinRatingOpt, check_data_args, default_preset, describe_preset, presets_help

datasets_app = typer.Typer(no_args_is_help=True, help="List datasets and print their statistics.")
models_app = typer.Typer(invoke_without_command=True, help="List models, or show one model's parameters.")


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
                   preprocess: Optional[str] = typer.Option(
                       None, "--preprocess", help="Preset to apply; default: the one `genrec evaluate` uses for the "
                       "split (see --split). " + presets_help() + "."),
                   split: Optional[str] = typer.Option(None, "--split", "-s", help="Pick the preset `evaluate --split` "
                                                       "would use; default: the dataset's default split."),
                   min_rating: Optional[float] = MinRatingOpt,
                   download: bool = typer.Option(False, "--download")) -> None:
    """Users, items, interactions and sequence lengths before and after preprocessing."""
    from dataclasses import replace

    from genrec.data.dataset import preset
    from genrec.data.registry import load_dataset

    check_data_args(name, split, preprocess, min_rating)
    eval_split, default_pre = default_preset(name, split)
    preprocess = preprocess or default_pre
    typer.echo(f"preset '{preprocess}' ({describe_preset(preset(preprocess))})"
               + (f"; `genrec evaluate -d {name} -s {eval_split}` uses '{default_pre}'"
                  if preprocess != default_pre else f": what `genrec evaluate -d {name} -s {eval_split}` uses"))
    raw = load_dataset(name, data_dir, download=download, **({} if min_rating is None else {"min_rating": min_rating}))
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




@models_app.callback()
def models_list(ctx: typer.Context) -> None:
    """The registered models, one line each (`genrec models show NAME` for parameters)."""
    if ctx.invoked_subcommand is None:
        from genrec.models.registry import DESCRIPTIONS, MODELS

        for n in MODELS:
            typer.echo(f"{n:16s} {DESCRIPTIONS.get(n, '')}")


@models_app.command("show")
def models_show(name: str) -> None:
    """Each parameter of model NAME: default, type and a line of help (set with --param NAME.key=value)."""
    from genrec.models.registry import DESCRIPTIONS, model_class, param_infos

    infos = param_infos(name)
    typer.echo(f"{name}: {DESCRIPTIONS.get(name, '')}")
    caps = model_class(name).capabilities.names()
    typer.echo(f"  capabilities: {', '.join(caps) if caps else '(none beyond fit/recommend/save/load)'}")
    if not infos:
        typer.echo("  (no parameters)")
    for p in infos:
        default = "required" if p.default is inspect.Parameter.empty else json.dumps(p.default, default=str)
        rng = f" [{p.range.describe()}]" if p.range else ""
        typer.echo(f"  {p.name:22s} {default:12s} {p.type_name:14s} {p.help or '(no help)'}{rng}")
