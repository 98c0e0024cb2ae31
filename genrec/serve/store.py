"""Persistence for the service: users' events and catalog changes, through SQLAlchemy 2.x.

SQLite file by default (WAL journal, foreign keys on, ``synchronous=FULL`` so an acknowledged
write survives a crash, write transactions started with ``BEGIN IMMEDIATE`` so concurrent
writers queue instead of failing); PostgreSQL by URL (``postgresql://...``, driven by psycopg 3).

Tables:
- ``users(user_id)``: everyone who has at least one event.
- ``events(id, user_id, item_id, ts, received_at)``: one row per interaction. Rows are only ever
  inserted, so concurrent writes for the same user cannot overwrite each other.
- ``items(item_id, ...)``: every item added, changed or deleted through the API (``origin`` is
  ``api`` for new items, ``model`` for changes to items of the model folder's catalog). On start
  the service re-applies these rows to the loaded model.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from sqlalchemy import (BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, create_engine, event, func, select, text, update)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError

from genrec.errors import GenrecError
from genrec.serve.errors import Conflict

ID_LEN = 200

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("user_id", String(ID_LEN), primary_key=True),
    Column("created_at", Float, nullable=False),
)

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(ID_LEN), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("item_id", String(ID_LEN), nullable=False),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Index("ix_events_user_ts", "user_id", "ts", "id"),
)

items = Table(
    "items", metadata,
    Column("item_id", String(ID_LEN), primary_key=True),
    Column("title", Text, nullable=False),
    Column("brand", Text, nullable=True),
    Column("categories", Text, nullable=False, default="[]"),
    Column("text", Text, nullable=False, default=""),
    Column("origin", String(8), nullable=False),  # "api" (new item) | "model" (change to a model item)
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


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
            metadata.create_all(self.engine)
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
        with self.engine.connect() as conn:
            conn.execution_options(genrec_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

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
    def add_events(self, rows: Iterable[tuple[str, str, float]]) -> list[int]:
        """Insert ``(user, item, ts)`` rows atomically (all or none); returns their event ids."""
        rows = list(rows)
        now = time.time()
        ids: list[int] = []
        with self.write() as c:
            for u in dict.fromkeys(r[0] for r in rows):
                c.execute(self._insert_ignore(users, {"user_id": u, "created_at": now}))
            if rows:
                res = c.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True),
                                [{"user_id": u, "item_id": i, "ts": ts, "received_at": now} for u, i, ts in rows])
                ids = [int(x) for x in res.scalars()]
        return ids

    def _insert_ignore(self, table: Table, values: dict):
        if self.backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
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

    def list_users(self, limit: int = 100, prefix: str = "") -> list[tuple[str, int, float]]:
        """``(user, number of events, last event time)``, most recently active first."""
        with self.read() as c:
            q = (select(events.c.user_id, func.count().label("n"), func.max(events.c.ts).label("last"))
                 .group_by(events.c.user_id).order_by(func.max(events.c.ts).desc(), events.c.user_id)
                 .limit(limit))
            if prefix:
                q = q.where(events.c.user_id.startswith(prefix, autoescape=True))
            return [(r.user_id, int(r.n), float(r.last)) for r in c.execute(q)]

    def count_events(self) -> int:
        with self.read() as c:
            return int(c.execute(select(func.count()).select_from(events)).scalar_one())

    # -- items ------------------------------------------------------------------------------------
    def item_rows(self, conn: Connection | None = None) -> list[ItemRow]:
        """Every item changed through the API, in the order they were first written."""
        def run(c: Connection) -> list[ItemRow]:
            q = select(items).order_by(items.c.created_at, items.c.item_id)
            return [_row(r) for r in c.execute(q).mappings()]
        if conn is not None:
            return run(conn)
        with self.read() as c:
            return run(c)

    def get_item_row(self, conn: Connection, item_id: str) -> ItemRow | None:
        r = conn.execute(select(items).where(items.c.item_id == item_id)).mappings().first()
        return None if r is None else _row(r)

    def insert_item(self, conn: Connection, row: ItemRow) -> None:
        """Insert ``row`` in the caller's transaction; :class:`Conflict` if the id is taken."""
        now = time.time()
        values = _values(row)
        values.update(created_at=now, updated_at=now)
        try:
            with conn.begin_nested():
                conn.execute(items.insert().values(**values))
        except IntegrityError as e:
            raise Conflict(f"item {row.item_id!r} already exists") from e

    def update_item(self, conn: Connection, row: ItemRow) -> None:
        values = _values(row)
        values.pop("item_id")
        values.pop("origin")
        values["updated_at"] = time.time()
        conn.execute(update(items).where(items.c.item_id == row.item_id).values(**values))


def _values(row: ItemRow) -> dict:
    return {"item_id": row.item_id, "title": row.title, "brand": row.brand,
            "categories": json.dumps(list(row.categories), ensure_ascii=False), "text": row.text or "",
            "origin": row.origin, "deleted": bool(row.deleted)}


def _row(r) -> ItemRow:
    return ItemRow(item_id=r["item_id"], title=r["title"], brand=r["brand"],
                   categories=list(json.loads(r["categories"] or "[]")), text=r["text"] or "",
                   origin=r["origin"], deleted=bool(r["deleted"]), created_at=float(r["created_at"]),
                   updated_at=float(r["updated_at"]))


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
