"""Request and response bodies of ``POST /chat``, ``POST /chat/preview`` and ``/chat/{id}``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genrec.serve.schemas import (_CONTROL_BUT_WS_CLASS, MAX_HISTORY, MAX_K, ExplanationOut, HistoryEntry, Id, ItemRef,
                                  ShortText, WhyOut, no_control_but_whitespace)

MAX_MESSAGE = 1000  # characters in one message
CONVERSATION_PATTERN = "^[0-9a-f]{32}$"
# At least one character that is not whitespace; no control characters but tab, newline and CR.
MESSAGE_PATTERN = f"^[^{_CONTROL_BUT_WS_CLASS}]*[^\\s{_CONTROL_BUT_WS_CLASS}][^{_CONTROL_BUT_WS_CLASS}]*$"
_VISIBLE = re.compile(r"\S")


class ChatRequest(BaseModel):
    """A message, and whose it is: ``user`` (their stored history is used), ``history`` (item ids
    or titles), or neither (no personal candidates); not both. ``conversation_id`` continues a
    conversation (it keeps the user or history it was started with)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"not": {"required": ["user", "history"]}})

    message: str = Field(..., min_length=1, max_length=MAX_MESSAGE, json_schema_extra={"pattern": MESSAGE_PATTERN},
                         description=f"What the user asks for, in their words (at most {MAX_MESSAGE} characters). "
                                     "Treated as data: it is quoted in the LLM prompt, never obeyed.")
    # Not nullable in the schema; None only as the default of an absent field (never validated).
    user: Id = Field(None, description="A user id; their history is read from the database.")  # type: ignore[assignment]
    history: list[HistoryEntry] = Field(
        None, max_length=MAX_HISTORY,  # type: ignore[arg-type]
        description="Explicit history, oldest first: item ids or item titles.")
    conversation_id: str = Field(  # type: ignore[assignment]
        None, pattern=CONVERSATION_PATTERN, description="Continue this conversation (from an earlier answer).")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items to return.")
    exclude_ids: list[Id] = Field(default_factory=list, max_length=MAX_HISTORY, description="Item ids never to return.")
    category: ShortText | None = Field(None, description="Only items with this category (case-insensitive).")
    exclude_history: bool = Field(True, description="Leave out items already in the history.")

    @field_validator("message")
    @classmethod
    def _visible(cls, v: str) -> str:
        no_control_but_whitespace(v)
        if not _VISIBLE.search(v):
            raise ValueError("the message is empty (only whitespace)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "ChatRequest":
        if self.user is not None and self.history is not None:
            raise ValueError("give 'user' or 'history', not both")
        return self


class ChatQuery(BaseModel):
    query: str
    source: Literal["llm", "message", "context"] = Field(
        ..., description="llm: written by the LLM; message: the message itself; context: recent messages joined.")
    weight: float = Field(..., description="The weight of this query's lists in the fusion.")
    items: list[str] = Field([], description="Returned item ids this query's search found.")


class ChatItem(BaseModel):
    rank: int
    item_id: str
    title: str
    score: float = Field(..., description="The fused score (a weighted sum of normalised scores); when the LLM "
                                          "re-ordered the top items, their order is the LLM's, not the score's.")
    brand: str | None = None
    categories: list[str] = []
    sources: list[str] = Field([], description="Lists that had it: bm25, embedding, collaborative.")
    explanation: ExplanationOut


class LLMUse(BaseModel):
    """What the LLM was (or would be) sent. ``prompt`` is exactly what the backend received."""

    backend: str | None = Field(None, description="The LLM spec; null: no LLM (the message is the query).")
    remote: bool = Field(False, description="True when prompts leave this process (an OpenAI-compatible server).")
    used: bool = False
    prompt: Any = Field(None, description="The exact prompt: a list of chat messages or a text; null without an LLM.")
    sent: dict[str, bool] = Field(..., description="Whether the prompt may hold the user id and the user's own items.")
    error: str | None = None
    rank_prompt: Any = Field(None, description="The exact ranking prompt (--chat-llm-rank): the request and the top "
                                               "candidates' quoted titles labelled (A), (B), ...; null when the LLM "
                                               "does not rank. In a preview: for the candidates found without the "
                                               "LLM's query.")
    rank_error: str | None = Field(None, description="Why the ranking call failed (the items are then in fused order).")


class ChatResponse(BaseModel):
    conversation_id: str
    turn: int
    model: str
    user: str | None = None
    answer: str = Field(..., description="The reply, in fixed wording from what was done (not generated).")
    queries: list[ChatQuery]
    items: list[ChatItem]
    why: WhyOut
    history: list[ItemRef] = []
    ranking: str = Field(..., description="How the items were ranked (and whether the LLM re-ordered the top ones).")
    llm: LLMUse
    notes: list[str] = []


class ChatPreview(BaseModel):
    conversation_id: str | None = None
    turn: int
    llm: LLMUse
    notes: list[str] = []


class TurnOut(BaseModel):
    turn: int
    message: str
    answer: str
    queries: list[dict[str, str]]
    items: list[ItemRef]
    prompt: Any = Field(None, description="The exact prompt sent to the LLM on this turn (null without one).")
    rank_prompt: Any = Field(None, description="The exact ranking prompt sent on this turn (--chat-llm-rank); null "
                                               "when the LLM did not rank, and for turns stored before it was kept.")


class ConversationOut(BaseModel):
    conversation_id: str
    user: str | None = None
    turns: list[TurnOut]
