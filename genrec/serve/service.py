"""The service's domain layer: one model, its catalog as changed through the API, and the store.

No HTTP here: methods take validated request bodies (:mod:`genrec.serve.schemas`) and return
plain dicts or raise :mod:`genrec.serve.errors` (the routes map them to status codes).

- Catalog writes and event writes hold ``catalog_lock`` (an item cannot be deleted between an
  event's existence check and its insert); the model itself is guarded by ``lock`` (one writer
  or one batched recommend at a time). Recommends never wait for ``catalog_lock``.
- A change is made in the model and the database, or in neither: the model is put back when its
  update or the commit fails.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Sequence

from genrec.data.catalog import Catalog, Item
from genrec.errors import GenrecError
from genrec.serve import schemas as S
from genrec.serve.batching import Batcher
from genrec.serve.catalog_state import CatalogState
from genrec.serve.errors import Conflict, NotFound, Rejected
from genrec.serve.store import ItemRow, Store

log = logging.getLogger("genrec.serve")


class Service:
    """The model, its catalog as changed through the API, and the store; the app's state."""

    def __init__(self, model: Any, store: Store) -> None:
        if getattr(model, "catalog", None) is None:
            raise GenrecError("the model has no catalog: fit or load it before serving")
        self.model, self.store = model, store
        self.name: str = getattr(model, "name", type(model).__name__)
        self.lock = threading.RLock()
        self.catalog_lock = threading.RLock()  # taken before ``lock``
        self.takes_exclude = _takes_exclude(model)
        self.state = CatalogState(lambda: self.model.catalog)
        self._replay()
        self.state.reindex_titles()
        self.batcher = Batcher(self._run_batch)

    @property
    def catalog(self) -> Catalog:
        return self.model.catalog

    def _run_batch(self, histories: list[list[str]], k: int, exclude_history: bool,
                   exclude: frozenset[str]) -> list[tuple]:
        """One model call for several requests (same ``k``, ``exclude_history`` and ``exclude``)."""
        with self.lock:
            if self.takes_exclude:
                recs = self.model.recommend(histories, k=k, exclude_history=exclude_history,
                                            exclude=self.state.deleted | exclude)
            else:
                recs = self.model.recommend(histories, k=k, exclude_history=exclude_history)
        if len(recs) != len(histories):
            raise GenrecError(f"{self.name}.recommend returned {len(recs)} results for {len(histories)} histories")
        return [(recs.items[n], recs.scores[n], recs.why[n], recs.notes[n]) for n in range(len(histories))]

    # -- catalog ----------------------------------------------------------------------------------
    def _replay(self) -> None:
        """Re-apply items added, changed or deleted through the API (restart loses nothing)."""
        rows = self.store.item_rows()
        self.state.changed()
        new = [r for r in rows if r.item_id not in self.catalog]
        new_ids = {r.item_id for r in new}
        if new:
            self.model.add_items([_to_item(r) for r in new])
        self.state.api_items = frozenset(r.item_id for r in rows if r.origin == "api")
        self.state.deleted = frozenset(r.item_id for r in rows if r.deleted)
        if rows:
            log.info("re-applied %d catalog change(s) from the database (%d new, %d deleted)",
                     len(rows), len(new), len(self.state.deleted))
        changed = [_to_item(r) for r in rows if r.item_id not in new_ids]
        if changed:
            self.model.update_items(changed)
        self.state.changed()

    def item(self, item_id: str) -> dict:
        it = self.state.live(item_id)
        if it is None:
            raise NotFound(f"unknown item {item_id!r}" + (" (deleted)" if item_id in self.state.deleted else ""))
        return self.item_out(it)

    def item_out(self, it: Item) -> dict:
        return {"id": it.id, "title": it.title, "brand": it.brand, "categories": list(it.categories),
                "text": it.text, "source": self.state.source(it.id)}

    def add_item(self, body: S.ItemIn) -> dict:
        """Add an item in the model and the database; :class:`Conflict` if the id exists (deleted
        ids are not reused)."""
        row = ItemRow(item_id=body.id, title=body.title, brand=body.brand, categories=list(body.categories),
                      text=body.text, origin="api")
        with self.catalog_lock, self.lock:
            if body.id in self.catalog:
                raise Conflict(f"item {body.id!r} already exists"
                               + (" (deleted; ids are not reused)" if body.id in self.state.deleted else ""))
            self.state.changed()
            try:
                with self.store.write() as conn:
                    self.store.insert_item(conn, row)
                    with _model_refusal():
                        self.model.add_items([_to_item(row)])  # raises -> the insert rolls back
            except BaseException:
                if body.id in self.catalog:  # added to the model but not committed: hide it
                    self.state.mark(deleted=[body.id])
                raise
            finally:
                self.state.changed()
            self.state.mark(api=[body.id])
            it = self.catalog[body.id]
            if it.title:
                self.state.titles.setdefault(it.title, it.id)
            return self.item_out(it)

    def patch_item(self, item_id: str, patch: S.ItemPatch) -> dict:
        """Change an item in the model and the database, or in neither."""
        with self.catalog_lock, self.lock:
            old = self.state.live(item_id)
            if old is None:
                raise NotFound(f"unknown item {item_id!r}")
            new = _patched(old, patch)
            changing = False
            self.state.changed()
            try:
                with self.store.write() as conn:
                    self._save_row(conn, new, deleted=False)
                    changing = True
                    with _model_refusal():
                        self.model.update_items([new])  # raises -> the row rolls back
            except BaseException:
                if changing:
                    self._restore(old)
                raise
            finally:
                self.state.changed()
            self.state.reindex_titles()
            return self.item_out(self.catalog[item_id])

    def _restore(self, old: Item) -> None:
        """Put ``old`` back in the model after a failed change (it may have been half applied)."""
        try:
            self.model.update_items([old])
        except Exception:  # noqa: BLE001 - the original error is the one to report
            log.exception("could not restore item %r in the model after a failed change", old.id)

    def delete_item(self, item_id: str) -> None:
        """Delete in the database, then in memory (replacing two references, which cannot fail)."""
        with self.catalog_lock:
            it = self.state.live(item_id)
            if it is None:
                raise NotFound(f"unknown item {item_id!r}")
            with self.store.write() as conn:
                self._save_row(conn, it, deleted=True)
            self.state.mark(deleted=[item_id])
            self.state.reindex_titles()

    def _save_row(self, conn: Any, it: Item, deleted: bool) -> None:
        row = ItemRow(item_id=it.id, title=it.title, brand=it.brand, categories=list(it.categories), text=it.text,
                      origin=self.state.source(it.id), deleted=deleted)
        if self.store.get_item_row(conn, it.id) is None:
            self.store.insert_item(conn, row)
        else:
            self.store.update_item(conn, row)

    # -- events and users -------------------------------------------------------------------------
    def add_events(self, events: Sequence[S.EventIn]) -> dict:
        """Store events for live items, all or none: :class:`Rejected` naming unknown or deleted items."""
        with self.catalog_lock:  # no item is deleted between this check and the insert
            bad = sorted({e.item for e in events if self.state.live(e.item) is None})
            if bad:
                raise Rejected(f"unknown or deleted item id(s): {', '.join(map(repr, bad[:10]))}"
                               + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
            now = time.time()
            ids = self.store.add_events([(e.user, e.item, e.time.timestamp() if e.time else now) for e in events])
        return {"recorded": len(ids), "event_ids": ids}

    def ref(self, item_id: str, **extra: Any) -> dict:
        it = self.catalog.get(item_id)
        return {"item_id": item_id, "title": it.title if it else None, **extra}

    def user_history(self, user_id: str, limit: int) -> dict:
        rows = self.store.history(user_id, limit)
        if rows is None:
            raise NotFound(f"unknown user {user_id!r}: no events recorded")
        return {"user": user_id, "count": len(rows),
                "events": [self.ref(r.item_id, time=to_datetime(r.ts), event_id=r.id) for r in rows]}

    def users(self, limit: int, prefix: str) -> list[dict]:
        return [{"user": u, "events": n, "last_time": to_datetime(t)} for u, n, t in self.store.list_users(limit, prefix)]

    def health(self) -> dict:
        ok = self.store.ping()
        return {"status": "ok" if ok else "degraded", "model": self.name,
                "items": len(self.catalog) - len(self.state.deleted), "deleted_items": len(self.state.deleted),
                "database": self.store.backend, "database_ok": ok}

    def recommend(self, req: S.RecommendRequest) -> dict:
        from genrec.serve.recommending import recommend

        return recommend(self, req)


class _model_refusal:  # noqa: N801 - used as a context manager
    """A ValueError from the model's add/update (e.g. a title it cannot index) -> :class:`Rejected`."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> None:  # noqa: ANN001
        if exc is not None and isinstance(exc, ValueError):
            raise Rejected(f"the model rejected the change: {exc}") from exc


def _takes_exclude(model: Any) -> bool:
    """Whether ``model.recommend`` accepts ``exclude=`` (item ids it must never return)."""
    try:
        return "exclude" in inspect.signature(model.recommend).parameters
    except (TypeError, ValueError):  # a builtin or C-implemented recommend: no signature
        return False


def _to_item(r: ItemRow) -> Item:
    return Item(id=r.item_id, title=r.title, brand=r.brand, categories=tuple(r.categories), text=r.text)


def _patched(old: Item, patch: S.ItemPatch) -> Item:
    """``old`` with the fields the patch sets (the schema has already refused nulls where not allowed)."""
    fields = patch.model_dump(exclude_unset=True)
    return Item(id=old.id, title=fields.get("title", old.title), brand=fields.get("brand", old.brand),
                categories=tuple(fields.get("categories", old.categories)), text=fields.get("text", old.text),
                extra=dict(old.extra))


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
