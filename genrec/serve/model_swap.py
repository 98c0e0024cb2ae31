"""Catalog edits for models that re-index on an edit (GPT4Rec and title-bm25 rebuild their BM25
index, 0.1-0.5 s for 12k titles; ContentRec re-vectorises): the edit is applied to a copy of the
model (``Recommender.copy_for_edit``), off the request path, and the copy replaces the served
model in one assignment. Recommendations keep using the old model until then and never wait
for the re-index. Other models' edits only change catalog fields and are made in place.
"""

from __future__ import annotations

from typing import Any


def capabilities(model: Any) -> Any:
    """``model.capabilities`` (:class:`genrec.core.capabilities.Capabilities`); all-off for an object
    that declares none."""
    from genrec.core.capabilities import Capabilities

    caps = getattr(model, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


def swaps_on_edit(model: Any) -> bool:
    """Whether catalog edits to ``model`` are made on a copy and swapped in: it re-indexes text on
    an edit (``text_updates``) and can make an editable copy."""
    return capabilities(model).text_updates and callable(getattr(model, "copy_for_edit", None))


def edit_copy(model: Any) -> Any:
    """A copy of ``model`` that ``add_items``/``update_items`` can change without touching the
    served model."""
    return model.copy_for_edit()
