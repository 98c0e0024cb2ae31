"""A Dataset (catalog + sequences) and the configurable preprocessing of the papers."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace

from genrec.data import sequences as S
from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.errors import DataError


@dataclass(frozen=True)
class Preprocess:
    """Preprocessing steps, applied in this order.

    1. ``drop_bad_titles``: drop items whose (cleaned) title is empty or longer than
       ``max_title_chars`` (GPT4Rec searches titles, so such items cannot be retrieved).
    2. ``dedup``: keep the first occurrence of each item in a user's sequence.
    3. ``max_len``: keep each user's last ``max_len`` items.
    4. ``kcore``: iterated k-core filter (0 = off).
    5. ``min_user_len``: drop users with fewer items (a case needs a history and a target).

    The ``gpt4rec`` preset against GPT4Rec's Table 2 (Amazon Beauty: 22,254 users, 11,778 items,
    190,726 interactions, average length 7.439; 190,726 / 22,254 = 8.57, so the average cannot be
    of the same sequences as the counts). On our Beauty files (22,363 / 12,101 / 198,502), the
    reading that fits is: users, items and interactions are counted after the title filter and
    *before* truncation, the average length *after* truncation. Dropping titles over 200
    characters gives 22,254 users (exact), 11,785 items (+7), 190,750 interactions (+24) and an
    average length of 7.541 after truncation to 15 (+1.4%; truncating to 14 would give 7.450).
    A 400-character limit gives 22,354 / 12,028 / 197,164 / 7.721, and min_user_len 2 or 3, a
    5-core re-filter, or truncating before the title filter all fit worse; see
    benchmarks/results/datasets.md. ``gpt4rec-400`` keeps the 400-character variant.
    ``min_user_len=1`` matches the user count; one-item users give no evaluation case (the
    split counts them as ``cases_skipped_short``).
    """

    drop_bad_titles: bool = False
    max_title_chars: int = 400
    dedup: bool = True
    max_len: int | None = None
    kcore: int = 0
    min_user_len: int = 2
    name: str = "custom"

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preprocess] = {
    # GPT4Rec (Li et al. 2023), section 4.1: items with missing or over-long titles removed,
    # duplicates removed, sequences truncated to the latest 15 items. The 200-character limit and
    # min_user_len=1 reproduce Table 2's Beauty counts (see the Preprocess docstring).
    "gpt4rec": Preprocess(drop_bad_titles=True, max_title_chars=200, dedup=True, max_len=15, min_user_len=1,
                          name="gpt4rec"),
    # The same with a 400-character title limit (and users with >= 2 items).
    "gpt4rec-400": Preprocess(drop_bad_titles=True, max_title_chars=400, dedup=True, max_len=15, name="gpt4rec-400"),
    # The leave-one-out literature (SASRec, P5, GenRec): the 5-core files, with repeated items in a
    # sequence removed (Yelp has 11,859 repeat visits; kept, a target could sit in its own history).
    "standard": Preprocess(dedup=True, name="standard"),
    "none": Preprocess(dedup=False, min_user_len=1, name="none"),
}


def preset(name: str) -> Preprocess:
    from genrec.errors import UnknownNameError

    if name not in PRESETS:
        raise UnknownNameError("preprocessing preset", name, list(PRESETS))
    return PRESETS[name]


@dataclass
class Dataset:
    """A named catalog plus user sequences; every sequence item must be in the catalog."""

    name: str
    catalog: Catalog
    sequences: Sequences
    info: dict = field(default_factory=dict)
    synthetic: bool = False
    #: Explicit ratings ``{user: {item: rating}}`` when the files have them (MovieLens), else None
    #: (see :mod:`genrec.data.ratings`); preprocessing keeps them (lookups are by pair).
    ratings: dict[str, dict[str, float]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        missing = [i for i in self.sequences.item_set() if i not in self.catalog]
        if missing:
            raise DataError(f"{len(missing)} item ids in the sequences are not in the catalog "
                            f"(e.g. {', '.join(sorted(missing)[:5])})", path=self.name)

    def preprocess(self, p: Preprocess | str) -> "Dataset":
        """Return a new Dataset with ``p`` applied; the catalog keeps only items still used."""
        p = preset(p) if isinstance(p, str) else p
        seqs = self.sequences
        dropped_items = 0
        if p.drop_bad_titles:
            good = {it.id for it in self.catalog if it.title and len(it.title) <= p.max_title_chars}
            dropped_items = len(self.catalog) - len(good)
            seqs = S.keep_items(seqs, good, f"drop items with empty or >{p.max_title_chars}-char titles")
        if p.dedup:
            seqs = S.dedup(seqs)
        if p.max_len:
            seqs = S.truncate(seqs, p.max_len)
        if p.kcore:
            seqs = S.kcore(seqs, p.kcore)
        before = len(seqs)
        seqs = S.min_length(seqs, p.min_user_len)
        if before - len(seqs):
            warnings.warn(f"{self.name}: dropped {before - len(seqs)} users with fewer than "
                          f"{p.min_user_len} items after preprocessing", stacklevel=2)
        if not len(seqs):
            hint = (" (this dataset has no titles: use --preprocess standard)"
                    if p.drop_bad_titles and not any(it.title for it in self.catalog) else "")
            raise DataError(f"preprocessing '{p.name}' left no users{hint}", path=self.name)
        used = seqs.item_set()
        info = dict(self.info)
        info["preprocess"] = p.to_dict()
        info["preprocess_log"] = list(seqs.log)
        info["items_dropped_bad_title"] = dropped_items
        return Dataset(self.name, self.catalog.subset(used), seqs, info, self.synthetic, ratings=self.ratings)

    def stats(self) -> dict:
        st = self.sequences.stats()
        st["catalog_items"] = len(self.catalog)
        return st


def id_only_catalog(item_ids: set[str] | list[str]) -> Catalog:
    """A catalog for datasets that ship ids only (Amazon Sports, Yelp): titles are empty."""
    return Catalog(Item(id=i) for i in item_ids)


__all__ = ["Dataset", "Preprocess", "PRESETS", "preset", "id_only_catalog", "replace"]
