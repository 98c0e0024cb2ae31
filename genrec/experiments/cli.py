"""``genrec bench CONFIG``: run an experiment config and write its results pages."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer


def bench(config: Path = typer.Argument(..., help="A run config (TOML), e.g. benchmarks/configs/baselines_ml-100k_loo.toml."),
          out: Optional[Path] = typer.Option(None, "--out", help="Write the results here instead of the config's `out`."),
          check: bool = typer.Option(False, "--check", help="Only validate the config."),
          resume: bool = typer.Option(False, "--resume", help="Keep the rows of an earlier run of this config "
                                      "(same data, evaluation and model entry) and run only the missing models.")) -> None:
    """Run an experiment: data + split, tuning on validation, fit, test; writes <name>.json and .md."""
    from genrec.errors import GenrecError
    from genrec.experiments.config import load_config

    try:
        cfg = load_config(config)
    except GenrecError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2)
    if check:
        typer.echo(f"{config}: valid ({len(cfg.models)} models)")
        return
    from genrec.experiments.runner import run

    command = "genrec bench " + shlex.join([str(config)] + (["--out", str(out)] if out else [])
                                           + (["--resume"] if resume else []))
    try:
        _, md, js = run(cfg, config, out_dir=out, command=command, resume=resume)
    except GenrecError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {md} and {js}")
