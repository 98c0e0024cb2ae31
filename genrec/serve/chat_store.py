"""``POST /chat``'s conversations in the service's database (the tables are in :mod:`.tables`).

A conversation id is 128 random bits (``secrets.token_hex``), made by the server: it is the only
key to a conversation, so it is not guessable. Turns are numbered 1, 2, ...; two requests racing
to add the same turn to one conversation cannot both win (a unique key): the loser gets
:class:`~genrec.serve.errors.Conflict` (409) and may retry.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from genrec.serve.errors import Conflict, NotFound
from genrec.serve.store import Store
from genrec.serve.tables import chat_conversations as convs
from genrec.serve.tables import chat_turns as turns


@dataclass
class Turn:
    turn: int
    message: str
    queries: list[dict[str, Any]]
    items: list[str]
    answer: str
    prompt: Any = None
    rank_prompt: Any = None
    created_at: float = 0.0


@dataclass
class Conversation:
    id: str
    user_id: str | None = None
    history: list[str] | None = None
    turns: list[Turn] = field(default_factory=list)
    created_at: float = 0.0


def new_conversation_id() -> str:
    return secrets.token_hex(16)


class ChatStore:
    """Conversations and their turns, through the service's :class:`~genrec.serve.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, conv_id: str, last: int | None = None) -> Conversation:
        """The conversation with its turns (the last ``last`` when given), oldest first;
        :class:`NotFound` for an unknown id."""
        with self.store.read() as c:
            row = c.execute(select(convs).where(convs.c.id == conv_id)).mappings().first()
            if row is None:
                raise NotFound(f"unknown conversation {conv_id!r} (start one by leaving conversation_id out)")
            q = select(turns).where(turns.c.conversation_id == conv_id).order_by(turns.c.turn.desc())
            if last is not None:
                q = q.limit(last)
            got = [_turn(r) for r in c.execute(q).mappings()]
        got.reverse()
        hist = json.loads(row["history"]) if row["history"] else None
        return Conversation(row["id"], row["user_id"], hist, got, float(row["created_at"]))

    def add_turn(self, conv_id: str | None, turn: Turn, *, user_id: str | None, history: list[str] | None) -> str:
        """Store ``turn`` (its number must be the next one) in ``conv_id``, or in a new conversation
        when ``conv_id`` is None; returns the conversation id."""
        now = time.time()
        try:
            with self.store.write() as c:
                if conv_id is None:
                    conv_id = new_conversation_id()
                    c.execute(convs.insert().values(id=conv_id, user_id=user_id, n_turns=0, created_at=now,
                                                    updated_at=now,
                                                    history=None if history is None else json.dumps(history)))
                res = c.execute(update(convs).where(convs.c.id == conv_id, convs.c.n_turns == turn.turn - 1)
                                .values(n_turns=turn.turn, updated_at=now))
                if res.rowcount != 1:
                    raise Conflict(f"conversation {conv_id!r} got another turn meanwhile; send the message again")
                c.execute(turns.insert().values(
                    conversation_id=conv_id, turn=turn.turn, message=turn.message,
                    queries=json.dumps(turn.queries, ensure_ascii=False), items=json.dumps(turn.items),
                    answer=turn.answer, created_at=now,
                    prompt=_json_or_none(turn.prompt), rank_prompt=_json_or_none(turn.rank_prompt)))
        except IntegrityError as e:
            raise Conflict(f"conversation {conv_id!r} got another turn meanwhile; send the message again") from e
        return conv_id

    def delete(self, conv_id: str) -> None:
        """Forget a conversation and its turns; :class:`NotFound` for an unknown id."""
        with self.store.write() as c:
            c.execute(delete(turns).where(turns.c.conversation_id == conv_id))
            if c.execute(delete(convs).where(convs.c.id == conv_id)).rowcount != 1:
                raise NotFound(f"unknown conversation {conv_id!r}")


def _json_or_none(x: Any) -> str | None:
    return None if x is None else json.dumps(x, ensure_ascii=False)


def _turn(r: Any) -> Turn:
    def loads(col: str) -> Any:
        return None if r[col] is None else json.loads(r[col])

    return Turn(int(r["turn"]), r["message"], json.loads(r["queries"]), json.loads(r["items"]), r["answer"],
                prompt=loads("prompt"), rank_prompt=loads("rank_prompt"), created_at=float(r["created_at"]))
