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
from genrec.serve.model_swap import capabilities, edit_copy, swaps_on_edit
from genrec.serve.errors import Conflict, NotFound, Rejected, Unavailable
from genrec.serve.store import ItemRow, Store

log = logging.getLogger("genrec.serve")


class Service:
    """The model, its catalog as changed through the API, and the store; the app's state.

    Several servers may share one database: every item write names the version of the row it
    read (optimistic concurrency; :class:`Conflict` when another server changed it since), and
    each server re-reads the rows changed since its last look, at most every
    ``refresh_seconds`` on requests and always before a write."""

    def __init__(self, model: Any, store: Store, refresh_seconds: float = 1.0, swap_edits: bool = True) -> None:
        if getattr(model, "catalog", None) is None:
            raise GenrecError("the model has no catalog: fit or load it before serving")
        self.model, self.store = model, store
        self.name: str = getattr(model, "name", type(model).__name__)
        self.lock = threading.RLock()  # the model: one batched recommend or in-place edit at a time
        self.catalog_lock = threading.RLock()  # catalog and event writes, and syncs; taken before ``lock``
        self.takes_exclude = _takes_exclude(model)
        self.swaps = swap_edits and swaps_on_edit(model)
        self.state = CatalogState(lambda: self.model.catalog)
        self.refresh_seconds = refresh_seconds
        self.seq = 0  # the catalog version this server has applied
        self.row_seq: dict[str, int] = {}  # the version of each stored item row, as last read
        self._checked = 0.0
        self.sync(force=True)
        self.state.reindex_titles()
        self.batcher = Batcher(self._run_batch)

    @property
    def catalog(self) -> Catalog:
        return self.model.catalog

    def _run_batch(self, histories: list[list[str]], k: int, exclude_history: bool,
                   exclude: frozenset[str]) -> list[tuple]:
        """One model call for several requests (same ``k``, ``exclude_history`` and ``exclude``)."""
        with self.lock:
            model = self.model
            if self.takes_exclude:
                recs = model.recommend(histories, k=k, exclude_history=exclude_history,
                                       exclude=self.state.deleted | exclude)
            else:
                recs = model.recommend(histories, k=k, exclude_history=exclude_history)
        if len(recs) != len(histories):
            raise GenrecError(f"{self.name}.recommend returned {len(recs)} results for {len(histories)} histories")
        return [(recs.items[n], recs.scores[n], recs.why[n], recs.notes[n]) for n in range(len(histories))]

    # -- catalog: staying in step with the database -----------------------------------------------
    def sync(self, force: bool = False) -> None:
        """Apply item rows other servers (or this one, before a restart) wrote since ``self.seq``.
        Without ``force``, looks at most every ``refresh_seconds``."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return
        self._checked = now
        if not force:
            try:
                if self.store.catalog_seq() == self.seq:
                    return
            except Unavailable as e:  # reads go on with the view we have; writes will say 503
                log.warning("catalog refresh skipped: %s", e)
                return
        with self.catalog_lock:
            rows, seq = self.store.item_rows(since=self.seq)
            rows = [r for r in rows if self.row_seq.get(r.item_id) != r.seq]  # skip our own writes
            if rows:
                self._apply_rows(rows)
            self.seq = max(self.seq, seq)

    def _apply_rows(self, rows: list[ItemRow]) -> None:
        new = [r for r in rows if r.item_id not in self.catalog]
        changed = [r for r in rows if r.item_id in self.catalog]

        def apply(m: Any) -> None:
            if new:
                m.add_items([_to_item(r) for r in new])
            if changed:
                m.update_items([_to_item(r) for r in changed])

        edited = None
        if self.swaps:  # re-index a copy while recommendations go on, then swap it in
            edited = edit_copy(self.model)
            apply(edited)
        with self.lock:
            self.state.changed()
            try:
                if edited is not None:
                    self.model = edited
                else:
                    apply(self.model)
            finally:
                self.state.changed()
        self.state.mark(deleted=[r.item_id for r in rows if r.deleted],
                        undeleted=[r.item_id for r in rows if not r.deleted],
                        api=[r.item_id for r in rows if r.origin == "api"])
        self.row_seq.update({r.item_id: r.seq for r in rows})
        self.state.reindex_titles()
        log.info("applied %d catalog change(s) from the database (%d new, %d deleted)",
                 len(rows), len(new), sum(r.deleted for r in rows))

    # -- catalog: reads and writes ----------------------------------------------------------------
    def item(self, item_id: str) -> dict:
        self.sync()
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
        new = Item(id=body.id, title=body.title, brand=body.brand, categories=tuple(body.categories), text=body.text)
        with self.catalog_lock:
            self.sync(force=True)
            if body.id in self.catalog:
                raise Conflict(f"item {body.id!r} already exists"
                               + (" (deleted; ids are not reused)" if body.id in self.state.deleted else ""))
            self._write(new, deleted=False, origin="api", add=True)
            self.state.mark(api=[body.id])
            it = self.catalog[body.id]
            if it.title:
                self.state.titles.setdefault(it.title, it.id)
            return self.item_out(it)

    def patch_item(self, item_id: str, patch: S.ItemPatch) -> dict:
        """Change an item in the model and the database, or in neither."""
        with self.catalog_lock:
            self.sync(force=True)
            old = self.state.live(item_id)
            if old is None:
                raise NotFound(f"unknown item {item_id!r}")
            self._write(_patched(old, patch), deleted=False, origin=self.state.source(item_id), old=old)
            self.state.reindex_titles()
            return self.item_out(self.catalog[item_id])

    def delete_item(self, item_id: str) -> None:
        """Delete in the database, then in memory (replacing two references, which cannot fail)."""
        with self.catalog_lock:
            self.sync(force=True)
            it = self.state.live(item_id)
            if it is None:
                raise NotFound(f"unknown item {item_id!r}")
            self._write(it, deleted=True, origin=self.state.source(item_id))
            self.state.mark(deleted=[item_id])
            self.state.reindex_titles()

    def _write(self, it: Item, *, deleted: bool, origin: str, add: bool = False, old: Item | None = None) -> None:
        """Store ``it`` (checking the row's version) and change the model to match, or neither.
        Caller holds ``catalog_lock``. ``old``: the item before a patch (the model changes);
        neither ``add`` nor ``old``: the model is not changed (a deletion)."""
        row = ItemRow(item_id=it.id, title=it.title, brand=it.brand, categories=list(it.categories), text=it.text,
                      origin=origin, deleted=deleted)
        expected = self.row_seq.get(it.id)
        change = (lambda m: m.add_items([it])) if add else (lambda m: m.update_items([it])) if old else None
        try:
            if change is not None and self.swaps:
                edited = edit_copy(self.model)
                with _model_refusal():
                    change(edited)  # the slow re-index, off the request path: recommends go on
                with self.store.write() as conn:
                    seq = self.store.save_item(conn, row, expected)
                with self.lock:
                    self.state.changed()
                    self.model = edited
                    self.state.changed()
            elif change is not None:
                self._write_in_place(row, expected, change, it, old)
                seq = self.row_seq[it.id]
            else:
                with self.store.write() as conn:
                    seq = self.store.save_item(conn, row, expected)
        except Conflict:
            self.sync(force=True)  # another server wrote first: take its version
            raise
        self.row_seq[it.id] = seq

    def _write_in_place(self, row: ItemRow, expected: int | None, change: Any, it: Item, old: Item | None) -> None:
        with self.lock:
            changing = False
            self.state.changed()
            try:
                with self.store.write() as conn:
                    seq = self.store.save_item(conn, row, expected)
                    changing = True
                    with _model_refusal():
                        change(self.model)  # raises -> the row rolls back
                self.row_seq[it.id] = seq
            except BaseException:
                if changing and old is not None:
                    self._restore(old)
                elif changing and it.id in self.catalog:  # added to the model but not committed: hide it
                    self.state.mark(deleted=[it.id])
                raise
            finally:
                self.state.changed()

    def _restore(self, old: Item) -> None:
        """Put ``old`` back in the model after a failed change (it may have been half applied)."""
        try:
            self.model.update_items([old])
        except Exception:  # noqa: BLE001 - the original error is the one to report
            log.exception("could not restore item %r in the model after a failed change", old.id)

    # -- events and users -------------------------------------------------------------------------
    def add_events(self, events: Sequence[S.EventIn]) -> dict:
        """Store events for live items, all or none: :class:`NotFound` (404) naming unknown or deleted items.
        A retried event (same ``event_id``) is stored once and answered with its first id."""
        with self.catalog_lock:  # no item is deleted between this check and the insert
            self.sync()
            bad = sorted({e.item for e in events if self.state.live(e.item) is None})
            if bad:
                raise NotFound(f"unknown or deleted item id(s): {', '.join(map(repr, bad[:10]))}"
                               + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
            now = time.time()
            ids, stored = self.store.add_events([(e.user, e.item, _seconds(e.time, now), e.event_id)
                                                 for e in events])
        return {"recorded": stored, "event_ids": ids, "duplicates": len(ids) - stored}

    def ref(self, item_id: str, **extra: Any) -> dict:
        it = self.catalog.get(item_id)
        return {"item_id": item_id, "title": it.title if it else None, **extra}

    def user_history(self, user_id: str, limit: int) -> dict:
        rows = self.store.history(user_id, limit)
        if rows is None:
            raise NotFound(f"unknown user {user_id!r}: no events recorded")
        return {"user": user_id, "count": len(rows),
                "events": [self.ref(r.item_id, time=to_datetime(r.ts), event_id=r.id) for r in rows]}

    def users(self, limit: int, prefix: str = "", cursor: str | None = None) -> dict:
        """A page of users, most recently active first, and the cursor of the next page (``None``
        on the last). A cursor is ``<last time as float.hex()>:<user id>``, the position after
        which the page starts."""
        after = None
        if cursor:
            ts, _, uid = cursor.partition(":")
            after = (float.fromhex(ts), uid)
        rows = self.store.list_users(limit + 1, prefix, after)
        page = rows[:limit]
        nxt = f"{page[-1][2].hex()}:{page[-1][0]}" if len(rows) > limit else None
        return {"users": [{"user": u, "events": n, "last_time": to_datetime(t)} for u, n, t in page],
                "next_cursor": nxt}

    def health(self) -> dict:
        ok = self.store.ping()
        return {"status": "ok" if ok else "degraded", "model": self.name,
                "items": len(self.catalog) - len(self.state.deleted), "deleted_items": len(self.state.deleted),
                "database": self.store.backend, "database_ok": ok}

    def recommend(self, req: S.RecommendRequest) -> dict:
        from genrec.serve.recommending import recommend

        self.sync()
        return recommend(self, req)


class _model_refusal:  # noqa: N801 - used as a context manager
    """A ValueError from the model's add/update (e.g. a title it cannot index) -> :class:`Rejected`."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> None:  # noqa: ANN001
        if exc is not None and isinstance(exc, ValueError):
            raise Rejected(f"the model rejected the change: {exc}") from exc


def _takes_exclude(model: Any) -> bool:
    """Whether ``model.recommend`` accepts ``exclude=`` (declared in its capabilities)."""
    return capabilities(model).takes_exclude


def _to_item(r: ItemRow) -> Item:
    return Item(id=r.item_id, title=r.title, brand=r.brand, categories=tuple(r.categories), text=r.text)


def _patched(old: Item, patch: S.ItemPatch) -> Item:
    """``old`` with the fields the patch sets (the schema has already refused nulls where not allowed)."""
    fields = patch.model_dump(exclude_unset=True)
    return Item(id=old.id, title=fields.get("title", old.title), brand=fields.get("brand", old.brand),
                categories=tuple(fields.get("categories", old.categories)), text=fields.get("text", old.text),
                extra=dict(old.extra))


def _seconds(t: Any, default: float) -> float:
    """Unix seconds of an event's validated time (a datetime; ``None`` for "now")."""
    return t.timestamp() if isinstance(t, datetime) else default


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
