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

    def to_json(self, *, include_cases: bool = False) -> dict:
        d = {"model": self.model, "metrics": self.table, "run_card": self.run_card}
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
        cells = [r.model] + [_fmt(r.table.get(c)) for c in cols]
        cells += [_fmt(r.run_card.get(e), 1) for e in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
