"""The explicit table of dataset names and where their files are looked for.

A dataset's folder is searched in this order: the ``data_dir`` argument (``--data-dir``; either
the folder itself or a parent holding ``<name>/``), ``$GENREC_DATA_DIR/<name>``,
``../shared/datasets/<name>`` from the working directory and from the repository root, and the
download cache ``$GENREC_CACHE/datasets/<name>`` (default ``~/.cache/genrec``). The first folder
holding all of the spec's ``required`` files wins.

Two names load files you bring: ``amazon-reviews`` (Amazon review dumps, 2014 or 2018, in the
``--data-dir`` folder) and ``generic`` (``interactions.csv|.tsv|.parquet`` and optional ``items.*``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from genrec.data.download import download_dataset
from genrec.data.files import has_entry, has_required
from genrec.errors import GenrecError, UnknownNameError
from genrec.paths import cache_root


@dataclass(frozen=True)
class DatasetSpec:
    loader: str  # "module:function(folder) -> Dataset"
    description: str
    folder: str | None = None  # None: generated, no files
    # files that must be in the folder; an entry may be a glob pattern and may list alternatives
    # separated by "|" ("interactions.csv|interactions.parquet": either will do)
    required: tuple[str, ...] = ()
    url: str | None = None  # official download (a zip), if there is one
    sha256: str | None = None
    default_split: str = "loo"
    default_preprocess: dict = field(default_factory=lambda: {"user": "gpt4rec", "loo": "standard", "temporal": "standard"})


DATASETS: dict[str, DatasetSpec] = {
    "demo": DatasetSpec("genrec.data.loaders.demo:make_demo_shop",
                        "SYNTHETIC demo shop, generated offline (2,000 users, 2,500 items)", default_split="user"),
    "synthetic-large": DatasetSpec("genrec.data.synthetic_large:load_synthetic_large",
                                   "SYNTHETIC large catalog and log for scaling runs (n_items, n_interactions, seed "
                                   "as parameters; generated once into the cache)", default_split="user"),
    "amazon-beauty": DatasetSpec("genrec.data.loaders.amazon:load_sequences_folder",
                                 "Amazon Beauty 5-core with titles, brands, categories (GPT4Rec, P5, GenRec)",
                                 "amazon-beauty", ("sequences.txt", "items.jsonl"), default_split="user"),
    "amazon-sports": DatasetSpec("genrec.data.loaders.amazon:load_sequences_folder",
                                 "Amazon Sports and Outdoors 5-core, item ids only", "amazon-sports", ("sequences.txt",)),
    "yelp": DatasetSpec("genrec.data.loaders.amazon:load_sequences_folder",
                        "Yelp 5-core as used by P5/S3Rec, ids only", "yelp", ("sequences.txt",)),
    "amazon-reviews": DatasetSpec("genrec.data.loaders.amazon:load_amazon_reviews",
                                  "Amazon review dump you downloaded (2014 reviews_<Cat>_5.json.gz or 2018 "
                                  "<Cat>_5.json.gz, + meta_<Cat>.json.gz); pass --data-dir FOLDER",
                                  "amazon-reviews", ("reviews_*.json*|*_5.json*",)),
    "generic": DatasetSpec("genrec.data.loaders.generic:load_generic_folder",
                           "Your own interactions.csv|.tsv|.parquet (user,item[,timestamp]) + optional "
                           "items.jsonl|.csv|.parquet; pass --data-dir FOLDER", "generic",
                           ("interactions.csv|interactions.tsv|interactions.parquet",)),
    "ml-100k": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 100K (GroupLens)", "ml-100k",
                           ("u.data", "u.item"), url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                           sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
    "ml-1m": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 1M (GroupLens)", "ml-1m",
                         ("ratings.dat", "movies.dat"), url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                         sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
    "ml-latest-small": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens latest-small (CSV)",
                                   "ml-latest-small", ("ratings.csv", "movies.csv"),
                                   url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"),
    "ml-10m": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 10M (ratings.dat layout)",
                          "ml-10m", ("ratings.dat", "movies.dat"),
                          url="https://files.grouplens.org/datasets/movielens/ml-10m.zip"),
    "ml-20m": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 20M (CSV)", "ml-20m",
                          ("ratings.csv", "movies.csv"), url="https://files.grouplens.org/datasets/movielens/ml-20m.zip"),
    "ml-25m": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 25M (CSV)", "ml-25m",
                          ("ratings.csv", "movies.csv"), url="https://files.grouplens.org/datasets/movielens/ml-25m.zip"),
    "ml-32m": DatasetSpec("genrec.data.loaders.movielens:load_movielens", "MovieLens 32M (CSV)", "ml-32m",
                          ("ratings.csv", "movies.csv"), url="https://files.grouplens.org/datasets/movielens/ml-32m.zip"),
}


def spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, list(DATASETS))
    return DATASETS[name]


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """The cache root (:func:`genrec.paths.cache_root`); datasets are downloaded under its ``datasets``."""
    return cache_root()


def candidate_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    s = spec(name)
    assert s.folder is not None
    out: list[Path] = []
    if data_dir is not None:
        out += [Path(data_dir), Path(data_dir) / s.folder]
    if os.environ.get("GENREC_DATA_DIR"):
        out.append(Path(os.environ["GENREC_DATA_DIR"]) / s.folder)
    out += [Path.cwd().parent / "shared" / "datasets" / s.folder,
            repo_root().parent / "shared" / "datasets" / s.folder,
            cache_dir() / "datasets" / s.folder]
    return list(dict.fromkeys(out))  # the working directory is often the repository root


def find_dataset_dir(name: str, data_dir: str | Path | None = None, *, download: bool = False) -> Path:
    """The folder holding ``name``'s files; downloads it when allowed and possible."""
    s = spec(name)
    dirs = candidate_dirs(name, data_dir)
    for d in dirs:
        if has_required(d, s.required):
            return d
    if download and s.url:
        return download_dataset(name, s, cache_dir() / "datasets")
    files = ", ".join(r.replace("|", " or ") for r in s.required)
    how = (f"download {s.url} and unzip it so that {files} lie in one folder, then pass "
           f"--data-dir FOLDER (or run with --download)") if s.url else (
        f"put {files} in a folder and pass --data-dir FOLDER")
    partial = [f"{d} lacks {', '.join(r.replace('|', ' or ') for r in s.required if not has_entry(d, r))}"
               for d in dirs if d.is_dir()]
    raise GenrecError(f"dataset {name!r} not found; looked in: {', '.join(str(d) for d in dirs)}"
                      f"{' (' + '; '.join(partial) + ')' if partial else ''}. To get it: {how}")


def load_dataset(name: str, data_dir: str | Path | None = None, *, preprocess=None, download: bool = False, **kw):
    """Load the named dataset and apply ``preprocess`` (a preset name or a Preprocess)."""
    s = spec(name)
    module, fn = s.loader.split(":")
    loader = getattr(importlib.import_module(module), fn)
    if s.folder is None:
        ds = loader(**kw)
    else:
        ds = loader(find_dataset_dir(name, data_dir, download=download), name=name, **kw)
    return ds if preprocess is None else ds.preprocess(preprocess)
