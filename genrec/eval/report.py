"""Reports: a metric table (Markdown and JSON), per-case results and the run card."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


@dataclass
class Report:
    model: str
    table: dict[str, float]
    per_case: list[dict]
    run_card: dict
    whys: list[Any] = field(default_factory=list, repr=False)
    lists: list[list[str]] = field(default_factory=list, repr=False)

    @property
    def leaked(self) -> bool:
        """Evaluated with ``allow_leak`` on cases whose targets the model was trained on."""
        return (self.run_card.get("leakage") or {}).get("status") == "LEAKED"

    @property
    def title(self) -> str:
        return f"{self.model} (LEAKED)" if self.leaked else self.model

    def notes(self) -> list[str]:
        """What a reader of the table must know: leakage, unreachable targets, unknown items."""
        card, out = self.run_card, []
        leak = card.get("leakage") or {}
        n = card.get("cases", len(self.per_case))
        if self.leaked:
            out.append(f"{self.model}: LEAKED: {leak.get('cases_trained_on', 0):,} of {n:,} targets were in its "
                       f"training data ({', '.join(leak.get('differs') or []) or 'same split description'}); "
                       "these numbers are not an evaluation")
        elif leak.get("status") == "unchecked":
            out.append(f"{self.model}: saved without training provenance: leakage could not be checked")
        if leak.get("differs") and not self.leaked:
            out.append(f"{self.model}: trained on a different split ({', '.join(leak['differs'])}); "
                       "no evaluated target was in its training data")
        if leak.get("targets_unknown_to_model"):
            out.append(f"{self.model}: {leak['targets_unknown_to_model']:,} of {n:,} targets are not in its catalog "
                       "(always misses)")
        if card.get("unreachable_targets"):
            out.append(f"{self.model}: {card['unreachable_targets']:,} of {n:,} targets are already in their history; "
                       "ranking excludes history items, so they can never be hit (counted as misses)")
        return out

    def to_json(self, *, include_cases: bool = False) -> dict:
        d: dict[str, Any] = {"model": self.model, "metrics": self.table, "run_card": self.run_card}
        if include_cases:
            d["per_case"] = self.per_case
        return d

    def save(self, folder: str | Path) -> Path:
        """Write ``metrics.json`` (table + run card) and ``cases.jsonl`` (one line per case)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(self.to_json(), indent=2, default=str))
        with open(folder / "cases.jsonl", "w") as f:
            for row in self.per_case:
                f.write(json.dumps(row) + "\n")
        return folder

    def markdown(self, metrics: Sequence[str] | None = None) -> str:
        return markdown_table([self], metrics)


def default_columns(table: dict[str, float]) -> list[str]:
    return [m for m in table if m.split("@")[0] in ("recall", "ndcg")]


def markdown_table(reports: Sequence[Report], metrics: Sequence[str] | None = None, *,
                   extra: Sequence[str] = ("fit_seconds", "eval_seconds")) -> str:
    """One row per model, one column per metric (default: Recall and NDCG at every K)."""
    if not reports:
        return ""
    cols = list(metrics) if metrics else default_columns(reports[0].table)
    head = ["model"] + cols + [e.replace("_seconds", " s") for e in extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in reports:
        cells = [r.title] + [_fmt(r.table.get(c)) for c in cols]
        cells += [_fmt(r.run_card.get(e), 1) for e in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fit_line(name: str, fit_info: dict | None, fit_seconds: float | None = None) -> str:
    """One line on what happened in training (``Recommender.fit_info_``), for the CLI."""
    done = "saved model" if fit_seconds is None else f"trained in {fit_seconds:.1f} s"
    if not fit_info:
        return f"{name}: {done} (the model reports no training details)"
    parts = []
    if fit_info.get("epochs_run") is not None:
        best = fit_info.get("best_epoch")
        parts.append(f"{fit_info['epochs_run']} epochs run" + (f", kept epoch {best}" if best is not None else ""))
    if fit_info.get("steps") is not None:
        parts.append(f"{fit_info['steps']:,} steps")
    if fit_info.get("stop_reason"):
        parts.append(f"stopped: {fit_info['stop_reason']}")
    if fit_info.get("precision"):
        parts.append(f"precision {fit_info['precision']}")
    if fit_info.get("train_seconds") is not None:
        parts.append(f"training {fit_info['train_seconds']:.1f} s")
    known = {"epochs_run", "best_epoch", "steps", "stop_reason", "precision", "train_seconds"}
    parts += [f"{k} {v}" for k, v in fit_info.items() if k not in known and not isinstance(v, (dict, list))]
    return f"{name}: {done}: {', '.join(parts)}"


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_keeping_notes(page: str | Path, body: str, marker: str) -> Path:
    """Write ``body`` then ``marker`` to ``page``, keeping whatever followed ``marker`` in the old
    page (hand-written notes survive regenerating the tables above them)."""
    page = Path(page)
    old = page.read_text() if page.is_file() else ""
    page.write_text(body + marker + (old.split(marker, 1)[1] if marker in old else "\n"))
    return page
