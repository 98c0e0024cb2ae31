"""Catalog edits for models whose re-index is slow (GPT4Rec and title-bm25 rebuild their BM25
index on every edit: 0.1-0.5 s for 12k titles): the edit is applied to a copy of the model, off
the request path, and the copy replaces the served model in one assignment. Recommendations
keep using the old model (and its old index) until then, and never wait for the rebuild.

The copy is shallow (the language model and other read-only parts are shared); what an edit
changes (the catalog, the BM25 index) is copied first.
"""

from __future__ import annotations

import copy
from typing import Any

# Attributes an edit changes in place, deep-copied into the copy. ``_bm25`` is the BM25 index of
# genrec.models.query_search.QuerySearchRecommender (its add() extends the index's lists).
_EDITED_STATE = ("_bm25",)


def swaps_on_edit(model: Any) -> bool:
    """Whether catalog edits to ``model`` are made on a copy and swapped in."""
    from genrec.models.query_search import QuerySearchRecommender

    return isinstance(model, QuerySearchRecommender)


def edit_copy(model: Any) -> Any:
    """A copy of ``model`` that ``add_items``/``update_items`` can change without touching the
    served model: Recommender copies its catalog on the first change when it does not own it
    (``_owned_catalog``), and the index is deep-copied."""
    m = copy.copy(model)
    m.__dict__.pop("_owned_catalog", None)
    for name in _EDITED_STATE:
        if name in m.__dict__:
            setattr(m, name, copy.deepcopy(model.__dict__[name]))
    return m
