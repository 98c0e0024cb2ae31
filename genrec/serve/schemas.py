"""Request and response bodies of the HTTP API (pydantic 2); limits are enforced here."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from genrec.text import clean_title

MAX_HISTORY = 1000  # items in an explicit history, and items of a stored history used to recommend
MAX_EVENTS = 1000  # events in one POST /events
MAX_K = 100
MAX_TITLE = 1000
MAX_TEXT = 10_000

# Control characters (C0, DEL, C1). PostgreSQL refuses NUL in text (a DataError, so a 500), and
# none of them belong in an id or a label. Checked by hand rather than with a `pattern`
# constraint, whose error message would only quote the regex.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_WS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, newline, CR allowed


def _refuse(rx: re.Pattern, hint: str = ""):
    """A validator returning its string unchanged, or raising ValueError at the first ``rx`` match."""
    def check(v: str) -> str:
        m = rx.search(v)
        if m:
            raise ValueError(f"control character U+{ord(m.group()):04X} at position {m.start()} is not allowed{hint}")
        return v
    return check


no_control = _refuse(_CONTROL)
no_control_but_whitespace = _refuse(_CONTROL_BUT_WS, " (only tab, newline and carriage return are)")


Id = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(no_control)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(no_control)]
HistoryEntry = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE),
                         AfterValidator(no_control_but_whitespace)]
NoControl = Annotated[str, AfterValidator(no_control)]  # path and query parameters (user and item ids, prefixes)


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


# -- why (the typed explanation of genrec.core.why, as JSON) -----------------------------------------
class QueryOut(BaseModel):
    """A generated query (``genrec.core.why.Query``)."""

    query: str
    score: float | None = Field(None, description="The model's score for the query (null if not finite).")
    items: list[str] = Field([], description="Recommended item ids this query contributed.")


class EvidenceOut(BaseModel):
    """A fact an explanation cites (``genrec.core.why.Evidence``)."""

    kind: Literal["history_item", "attribute", "query"]
    value: str
    field: str | None = None
    item_id: str | None = None


class ExplanationOut(BaseModel):
    """A reason for one recommended item, with its evidence (``genrec.core.why.Explanation``)."""

    item_id: str
    text: str
    evidence: list[EvidenceOut] = []


class WhyOut(BaseModel):
    """Why the model recommended this list (``genrec.core.why.Why``), restricted to the items
    returned: queries list only returned items, and ``filled_by_popularity`` counts the
    returned items no query accounts for."""

    queries: list[QueryOut] = Field([], description="Generated queries (GPT4Rec, title-bm25), in the model's order.")
    explanations: list[ExplanationOut] = []
    profile: str | None = Field(None, description="A user profile in words, when the model writes one.")
    filled_by_popularity: int = 0
    extra: dict[str, Any] | None = Field(None, description="Model-specific details (JSON).")


class RecommendedItem(BaseModel):
    rank: int
    item_id: str
    title: str
    score: float | None = Field(None, description="The model's score (null if not finite).")
    brand: str | None = None
    categories: list[str] = []
    queries: list[int] = Field([], description="Indices into `why.queries` of the queries that found this item.")
    explanation: ExplanationOut | None = None


class RecommendResponse(BaseModel):
    model: str
    user: str | None = None
    k: int
    history: list[HistoryItem] = Field([], description="The history used, oldest first.")
    unresolved: list[str] = Field([], description="History entries that matched no item id or title.")
    items: list[RecommendedItem]
    why: WhyOut
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
Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE),
                  AfterValidator(no_control_but_whitespace)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(no_control_but_whitespace)]
Categories = Annotated[list[ShortText], Field(max_length=20)]


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
    text: Text = ""

    _title = field_validator("title")(_title_not_blank)


_CLEAR = {"title": "a title is required", "categories": "send [] to clear them", "text": 'send "" to clear it'}


class ItemPatch(_In):
    """The fields to change; fields left out keep their value. ``brand: null`` clears the brand;
    ``title``, ``categories`` and ``text`` cannot be null (422)."""

    title: Title | None = Field(None, description="Not null.")
    brand: ShortText | None = Field(None, description="null clears the brand.")
    categories: Categories | None = Field(None, description="Not null; [] clears them.")
    text: Text | None = Field(None, description='Not null; "" clears it.')

    _title = field_validator("title")(_title_not_blank)

    @field_validator("title", "categories", "text", mode="before")
    @classmethod
    def _not_null(cls, v: Any, info: Any) -> Any:
        if v is None:  # only an explicit null gets here: defaults are not validated
            raise ValueError(f"{info.field_name} cannot be null ({_CLEAR[info.field_name]})")
        return v

    @model_validator(mode="after")
    def _something(self) -> "ItemPatch":
        if not self.model_fields_set:
            raise ValueError("give at least one of title, brand, categories, text")
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


class FieldError(BaseModel):
    loc: list[str | int] = Field(..., description="Where: e.g. [\"body\", \"events\", 0, \"item\"].")
    msg: str
    type: str


class Error(BaseModel):
    """Every error answer (4xx and 5xx) has this body."""

    detail: str = Field(..., description="What went wrong, in one sentence.")
    errors: list[FieldError] = Field([], description="For 422 on malformed input: one entry per invalid field.")
