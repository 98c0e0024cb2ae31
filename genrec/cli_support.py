"""The command line's argument checks, done before any data is loaded, and its small helpers.

Each check raises :class:`UsageError` with one line naming the option and the value; ``genrec``'s
``main`` prints it and exits with code 2.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

import typer

from genrec.errors import GenrecError

WHICH = ("test", "valid")
DataDirOpt = typer.Option(None, "--data-dir", help="Folder with the dataset's files (or a parent of <name>/).")
MinRatingOpt = typer.Option(None, "--min-rating", help="MovieLens: keep only ratings >= this (default: every rating).")


class UsageError(GenrecError, ValueError):
    """A bad command-line argument: one line naming it and its value."""


def parse_ks(raw: str) -> list[int]:
    """``--ks 5,10,20`` as positive integers."""
    out = []
    for part in raw.split(","):
        part = part.strip()
        try:
            k = int(part)
        except ValueError:
            raise UsageError(f"--ks {raw!r}: {part!r} is not an integer") from None
        if k <= 0:
            raise UsageError(f"--ks {raw!r}: {k} is not a positive integer")
        out.append(k)
    return out


def check_positive(option: str, value: int | None, least: int = 1) -> None:
    if value is not None and value < least:
        raise UsageError(f"{option} {value}: must be {'a positive integer' if least == 1 else f'>= {least}'}")


def check_choice(option: str, value: str | None, choices) -> None:
    if value is not None and value not in choices:
        raise UsageError(f"{option} {value!r}: not one of {', '.join(choices)}")


def describe_preset(p) -> str:
    """A preprocessing preset's steps in words, from its fields (so --help cannot go stale)."""
    steps = []
    if p.drop_bad_titles:
        steps.append(f"drop items with empty or >{p.max_title_chars}-char titles")
    if p.dedup:
        steps.append("remove repeated items")
    if p.max_len:
        steps.append(f"keep each user's last {p.max_len}")
    if p.kcore:
        steps.append(f"{p.kcore}-core")
    steps.append(f"users with >= {p.min_user_len} item{'s' if p.min_user_len != 1 else ''}")
    return ", ".join(steps)


def presets_help() -> str:
    from genrec.data.dataset import PRESETS

    return "; ".join(f"{n}: {describe_preset(p)}" for n, p in PRESETS.items())


def check_data_args(dataset: str, split: str | None, preprocess: str | None, min_rating: float | None) -> None:
    """Dataset, split protocol, preset and --min-rating, before loading anything."""
    import inspect

    from genrec.data.dataset import PRESETS
    from genrec.data.registry import spec
    from genrec.data.splits import PROTOCOLS

    s = spec(dataset)  # unknown names: UnknownNameError, listing the known ones
    check_choice("--split", split, PROTOCOLS)
    check_choice("--preprocess", preprocess, list(PRESETS))
    if min_rating is not None:
        module, fn = s.loader.split(":")
        import importlib

        loader = getattr(importlib.import_module(module), fn)
        if "min_rating" not in inspect.signature(loader).parameters:
            raise UsageError(f"--min-rating {min_rating:g}: dataset {dataset!r} has no ratings "
                             "(only MovieLens datasets do)")


def default_preset(dataset: str, split: str | None) -> tuple[str, str]:
    """The split ``evaluate`` uses for ``dataset`` without --split, and the preset it uses with it."""
    from genrec.data.registry import spec

    s = spec(dataset)
    split = split or s.default_split
    return split, s.default_preprocess.get(split, "standard")


def set_threads(n: int | None) -> None:
    """Limit torch, BLAS/OpenMP and numba to ``n`` threads, process-wide."""
    if n is None:
        return
    # GENREC_THREADS is what genrec.torch_utils.set_threads falls back to when a model has no
    # `threads` parameter of its own.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "GENREC_THREADS"):
        os.environ[var] = str(n)  # read by libraries imported after this
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)  # libraries already loaded
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def thread_params(models: list[str], threads: int | None, given: dict[str, dict]) -> None:
    """Pass ``--threads`` to models that take ``threads`` or ``num_threads``, unless set by --param."""
    if threads is None:
        return
    from genrec.models.registry import param_infos

    for m in models:
        names = {p.name for p in param_infos(m)}
        for key in ("threads", "num_threads"):
            if key in names and key not in given[m]:
                given[m][key] = threads


def resolve_history(raw: str, catalog) -> tuple[list[str], list[str]]:
    """``--history`` entries (item ids or titles, comma-separated, oldest first) as item ids, and a
    line for each title that was read as an id. A title may contain commas: the longest run of
    comma-separated pieces that is an id or a title wins. Unknown entries are a UsageError naming
    them, with the closest titles."""
    by_title: dict[str, list[str]] = {}
    for it in catalog:
        if it.title:
            by_title.setdefault(_norm(it.title), []).append(it.id)
    pieces = raw.split(",")
    ids, said, n = [], [], 0
    while n < len(pieces):
        for j in range(len(pieces), n, -1):
            cand = ",".join(pieces[n:j]).strip()
            if not cand:
                continue
            if cand in catalog:
                ids.append(cand)
                break
            hit = by_title.get(_norm(cand))
            if hit:
                if len(hit) > 1:
                    raise UsageError(f"--history: the title {cand!r} names {len(hit)} items "
                                     f"({', '.join(hit[:5])}): give the id")
                ids.append(hit[0])
                said.append(f"read {cand!r} as item {hit[0]} (title match)")
                break
        else:
            bad = pieces[n].strip()
            if bad:
                near = difflib.get_close_matches(_norm(bad), list(by_title), 3, 0.6)
                hint = (f"; close titles: {'; '.join(repr(catalog[by_title[t][0]].title) for t in near)}"
                        if near else "")
                raise UsageError(f"--history: {bad!r} is neither an item id nor a title in the model's catalog{hint}")
            j = n + 1
        n = j
    return ids, said


def _norm(title: str) -> str:
    return " ".join(title.split()).casefold()


def fit_seed(model: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """``params`` with the command's ``--seed`` for models that take a seed and were given none."""
    from genrec.models.registry import param_infos

    if "seed" not in params and any(p.name == "seed" for p in param_infos(model)):
        return {**params, "seed": seed}
    return params
