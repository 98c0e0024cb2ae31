"""Run configs: TOML files validated by pydantic. Any unknown or wrong field is a
:class:`~genrec.errors.ConfigError` naming the file and the field (``models[1].params.foo``).

A minimal config::

    title = "Baselines: demo shop"
    name = "baselines_demo_user"          # results: <out>/<name>.json and .md
    out = "../results"                    # relative to this file's folder

    [data]
    dataset = "demo"
    split = "user"                        # default: the dataset's default split

    [[models]]
    name = "itemknn"
    params = { neighbors = 50 }
    grid = { recency_decay = [1.0, 0.5] } # tuned on validation cases (see [tune])
    score_only = ["recency_decay"]        # read at recommend time: no refit to try them
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from genrec.errors import ConfigError

METRIC = re.compile(r"^[a-z_]+@\d+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Which data, preprocessing and split (see :mod:`genrec.experiments.recipe`)."""

    dataset: str
    split: str | None = None
    preprocess: str | None = None
    data_dir: str | None = None
    download: bool = False
    cold_items: float = Field(default=0.0, ge=0.0, lt=1.0)


class EvalConfig(_Strict):
    """How the test cases are evaluated (full ranking over the catalog)."""

    ks: list[int] = Field(default_factory=lambda: [5, 10, 20, 40], min_length=1)
    max_cases: int | None = Field(default=None, gt=0)
    attributes: list[str] = Field(default_factory=lambda: ["categories", "brand"])
    metrics: list[str] = Field(default_factory=lambda: ["recall", "ndcg"],
                               description="metric names shown at every K in the page's table")
    by: list[str] = Field(default_factory=list, description="user attributes to break the metrics down by")
    candidates: int | None = Field(default=None, ge=2, description="also rank target + N-1 random items (LLMRank)")

    @field_validator("ks")
    @classmethod
    def _positive(cls, ks: list[int]) -> list[int]:
        if any(k <= 0 for k in ks):
            raise ValueError("every K must be positive")
        return ks


class TuneConfig(_Strict):
    """Search over each model's ``grid`` on validation cases; the test cases are used once."""

    method: Literal["coordinate", "grid", "random"] = "coordinate"
    metric: str = "recall@10"
    tiebreak: str | None = "ndcg@10"
    max_cases: int | None = Field(default=None, gt=0)
    trials: int = Field(default=20, gt=0, description="candidates drawn by the random search")

    @field_validator("metric", "tiebreak")
    @classmethod
    def _metric(cls, m: str | None) -> str | None:
        if m is not None and not METRIC.match(m):
            raise ValueError(f"a metric is written name@K (e.g. recall@10), got {m!r}")
        return m


class ModelConfig(_Strict):
    """One model: its registry name, constructor parameters and optional tuning grid.

    ``time_budget_minutes`` is passed as the model's ``time_budget`` parameter (seconds), the name
    genrec.training's TrainConfig uses; a model without that parameter is rejected rather than run
    without the budget. (No benchmark reads a model's private checkpoint to stop it.)
    """

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    score_only: list[str] = Field(default_factory=list)
    time_budget_minutes: float | None = Field(default=None, gt=0)

    @property
    def row(self) -> str:
        return self.label or self.name


class BenchConfig(_Strict):
    """A whole run. ``out`` is relative to the config file's folder."""

    title: str
    name: str = Field(pattern=r"^[\w.\-]+$")
    out: str = "../results"
    seed: int = 0
    threads: int | None = Field(default=1, gt=0, description="torch threads (None: torch's default)")
    notes: list[str] = Field(default_factory=list)
    anchors: list[str] = Field(default_factory=list)
    data: DataConfig
    evaluate: EvalConfig = EvalConfig()
    tune: TuneConfig = TuneConfig()
    models: list[ModelConfig] = Field(min_length=1)


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: dict, path: str | Path = "<config>") -> BenchConfig:
    """Validate a parsed TOML table; every problem is named by file and field."""
    try:
        cfg = BenchConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        more = f" (and {e.error_count() - 1} more problem(s))" if e.error_count() > 1 else ""
        msg = first["msg"].replace("Extra inputs are not permitted", "unknown field")
        raise ConfigError(msg + more, path=path, field=_field(first["loc"])) from None
    check_models(cfg, path)
    return cfg


def load_config(path: str | Path) -> BenchConfig:
    """Read and validate a TOML run config."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("no such file", path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", path=path) from None
    return parse_config(data, path)


def check_models(cfg: BenchConfig, path: str | Path) -> None:
    """Model names, parameter names, grids and anchors exist (imports each model's module)."""
    from genrec.data.registry import DATASETS
    from genrec.experiments.anchors import ANCHORS
    from genrec.models.registry import MODELS, model_class

    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.data.dataset!r}; known: {', '.join(sorted(DATASETS))}",
                          path=path, field="data.dataset")
    for n, a in enumerate(cfg.anchors):
        if a not in ANCHORS:
            raise ConfigError(f"unknown anchor {a!r}; known: {', '.join(sorted(ANCHORS))}", path=path,
                              field=f"anchors[{n}]")
    for n, m in enumerate(cfg.models):
        where = f"models[{n}]"
        if m.name not in MODELS:
            raise ConfigError(f"unknown model {m.name!r}; known: {', '.join(sorted(MODELS))}", path=path,
                              field=f"{where}.name")
        known = set(inspect.signature(model_class(m.name).__init__).parameters) - {"self"}
        for section in ("params", "grid"):
            for key in getattr(m, section):
                if key not in known:
                    raise ConfigError(f"{m.name} has no parameter {key!r} (known: {', '.join(sorted(known))})",
                                      path=path, field=f"{where}.{section}.{key}")
        for key, values in m.grid.items():
            if not values:
                raise ConfigError("a grid needs at least one value", path=path, field=f"{where}.grid.{key}")
        for k, key in enumerate(m.score_only):
            if key not in m.grid:
                raise ConfigError(f"{key!r} is not in this model's grid", path=path, field=f"{where}.score_only[{k}]")
        if m.time_budget_minutes is not None and "time_budget" not in known:
            raise ConfigError(f"{m.name} has no time_budget parameter (models get one when they train through "
                              "genrec.training); remove the field or cap epochs instead", path=path,
                              field=f"{where}.time_budget_minutes")
    labels = [m.row for m in cfg.models]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup:
        raise ConfigError(f"two models are labelled {dup!r}; give one a label", path=path, field="models")
