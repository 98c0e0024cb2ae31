"""The service's view of the catalog: the model's catalog plus what the API changed on top of it
(deleted ids, ids added through the API), a title index, and ids outside a category."""

from __future__ import annotations

from typing import Callable, Sequence

from genrec.data.catalog import Catalog, Item
from genrec.text import clean_title

OUTSIDE_CACHE = 256  # categories whose "ids outside" sets are kept per catalog version


class CatalogState:
    """Deleted items stay in the model's catalog (so old histories still resolve) but are never
    recommended or resolved from a title. Sets are replaced, never mutated, so a reader without a
    lock sees one whole set. ``catalog`` is a callable because the service may swap its model."""

    def __init__(self, catalog: Callable[[], Catalog]) -> None:
        self._catalog = catalog
        self.deleted: frozenset[str] = frozenset()
        self.api_items: frozenset[str] = frozenset()
        self.version = 0  # bumped before and after every change to the model's catalog
        self._outside: dict[tuple[int, str], frozenset[str]] = {}
        self.titles: dict[str, str] = {}

    @property
    def catalog(self) -> Catalog:
        return self._catalog()

    def changed(self) -> None:
        """Call before and after changing the model's catalog: a category set built by a request
        that ran during the change is keyed by a version no later request uses."""
        self.version += 1
        self._outside = {}

    def reindex_titles(self) -> None:
        out: dict[str, str] = {}
        for it in self.catalog:
            if it.title and it.id not in self.deleted:
                out.setdefault(it.title, it.id)
        self.titles = out

    def mark(self, *, deleted: Sequence[str] = (), undeleted: Sequence[str] = (), api: Sequence[str] = ()) -> None:
        if deleted or undeleted:
            self.deleted = (self.deleted | frozenset(deleted)) - frozenset(undeleted)
        if api:
            self.api_items = self.api_items | frozenset(api)

    def live(self, item_id: str) -> Item | None:
        it = self.catalog.get(item_id)
        return None if it is None or item_id in self.deleted else it

    def source(self, item_id: str) -> str:
        return "api" if item_id in self.api_items else "model"

    def outside(self, category: str) -> frozenset[str]:
        """Ids of the items none of whose categories equals ``category`` (case-folded). Cached per
        (version, category): building one walks the catalog in Python (tens of ms for 12k items)."""
        cat = category.casefold()
        key = (self.version, cat)  # read first: a change while we build gives a dead key
        hit = self._outside.get(key)
        if hit is None:
            hit = frozenset(it.id for it in self.catalog if not any(c.casefold() == cat for c in it.categories))
            cache = self._outside
            if len(cache) >= OUTSIDE_CACHE:
                cache.clear()
            cache[key] = hit
        return hit

    def resolve(self, entries: Sequence[str]) -> tuple[list[str], list[str]]:
        """Item ids for ``entries`` (ids, else exact cleaned titles) and the unresolved entries."""
        catalog, titles = self.catalog, self.titles
        ids, unresolved = [], []
        for e in entries:
            if e in catalog:
                ids.append(e)
            else:
                hit = titles.get(clean_title(e))
                (ids.append(hit) if hit is not None else unresolved.append(e))
        return ids, unresolved
