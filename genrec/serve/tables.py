"""The service's tables (SQLAlchemy Core) and the in-place upgrade of a database made by an
earlier version (columns and indexes added; nothing dropped).

- ``users(user_id, created_at, n_events, last_ts)``: everyone with at least one event, with
  their event count and latest event time kept up to date by every insert, so ``GET /users``
  reads one indexed table (``ix_users_last``) instead of grouping the events.
- ``events(id, user_id, item_id, ts, received_at, client_id)``: one row per interaction, only
  ever inserted. ``client_id`` (unique when given) makes a retried event idempotent.
- ``items(item_id, ..., seq)``: every item added, changed or deleted through the API. ``seq`` is
  the value of ``catalog_seq`` when the row was last written: the row's version for optimistic
  concurrency, and how a server finds the rows changed since it last looked.
- ``catalog_seq(id=1, seq)``: a counter bumped by every catalog write.
- ``chat_conversations(id, user_id, history, n_turns, ...)`` and ``chat_turns(conversation_id,
  turn, message, queries, items, answer, prompt, rank_prompt, ...)``: ``POST /chat``'s multi-turn
  context (:mod:`genrec.serve.chat_store`), with the exact prompts each turn sent (the query prompt,
  and the ranking prompt when the LLM re-ordered the candidates); deleting a conversation deletes
  its turns.

The upgrade (:func:`create_or_upgrade`, at every start) adds what a database of an earlier
version lacks: ``users.n_events`` and ``users.last_ts`` (filled from the events),
``events.client_id``, ``items.seq``, ``chat_turns.rank_prompt`` (null for the turns stored before
it), and the indexes.
"""

from __future__ import annotations

import logging

from sqlalchemy import (BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, inspect, text)
from sqlalchemy.engine import Engine

log = logging.getLogger("genrec.serve")
ID_LEN = 200

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("user_id", String(ID_LEN), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("n_events", Integer, nullable=False, server_default="0"),
    Column("last_ts", Float, nullable=True),
    Index("ix_users_last", "last_ts", "user_id"),
)

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(ID_LEN), ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("item_id", String(ID_LEN), nullable=False),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("client_id", String(ID_LEN), nullable=True),
    Index("ix_events_user_ts", "user_id", "ts", "id"),
    Index("ux_events_client_id", "client_id", unique=True),
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
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Index("ix_items_seq", "seq"),
)

catalog_seq = Table(
    "catalog_seq", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

chat_conversations = Table(
    "chat_conversations", metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(ID_LEN), nullable=True),
    Column("history", Text, nullable=True),  # JSON list of item ids, for a conversation started with one
    Column("n_turns", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

chat_turns = Table(
    "chat_turns", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("conversation_id", String(64), ForeignKey("chat_conversations.id", ondelete="CASCADE"), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("queries", Text, nullable=False),  # JSON list of {"query", "source"}
    Column("items", Text, nullable=False),  # JSON list of the item ids answered
    Column("answer", Text, nullable=False),
    Column("prompt", Text, nullable=True),  # JSON: the exact prompt sent to the LLM, or null
    Column("rank_prompt", Text, nullable=True),  # JSON: the exact ranking prompt (--chat-llm-rank), or null
    Column("created_at", Float, nullable=False),
    Index("ux_chat_turns_conv_turn", "conversation_id", "turn", unique=True),
)

# Columns added since the first release, with the SQL type to add them as.
_ADDED = {"users": {"n_events": "INTEGER NOT NULL DEFAULT 0", "last_ts": "FLOAT"},
          "events": {"client_id": f"VARCHAR({ID_LEN})"},
          "items": {"seq": "BIGINT NOT NULL DEFAULT 0"},
          "chat_turns": {"rank_prompt": "TEXT"}}


def create_or_upgrade(engine: Engine) -> None:
    """Create missing tables; add missing columns and indexes to tables of an earlier version."""
    metadata.create_all(engine)
    insp = inspect(engine)
    with engine.begin() as c:
        for table, cols in _ADDED.items():
            have = {col["name"] for col in insp.get_columns(table)}
            for name, sql in cols.items():
                if name not in have:
                    log.info("upgrading the database: adding %s.%s", table, name)
                    c.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {sql}"))
                    if (table, name) == ("users", "n_events"):
                        c.execute(text("UPDATE users SET n_events = (SELECT count(*) FROM events e WHERE "
                                       "e.user_id = users.user_id), last_ts = (SELECT max(ts) FROM events e "
                                       "WHERE e.user_id = users.user_id)"))
        for t in (users, events, items):
            for ix in t.indexes:
                ix.create(c, checkfirst=True)
        if c.execute(text("SELECT count(*) FROM catalog_seq")).scalar_one() == 0:
            start = c.execute(text("SELECT coalesce(max(seq), 0) FROM items")).scalar_one()
            c.execute(catalog_seq.insert().values(id=1, seq=int(start)))
