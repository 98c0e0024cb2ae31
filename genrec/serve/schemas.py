"""Request and response bodies of the HTTP API (pydantic 2); limits are enforced here."""

from __future__ import annotations

import re
import unicodedata
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
# constraint alone, whose error message would only quote the regex; the pattern is still put in
# the OpenAPI schema so that the schema states the rule.
_CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
_CONTROL_BUT_WS_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # tab, newline, CR allowed
# Unicode format characters (category Cf, Unicode 14: soft hyphen, zero-width space/joiners,
# direction marks, BOM, tags...): invisible, so an id containing one looks like another id.
# Listed rather than computed from ``unicodedata`` so the rule (and the schema) does not change
# with the Python version.
_FORMAT_CLASS = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
                 "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
                 "\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
                 "\U000e0020-\U000e007f")
_CONTROL = re.compile(f"[{_CONTROL_CLASS}]")
_CONTROL_BUT_WS = re.compile(f"[{_CONTROL_BUT_WS_CLASS}]")
_INVISIBLE = re.compile(f"[{_CONTROL_CLASS}{_FORMAT_CLASS}]")
ID_PATTERN = f"^[^{_CONTROL_CLASS}{_FORMAT_CLASS}]*$"
LABEL_PATTERN = f"^[^{_CONTROL_CLASS}]*$"
TEXT_PATTERN = f"^[^{_CONTROL_BUT_WS_CLASS}]*$"


def _refuse(rx: re.Pattern, hint: str = ""):
    """A validator returning its string unchanged, or raising ValueError at the first ``rx`` match."""
    def check(v: str) -> str:
        m = rx.search(v)
        if m:
            c = m.group()
            kind = "format (invisible) character" if unicodedata.category(c) == "Cf" else "control character"
            raise ValueError(f"{kind} U+{ord(c):04X} at position {m.start()} is not allowed{hint}")
        return v
    return check


no_control = _refuse(_CONTROL)
no_control_but_whitespace = _refuse(_CONTROL_BUT_WS, " (only tab, newline and carriage return are)")
visible_id = _refuse(_INVISIBLE, " in an id")


def _pattern(p: str) -> Any:
    return Field(json_schema_extra={"pattern": p})


Id = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(visible_id), _pattern(ID_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(no_control), _pattern(LABEL_PATTERN)]
HistoryEntry = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE),
                         AfterValidator(no_control_but_whitespace), _pattern(TEXT_PATTERN)]
# Path and query parameters: user and item ids (no invisible characters), prefixes.
PathId = Annotated[str, AfterValidator(visible_id), _pattern(ID_PATTERN)]
NoControl = Annotated[str, AfterValidator(no_control), _pattern(LABEL_PATTERN)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- recommend -----------------------------------------------------------------------------------
class RecommendRequest(_In):
    """Give ``user`` (their stored history is used) or ``history`` (item ids or titles), not both."""

    # Exactly one of the two, stated in the schema (oneOf) as well as checked: neither is nullable.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["user"], "not": {"required": ["history"]}},
        {"required": ["history"], "not": {"required": ["user"]}}]})

    # Not nullable in the schema; None only as the default of an absent field (never validated).
    user: Id = Field(None, description="A user id; the history is read from the database.")  # type: ignore[assignment]
    history: list[HistoryEntry] = Field(
        None, max_length=MAX_HISTORY,  # type: ignore[arg-type]
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
MAX_UNIX = 7_258_118_400  # 2200-01-01 in Unix seconds
UnixSeconds = Annotated[float, Field(ge=0, le=MAX_UNIX, allow_inf_nan=False)]


class EventIn(_In):
    user: Id
    item: Id
    time: UnixSeconds | datetime | None = Field(
        None, description="ISO 8601 (naive times are UTC), or Unix seconds from 0 to 7258118400 (1970-2200); "
                          "default: now. Numbers are never read as milliseconds: a larger number is refused.")
    event_id: Id | None = Field(None, description="The client's id for this event: a retried event with the same "
                                                  "id is stored once, and its stored id is returned again.")

    @field_validator("time", mode="before")
    @classmethod
    def _seconds_only(cls, v: Any) -> Any:
        """A number (or a numeric string) is Unix seconds; pydantic would read a large one as
        milliseconds, a guess this refuses."""
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not 0 <= v <= MAX_UNIX:
                hint = " (milliseconds? divide by 1000)" if MAX_UNIX < v <= MAX_UNIX * 1000 else ""
                raise ValueError(f"time {v} is not Unix seconds between 0 and {MAX_UNIX} (1970-2200){hint}; "
                                 "or give ISO 8601")
            return float(v)
        return v

    @field_validator("time")
    @classmethod
    def _as_datetime(cls, v: float | datetime | None) -> datetime | None:
        if v is None or isinstance(v, datetime):
            return v if v is None or v.tzinfo is not None else v.replace(tzinfo=timezone.utc)
        return datetime.fromtimestamp(v, tz=timezone.utc)


class EventsIn(_In):
    events: list[EventIn] = Field(..., min_length=1, max_length=MAX_EVENTS)


class EventsOut(BaseModel):
    recorded: int = Field(..., description="Events stored by this request (retried ones excluded).")
    event_ids: list[int] = Field(..., description="The stored id of each event, in the request's order "
                                                  "(for a retried event_id: the id stored the first time).")
    duplicates: int = Field(0, description="Events whose event_id was already stored (not stored again).")


class UserHistory(BaseModel):
    user: str
    count: int
    events: list[HistoryItem]


class UserSummary(BaseModel):
    user: str
    events: int
    last_time: datetime


class UsersPage(BaseModel):
    users: list[UserSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


# A position in the users list: the last event time (float.hex) and the user id after which a page
# starts. Every string matching the pattern is a valid position.
CURSOR_PATTERN = f"^-?0x[01]\\.[0-9a-f]{{0,13}}p[+-][0-9]{{1,3}}:[^{_CONTROL_CLASS}]{{0,200}}$"
Cursor = Annotated[str, StringConstraints(pattern=CURSOR_PATTERN, max_length=240)]


# -- items ---------------------------------------------------------------------------------------
# A title must keep a letter or digit once HTML tags and entities are removed; the schema states a
# simpler rule that implies it: a word character before any '<' or '&'.
TITLE_PATTERN = f"^[^<&{_CONTROL_BUT_WS_CLASS}]*\\w[^{_CONTROL_BUT_WS_CLASS}]*$"
_TITLE_RX = re.compile(r"^[^<&]*\w")


def _title_has_word(v: str) -> str:
    if not _TITLE_RX.search(v):
        raise ValueError("a title needs a letter or digit before any '<' or '&' (HTML is stripped from titles)")
    return v


Title = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE),
                  AfterValidator(no_control_but_whitespace), AfterValidator(_title_has_word),
                  _pattern(TITLE_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(no_control_but_whitespace),
                 _pattern(TEXT_PATTERN)]
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

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Not nullable in the schema; None only as the default of an absent field (never validated).
    title: Title = Field(None, description="Not null.")  # type: ignore[assignment]
    brand: ShortText | None = Field(None, description="null clears the brand.")
    categories: Categories = Field(None, description="Not null; [] clears them.")  # type: ignore[arg-type]
    text: Text = Field(None, description='Not null; "" clears it.')  # type: ignore[assignment]

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
    chat: dict | None = Field(None, description="POST /chat: its LLM (null: none), whether prompts leave the process "
                                                "(remote), what they may hold, where the LLM cache writes (null: off).")


class FieldError(BaseModel):
    loc: list[str | int] = Field(..., description="Where: e.g. [\"body\", \"events\", 0, \"item\"].")
    msg: str
    type: str


class Error(BaseModel):
    """Every error answer (4xx and 5xx) has this body."""

    detail: str = Field(..., description="What went wrong, in one sentence.")
    errors: list[FieldError] = Field([], description="For 422 on malformed input: one entry per invalid field.")
