"""Typed explanations: what a model says about *why* it recommended what it did.

One ``Why`` per history travels in ``Recommendations.why``. The CLI, the service, the web page
and ``evaluate -o`` all read it through these types, never by poking at a dict.

- ``queries``: generated search queries (GPT4Rec, title-bm25) and the items each put in the list.
- ``explanations``: per recommended item, a short reason and the evidence it cites (history
  items, catalog attributes), so a consumer can check the reason against real data.
- ``profile``: a user profile in words (Chat-Rec), built from the user's own data.
- ``filled_by_popularity``: how many items no query or reason accounts for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Collection, Literal

EvidenceKind = Literal["history_item", "attribute", "query"]
EVIDENCE_KINDS: tuple[str, ...] = ("history_item", "attribute", "query")


@dataclass(frozen=True)
class Query:
    """One generated query, its model score, and the recommended item ids it contributed."""

    text: str
    score: float | None = None
    items: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.text, "score": _finite(self.score), "items": list(self.items)}


@dataclass(frozen=True)
class Evidence:
    """A fact an explanation cites: a history item id, a catalog attribute, or a query.

    ``field`` names the attribute (``brand``, ``category``, ``genre``...) when ``kind`` is
    ``attribute``; ``item_id`` names the item the attribute belongs to, when known.
    """

    kind: EvidenceKind
    value: str
    field: str | None = None
    item_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"Evidence.kind must be one of {EVIDENCE_KINDS}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "field": self.field, "item_id": self.item_id}


@dataclass(frozen=True)
class Explanation:
    """A reason for one recommended item, with the evidence it cites."""

    item_id: str
    text: str
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "text": self.text, "evidence": [e.to_dict() for e in self.evidence]}


@dataclass(frozen=True)
class Why:
    """Everything a model says about one recommendation list (all parts optional)."""

    queries: tuple[Query, ...] = ()
    explanations: tuple[Explanation, ...] = ()
    profile: str | None = None
    filled_by_popularity: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.queries or self.explanations or self.profile or self.filled_by_popularity or self.extra)

    def queries_for(self, item_id: str) -> list[int]:
        """Indices of the queries that contributed ``item_id``."""
        return [n for n, q in enumerate(self.queries) if item_id in q.items]

    def explanation_for(self, item_id: str) -> Explanation | None:
        return next((e for e in self.explanations if e.item_id == item_id), None)

    def restricted_to(self, items: Collection[str]) -> "Why":
        """The same ``Why`` about only ``items`` (a list cut or filtered after the model ran).

        Queries keep their order and text but list only the kept items; explanations of dropped
        items go; ``filled_by_popularity`` becomes the kept items no query accounts for (when the
        model gave queries)."""
        keep = list(dict.fromkeys(items))
        kept = set(keep)
        queries = tuple(Query(q.text, q.score, tuple(i for i in q.items if i in kept)) for q in self.queries)
        if queries:
            covered = {i for q in queries for i in q.items}
            filled = sum(1 for i in keep if i not in covered)
        else:
            filled = min(self.filled_by_popularity, len(keep))
        return Why(queries, tuple(e for e in self.explanations if e.item_id in kept), self.profile, filled,
                   dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite scores become ``None``)."""
        out: dict[str, Any] = {"queries": [q.to_dict() for q in self.queries],
                               "explanations": [e.to_dict() for e in self.explanations],
                               "profile": self.profile, "filled_by_popularity": self.filled_by_popularity}
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Why":
        """Inverse of ``to_dict``; raises ``ValueError`` naming the field that is malformed."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ValueError(f"why must be an object, got {type(d).__name__}")
        try:
            queries = tuple(Query(str(q["query"]), _finite(q.get("score")), tuple(map(str, q.get("items") or ())))
                            for q in d.get("queries") or ())
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"why.queries is malformed: {e}") from None
        try:
            expl = tuple(Explanation(str(x["item_id"]), str(x["text"]),
                                     tuple(Evidence(ev["kind"], str(ev["value"]), ev.get("field"), ev.get("item_id"))
                                           for ev in x.get("evidence") or ()))
                         for x in d.get("explanations") or ())
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"why.explanations is malformed: {e}") from None
        try:
            filled = int(d.get("filled_by_popularity") or 0)
        except (TypeError, ValueError):
            raise ValueError("why.filled_by_popularity must be an integer") from None
        profile = d.get("profile")
        return cls(queries, expl, None if profile is None else str(profile), filled, dict(d.get("extra") or {}))


def as_why(x: Any) -> Why:
    """The one conversion point for consumers: a ``Why`` as is, ``None`` as an empty ``Why``, and a
    legacy dict (saved runs of earlier versions) through ``Why.from_dict``."""
    if isinstance(x, Why):
        return x
    if x is None or isinstance(x, dict):
        return Why.from_dict(x)
    raise TypeError(f"why must be a genrec.core.why.Why, got {type(x).__name__}")


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None
