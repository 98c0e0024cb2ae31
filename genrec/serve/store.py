"""Persistence for the service: users' events and catalog changes, through SQLAlchemy 2.x.

SQLite file by default (WAL journal, foreign keys on, ``synchronous=FULL`` so an acknowledged
write survives a crash, write transactions started with ``BEGIN IMMEDIATE`` so concurrent
writers queue instead of failing); PostgreSQL by URL (``postgresql://...``, driven by psycopg 3).
The tables are described in :mod:`genrec.serve.tables`. A database that cannot be reached or
written while serving raises :class:`genrec.serve.errors.Unavailable` (503), never a raw driver
error.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import case, create_engine, event, func, or_, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

from genrec.errors import GenrecError
from genrec.serve.errors import Conflict, Unavailable
from genrec.serve.tables import catalog_seq, create_or_upgrade, events, items, users

ID_LEN = 200
_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


class StoreError(GenrecError):
    """The database could not be opened or used."""


@dataclass
class ItemRow:
    item_id: str
    title: str
    brand: str | None = None
    categories: list[str] = field(default_factory=list)
    text: str = ""
    origin: str = "api"
    deleted: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    seq: int = 0


@dataclass
class EventRow:
    id: int
    user_id: str
    item_id: str
    ts: float


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3 (the driver genrec installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Store:
    """A small repository over the three tables; every write is one transaction."""

    def __init__(self, url: str = "sqlite:///genrec.db") -> None:
        self.url = normalise_url(url)
        try:
            u = make_url(self.url)
        except ArgumentError as e:
            raise StoreError(f"bad database URL {url!r}: {e}") from e
        self.backend = u.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {self.backend!r}: use sqlite:///FILE or postgresql://...")
        if self.backend == "sqlite" and u.database in (None, "", ":memory:"):
            raise StoreError("an in-memory SQLite database would lose every write on restart; give a file: "
                             "sqlite:///path/to/genrec.db")
        try:
            if self.backend == "sqlite":
                self.engine: Engine = create_engine(self.url, pool_size=8, max_overflow=8, pool_timeout=60,
                                                    connect_args={"timeout": 60, "check_same_thread": False})
                _sqlite_pragmas(self.engine)
            else:
                self.engine = create_engine(self.url, pool_size=8, max_overflow=8, pool_timeout=60,
                                            pool_pre_ping=True)
            create_or_upgrade(self.engine)
        except ImportError as e:
            raise StoreError(f"the driver for {self.backend} is not installed ({e}); for PostgreSQL: "
                             "pip install 'psycopg[binary]'") from e
        except (OperationalError, NoSuchModuleError) as e:
            raise StoreError(f"cannot open database {u.render_as_string(hide_password=True)}: "
                             f"{getattr(e, 'orig', e)}") from e

    # -- transactions -----------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._unavailable_if_down("write to"):
            with self.engine.connect() as conn:
                conn.execution_options(genrec_write=True)
                with conn.begin():
                    yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._unavailable_if_down("read"):
            with self.engine.connect() as conn:
                with conn.begin():
                    yield conn

    @contextmanager
    def _unavailable_if_down(self, what: str) -> Iterator[None]:
        try:
            yield
        except _DOWN as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0][:200]
            raise Unavailable(f"cannot {what} the database ({self.backend}): {reason}") from e

    def ping(self) -> bool:
        try:
            with self.read() as c:
                c.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            return False

    def close(self) -> None:
        self.engine.dispose()

    # -- events -----------------------------------------------------------------------------------
    def add_events(self, rows: list[tuple[str, str, float, str | None]]) -> tuple[list[int], int]:
        """Insert ``(user, item, ts, client_id)`` rows atomically (all or none).

        Returns the stored id of each row and how many were stored now. A row whose ``client_id``
        is stored already (a retry) is not stored again: its first id is returned, or
        :class:`Conflict` if that event was for another user or item. Two retries racing on
        PostgreSQL: the loser's unique-key violation rolls back and the transaction is redone."""
        for attempt in range(3):
            try:
                return self._add_events(rows)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add_events(self, rows: list[tuple[str, str, float, str | None]]) -> tuple[list[int], int]:
        now = time.time()
        given = [r[3] for r in rows if r[3] is not None]
        with self.write() as c:
            known: dict[str, tuple[int, str, str]] = {}
            for chunk in range(0, len(given), 500):
                q = select(events.c.client_id, events.c.id, events.c.user_id, events.c.item_id).where(
                    events.c.client_id.in_(given[chunk:chunk + 500]))
                known.update({r.client_id: (int(r.id), r.user_id, r.item_id) for r in c.execute(q)})
            todo: list[tuple[str, str, float, str | None]] = []
            first: dict[str, tuple[str, str]] = {}
            for u, i, ts, cid in rows:
                if cid is not None:
                    seen = known.get(cid)
                    if seen is not None and (seen[1], seen[2]) != (u, i):
                        raise Conflict(f"event_id {cid!r} is already stored for user {seen[1]!r} and item "
                                       f"{seen[2]!r}; an event id names one event")
                    if cid in first and first[cid] != (u, i):
                        raise Conflict(f"event_id {cid!r} is given twice in this request for different events")
                    if seen is not None or cid in first:
                        continue
                    first[cid] = (u, i)
                todo.append((u, i, ts, cid))
            new_ids: list[int] = []
            if todo:
                for u in dict.fromkeys(r[0] for r in todo):
                    mine = [r[2] for r in todo if r[0] == u]
                    c.execute(self._insert_ignore(users, {"user_id": u, "created_at": now}))
                    last = max(mine)
                    c.execute(update(users).where(users.c.user_id == u).values(
                        n_events=users.c.n_events + len(mine),
                        last_ts=case((or_(users.c.last_ts.is_(None), users.c.last_ts < last), last),
                                     else_=users.c.last_ts)))
                res = c.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True),
                                [{"user_id": u, "item_id": i, "ts": ts, "received_at": now, "client_id": cid}
                                 for u, i, ts, cid in todo])
                new_ids = [int(x) for x in res.scalars()]
        by_cid = {cid: v[0] for cid, v in known.items()}
        it = iter(new_ids)
        out = []
        for u, i, ts, cid in rows:
            if cid is not None and cid in by_cid:
                out.append(by_cid[cid])
            else:
                nid = next(it)
                out.append(nid)
                if cid is not None:
                    by_cid[cid] = nid
        return out, len(new_ids)

    def _insert_ignore(self, table: Any, values: dict) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` in this backend's dialect."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = sqlite.insert if self.backend == "sqlite" else postgresql.insert
        return insert(table).values(**values).on_conflict_do_nothing()

    def history(self, user_id: str, limit: int | None = None) -> list[EventRow] | None:
        """The user's events, oldest first (the last ``limit``); ``None`` for an unknown user."""
        with self.read() as c:
            q = (select(events.c.id, events.c.user_id, events.c.item_id, events.c.ts)
                 .where(events.c.user_id == user_id).order_by(events.c.ts.desc(), events.c.id.desc()))
            if limit is not None:
                q = q.limit(limit)
            rows = [EventRow(int(r.id), r.user_id, r.item_id, float(r.ts)) for r in c.execute(q)]
            if not rows and c.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first() is None:
                return None
        rows.reverse()
        return rows

    def list_users(self, limit: int = 100, prefix: str = "", after: tuple[float, str] | None = None
                   ) -> list[tuple[str, int, float]]:
        """``(user, number of events, last event time)``, most recently active first (ties by id),
        starting after the position ``after = (last time, user)``: keyset pagination on the
        ``ix_users_last`` index, so a page costs the same however many users there are."""
        with self.read() as c:
            q = (select(users.c.user_id, users.c.n_events, users.c.last_ts)
                 .where(users.c.n_events > 0)
                 .order_by(users.c.last_ts.desc(), users.c.user_id).limit(limit))
            if prefix:
                q = q.where(users.c.user_id.startswith(prefix, autoescape=True))
            if after is not None:
                ts, uid = after
                q = q.where(or_(users.c.last_ts < ts, (users.c.last_ts == ts) & (users.c.user_id > uid)))
            return [(r.user_id, int(r.n_events), float(r.last_ts)) for r in c.execute(q)]

    def count_events(self) -> int:
        with self.read() as c:
            return int(c.execute(select(func.count()).select_from(events)).scalar_one())

    # -- items ------------------------------------------------------------------------------------
    def catalog_seq(self) -> int:
        """The catalog's version: bumped by every item write, on every server sharing the database."""
        with self.read() as c:
            return int(c.execute(select(catalog_seq.c.seq).where(catalog_seq.c.id == 1)).scalar_one())

    def item_rows(self, since: int = 0) -> tuple[list[ItemRow], int]:
        """Item rows written after catalog version ``since`` (all with 0), oldest write first, and
        the catalog version they bring the reader to."""
        with self.read() as c:
            seq = int(c.execute(select(catalog_seq.c.seq).where(catalog_seq.c.id == 1)).scalar_one())
            q = select(items).where(items.c.seq > since).order_by(items.c.seq, items.c.created_at, items.c.item_id)
            return [_row(r) for r in c.execute(q).mappings()], seq

    def get_item_row(self, conn: Connection, item_id: str) -> ItemRow | None:
        r = conn.execute(select(items).where(items.c.item_id == item_id)).mappings().first()
        return None if r is None else _row(r)

    def _next_seq(self, conn: Connection) -> int:
        return int(conn.execute(update(catalog_seq).where(catalog_seq.c.id == 1)
                                .values(seq=catalog_seq.c.seq + 1).returning(catalog_seq.c.seq)).scalar_one())

    def save_item(self, conn: Connection, row: ItemRow, expected_seq: int | None) -> int:
        """Write ``row`` in the caller's transaction if the stored row is still the one this server
        read: version ``expected_seq``, or absent when ``None``. Otherwise :class:`Conflict` (another
        server changed it since). Returns the row's new version."""
        now = time.time()
        values = _values(row)
        seq = self._next_seq(conn)
        if expected_seq is None:
            values.update(created_at=now, updated_at=now, seq=seq)
            try:
                with conn.begin_nested():
                    conn.execute(items.insert().values(**values))
            except IntegrityError as e:
                raise Conflict(f"item {row.item_id!r} already exists" if row.origin == "api" else
                               f"item {row.item_id!r} was changed by another server; retry") from e
            return seq
        values.pop("item_id")
        values.pop("origin")
        values.update(updated_at=now, seq=seq)
        res = conn.execute(update(items).where(items.c.item_id == row.item_id, items.c.seq == expected_seq)
                           .values(**values))
        if res.rowcount != 1:
            raise Conflict(f"item {row.item_id!r} was changed by another server since this one read it; "
                           "its view is refreshed: retry")
        return seq


def _values(row: ItemRow) -> dict:
    return {"item_id": row.item_id, "title": row.title, "brand": row.brand,
            "categories": json.dumps(list(row.categories), ensure_ascii=False), "text": row.text or "",
            "origin": row.origin, "deleted": bool(row.deleted)}


def _row(r) -> ItemRow:
    return ItemRow(item_id=r["item_id"], title=r["title"], brand=r["brand"],
                   categories=list(json.loads(r["categories"] or "[]")), text=r["text"] or "",
                   origin=r["origin"], deleted=bool(r["deleted"]), created_at=float(r["created_at"]),
                   updated_at=float(r["updated_at"]), seq=int(r["seq"]))


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys, full fsync on commit, and ``BEGIN IMMEDIATE`` for write transactions."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("genrec_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")
