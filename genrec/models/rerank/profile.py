"""A user profile in words (Chat-Rec), built from the user's own data only.

- Demographics (MovieLens ``u.user``: age, gender, occupation) from ``Split.user_features``,
  looked up by user id; a history given without a user id gets none.
- Preferences from the history the model is asked about (everything before the target, never
  the target or anything after it): the most frequent catalog categories of the history items
  (MovieLens genres; Amazon category path elements) and, when the catalog has them, brands.

The profile goes into the prompt as one cleaned, quoted data field and into ``why.profile``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from genrec.data.catalog import Catalog

PROFILE_FIELDS = ("age", "gender", "occupation", "categories", "brands")
DEMOGRAPHICS = ("age", "gender", "occupation")
_GENDER = {"M": "male", "F": "female"}


@dataclass(frozen=True)
class Profile:
    """The facts of one profile (field -> value or ranked (name, share) pairs) and its sentence."""

    facts: dict[str, Any] = field(default_factory=dict)
    category_word: str = "categories"

    def text(self) -> str:
        """One line, e.g. ``age 24, male, technician; favourite genres: Drama 40%, Comedy 25%``."""
        parts = []
        demo = [f"age {self.facts['age']}" if "age" in self.facts else "",
                _GENDER.get(str(self.facts.get("gender", "")), str(self.facts.get("gender", ""))),
                str(self.facts.get("occupation", ""))]
        demo = [d for d in demo if d]
        if demo:
            parts.append(", ".join(demo))
        for key, label in (("categories", f"favourite {self.category_word}"), ("brands", "favourite brands")):
            ranked = self.facts.get(key)
            if ranked:
                parts.append(f"{label}: " + ", ".join(f"{n} {round(100 * s)}%" for n, s in ranked))
        return "; ".join(parts)

    def cited(self) -> set[str]:
        """Every attribute value the profile names (for explanation checks)."""
        out = {str(self.facts[k]) for k in DEMOGRAPHICS if k in self.facts}
        for key in ("categories", "brands"):
            out |= {n for n, _ in self.facts.get(key) or ()}
        return out


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """``fields`` validated against :data:`PROFILE_FIELDS` (a ``ValueError`` names a bad one)."""
    bad = [f for f in fields if f not in PROFILE_FIELDS]
    if bad:
        raise ValueError(f"profile_fields: unknown field(s) {', '.join(map(repr, bad))}; "
                         f"choose from {', '.join(PROFILE_FIELDS)}")
    return tuple(fields)


def _top(counts: Counter, total: int, top: int) -> list[tuple[str, float]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]  # ties by name: deterministic
    return [(name, round(c / total, 2)) for name, c in ranked]


def build_profile(history: Sequence[str], catalog: Catalog, features: Mapping[str, Any] | None = None, *,
                  fields: Sequence[str] = PROFILE_FIELDS, top: int = 3,
                  category_word: str = "categories") -> Profile:
    """The profile of a user from ``history`` (item ids before the target, oldest first) and the
    user's own ``features``; only ``fields`` are used. Shares are of the history's items."""
    fields = check_fields(fields)
    facts: dict[str, Any] = {}
    for f in DEMOGRAPHICS:
        if f in fields and features and features.get(f) not in (None, ""):
            facts[f] = features[f]
    items = [catalog[i] for i in history if i in catalog]
    if items and "categories" in fields:
        cats = Counter(c for it in items for c in dict.fromkeys(it.categories) if c)
        if cats:
            facts["categories"] = _top(cats, len(items), top)
    if items and "brands" in fields:
        brands = Counter(it.brand for it in items if it.brand)
        if brands:
            facts["brands"] = _top(brands, len(items), top)
    return Profile(facts, category_word)


def category_word(dataset: str | None) -> str:
    """``genres`` for MovieLens (its categories are genres), ``categories`` otherwise."""
    return "genres" if str(dataset or "").startswith(("ml-", "movielens")) else "categories"
