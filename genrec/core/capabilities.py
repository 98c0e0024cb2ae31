"""What a recommender can do beyond ``fit`` / ``recommend`` / ``save`` / ``load``, declared once.

Every model class sets ``capabilities = Capabilities(...)`` as a class attribute; consumers (the
service, the CLI, ``evaluate``) read ``model.capabilities`` instead of probing with ``hasattr`` or
``inspect.signature``, and ``tests/conformance`` checks each promise against the real model, so a
missing override fails a test instead of slipping through.

Flags (all default ``False``, so a new model promises nothing it has not declared):

- ``cold_start_items``: items given to ``add_items`` after ``fit`` are ranked at once (from their
  text), and catalog items without training interactions are scored meaningfully. Without it,
  added items are kept in the catalog but never recommended.
- ``text_updates``: ``update_items`` re-indexes the changed text, so an edited title changes the
  scores at once. Without it, an update changes only the catalog's fields (what is displayed).
- ``takes_exclude``: ``recommend(..., exclude=ids)`` never returns those ids and still fills ``k``
  when enough other items exist (ask for exactly ``k``; no over-fetch-and-filter needed).
- ``explains``: ``recommend`` puts a non-empty :class:`~genrec.core.why.Why` in ``Recommendations.why``
  (queries and the items each contributed, or explanations). Without it every ``why`` is an empty ``Why``.
- ``writes_queries``: ``generate_queries(histories) -> [[(query, score), ...]]`` exists.
- ``per_k_lists``: ``recommend_for_ks(histories, ks)`` exists, and the top-K list depends on K (the
  GPT4Rec merge gives each query K/m slots), so evaluation asks for each K separately.
- ``scores_all_items``: ``score(encoded_histories) -> (n, len(catalog))`` exists (sampled-negative
  metrics need it).
- ``trains_with_torch``: ``fit`` trains a PyTorch network (device, threads and time matter; torch is
  imported when the model is fitted or loaded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Capabilities:
    """The optional abilities one model class declares (see the module docstring for each flag)."""

    cold_start_items: bool = False
    text_updates: bool = False
    takes_exclude: bool = False
    explains: bool = False
    writes_queries: bool = False
    per_k_lists: bool = False
    scores_all_items: bool = False
    trains_with_torch: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise TypeError(f"Capabilities.{f.name} must be a bool, got {getattr(self, f.name)!r}")

    def with_(self, **flags: bool) -> "Capabilities":
        """A copy with ``flags`` changed (a subclass adding to its parent's declaration);
        an unknown flag is a ``TypeError`` naming it."""
        return replace(self, **flags)

    def names(self) -> list[str]:
        """The flags that are set, in declaration order."""
        return [f.name for f in fields(self) if getattr(self, f.name)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NONE = Capabilities()


def capabilities_of(model: Any) -> Capabilities:
    """``model.capabilities`` for a genrec recommender; an object that declares none (a duck-typed
    model from elsewhere) promises nothing."""
    caps = getattr(type(model), "capabilities", None)
    return caps if isinstance(caps, Capabilities) else NONE
