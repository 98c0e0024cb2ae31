"""Request and response bodies of the HTTP API (pydantic 2); limits are enforced here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from genrec.text import clean_title

MAX_HISTORY = 1000  # items in an explicit history, and items of a stored history used to recommend
MAX_EVENTS = 1000  # events in one POST /events
MAX_K = 100
MAX_TITLE = 1000
MAX_TEXT = 10_000

_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_CONTROL)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
HistoryEntry = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- recommend -----------------------------------------------------------------------------------
class RecommendRequest(_In):
    """Give ``user`` (their stored history is used) or ``history`` (item ids or titles), not both."""

    user: Id | None = Field(None, description="A user id; the history is read from the database.")
    history: list[HistoryEntry] | None = Field(
        None, max_length=MAX_HISTORY,
        description="Explicit history, oldest first: item ids or item titles (matched exactly after cleaning).")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items to return.")
    exclude_ids: list[Id] = Field(default_factory=list, max_length=MAX_HISTORY,
                                  description="Item ids never to recommend.")
    category: ShortText | None = Field(None, description="Only items with this category (any level, case-insensitive).")
    exclude_history: bool = Field(True, description="Leave out items already in the history.")

    @model_validator(mode="after")
    def _one_source(self) -> "RecommendRequest":
        if (self.user is None) == (self.history is None):
            raise ValueError("give either 'user' or 'history' (a list of item ids or titles), not both and not neither")
        return self


class ItemRef(BaseModel):
    item_id: str
    title: str | None = None


class HistoryItem(ItemRef):
    time: datetime | None = None
    event_id: int | None = None


class RecommendedItem(BaseModel):
    rank: int
    item_id: str
    title: str
    score: float | None = Field(None, description="The model's score (null if not finite).")
    brand: str | None = None
    categories: list[str] = []
    queries: list[int] = Field([], description="Indices into `queries` of the generated queries that found this item.")


class QueryOut(BaseModel):
    query: str
    score: float | None = None
    items: list[str] = Field([], description="Recommended item ids this query contributed.")


class RecommendResponse(BaseModel):
    model: str
    user: str | None = None
    k: int
    history: list[HistoryItem] = Field([], description="The history used, oldest first.")
    unresolved: list[str] = Field([], description="History entries that matched no item id or title.")
    items: list[RecommendedItem]
    queries: list[QueryOut] | None = Field(None, description="GPT4Rec: the generated interest queries.")
    explanation: str | None = Field(None, description="A model's textual explanation, if it gives one.")
    filled_by_popularity: int | None = None
    why: Any = Field(None, description="The model's raw `why` (model-specific, JSON).")
    notes: list[str] = []


# -- events --------------------------------------------------------------------------------------
class EventIn(_In):
    user: Id
    item: Id
    time: datetime | None = Field(None, description="ISO 8601 or Unix seconds; default: now. Naive times are UTC.")

    @field_validator("time")
    @classmethod
    def _sane_time(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        if not (1970 <= v.year <= 2200):
            raise ValueError("time must be between 1970 and 2200")
        return v


class EventsIn(_In):
    events: list[EventIn] = Field(..., min_length=1, max_length=MAX_EVENTS)


class EventsOut(BaseModel):
    recorded: int
    event_ids: list[int]


class UserHistory(BaseModel):
    user: str
    count: int
    events: list[HistoryItem]


class UserSummary(BaseModel):
    user: str
    events: int
    last_time: datetime


# -- items ---------------------------------------------------------------------------------------
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]
Categories = Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=20)]


def _title_not_blank(v: str | None) -> str | None:
    if v is not None and not clean_title(v):
        raise ValueError("title is empty once cleaned (HTML tags, entities and whitespace removed)")
    return v


class ItemIn(_In):
    """A new item. The title is cleaned as the catalog cleans titles (HTML tags stripped, entities decoded)."""

    id: Id
    title: Title
    brand: ShortText | None = None
    categories: Categories = []
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""

    _title = field_validator("title")(_title_not_blank)


class ItemPatch(_In):
    title: Title | None = None
    brand: ShortText | None = None
    categories: Categories | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = None

    _title = field_validator("title")(_title_not_blank)

    @model_validator(mode="after")
    def _something(self) -> "ItemPatch":
        if not self.model_fields_set:
            raise ValueError("give at least one of title, brand, categories, text")
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("title cannot be null")
        return self


class ItemOut(BaseModel):
    id: str
    title: str
    brand: str | None = None
    categories: list[str] = []
    text: str = ""
    source: str = Field(..., description="'model' (from the model folder) or 'api' (added through the API).")


# -- service -------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    model: str
    items: int
    deleted_items: int
    database: str
    database_ok: bool
    auth: dict


class Error(BaseModel):
    detail: Any
