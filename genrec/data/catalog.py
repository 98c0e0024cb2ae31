"""The catalog: items with a cleaned title, brand and categories, and a stable internal index."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from genrec.errors import DataError
from genrec.text import clean_title


@dataclass(frozen=True)
class Item:
    """One item. ``title`` is cleaned on the way into a :class:`Catalog`."""

    id: str
    title: str = ""
    brand: str | None = None
    categories: tuple[str, ...] = ()
    text: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d["categories"] = list(self.categories)
        if not d["extra"]:
            d.pop("extra")
        if not d["text"]:
            d.pop("text")
        return d


def _order_key(item_id: str) -> bytes:
    return hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()


class Catalog:
    """The items, each with an internal index in ``range(len(catalog))``.

    Internal indices are assigned in the order of a hash of the item id, never in the order the
    items were first seen, so an index carries no information about time or popularity (the
    "largest id is the newest item" leak). Items added later (cold start) get the next indices.
    """

    def __init__(self, items: Iterable[Item], *, source: str = "") -> None:
        cleaned: dict[str, Item] = {}
        for it in items:
            if not isinstance(it.id, str) or not it.id.strip():
                raise DataError(f"item id must be a non-empty string, got {it.id!r}", path=source or None)
            if it.id in cleaned:
                raise DataError(f"duplicate item id {it.id!r}", path=source or None)
            cleaned[it.id] = _clean(it)
        self.source = source
        self._items: list[Item] = sorted(cleaned.values(), key=lambda i: _order_key(i.id))
        self._index: dict[str, int] = {it.id: n for n, it in enumerate(self._items)}

    # -- lookup ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __getitem__(self, item_id: str) -> Item:
        try:
            return self._items[self._index[item_id]]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def get(self, item_id: str) -> Item | None:
        n = self._index.get(item_id)
        return None if n is None else self._items[n]

    def index_of(self, item_id: str) -> int:
        """Internal index of ``item_id``; KeyError naming the id when unknown."""
        try:
            return self._index[item_id]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r}") from None

    def indices(self, item_ids: Iterable[str], *, skip_unknown: bool = False) -> np.ndarray:
        """Internal indices of ``item_ids`` (unknown ids dropped when ``skip_unknown``)."""
        if skip_unknown:
            return np.fromiter((self._index[i] for i in item_ids if i in self._index), dtype=np.int64)
        return np.fromiter((self.index_of(i) for i in item_ids), dtype=np.int64)

    def id_at(self, index: int) -> str:
        return self._items[index].id

    @property
    def ids(self) -> list[str]:
        return [it.id for it in self._items]

    @property
    def titles(self) -> list[str]:
        return [it.title for it in self._items]

    def item_at(self, index: int) -> Item:
        return self._items[index]

    # -- change ---------------------------------------------------------------------------------
    def add(self, items: Iterable[Item]) -> list[int]:
        """Add new items (cold start); returns their new indices. Existing or repeated ids are
        rejected before anything is added, so a failed call leaves the catalog as it was."""
        items = list(items)
        seen: set[str] = set()
        for it in items:
            if it.id in self._index or it.id in seen:
                raise DataError(f"item id {it.id!r} is already in the catalog")
            seen.add(it.id)
        new = []
        for it in items:
            self._index[it.id] = len(self._items)
            self._items.append(_clean(it))
            new.append(self._index[it.id])
        return new

    def replace(self, item: Item) -> Item:
        """Change an existing item's fields (title, brand, ...), keeping its index; returns it cleaned."""
        n = self.index_of(item.id)
        self._items[n] = _clean(item)
        return self._items[n]

    def subset(self, item_ids: Iterable[str]) -> "Catalog":
        keep = set(item_ids)
        return Catalog((it for it in self._items if it.id in keep), source=self.source)

    def copy(self) -> "Catalog":
        c = Catalog.__new__(Catalog)
        c.source, c._items, c._index = self.source, list(self._items), dict(self._index)
        return c

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the catalog as JSON lines, in index order (so indices survive a round trip)."""
        with open(path, "w", encoding="utf-8") as f:
            for it in self._items:
                f.write(json.dumps(it.to_json(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Catalog":
        """Read a catalog written by :meth:`save`, keeping its index order."""
        items = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    items.append(Item(id=str(d["item_id"] if "item_id" in d else d["id"]),
                                      title=d.get("title") or "", brand=d.get("brand"),
                                      categories=tuple(d.get("categories") or ()),
                                      text=d.get("text", ""), extra=d.get("extra", {})))
                except (ValueError, KeyError, TypeError) as e:
                    raise DataError(f"bad catalog record ({e})", path=path, line=n) from e
        c = cls.__new__(cls)
        c.source = str(path)
        c._items = [_clean(i) for i in items]
        c._index = {it.id: n for n, it in enumerate(c._items)}
        if len(c._index) != len(c._items):
            raise DataError("duplicate item ids", path=path)
        return c

    def __repr__(self) -> str:
        return f"Catalog({len(self)} items{', from ' + self.source if self.source else ''})"


def _clean(it: Item) -> Item:
    brand = clean_title(it.brand) or None if it.brand is not None else None
    cats = tuple(c for c in (clean_title(c) for c in it.categories) if c)
    return Item(id=it.id, title=clean_title(it.title), brand=brand, categories=cats,
                text=clean_title(it.text) if it.text else "", extra=dict(it.extra))
