"""Large SYNTHETIC catalogs and logs (a million items, tens of millions of interactions), streamed to disk.

They exist so that scaling (index build, memory, full-ranking evaluation) can be measured on one
machine; they are not real data and say nothing about recommendation quality. Written in the
shared ``sequences.txt`` + ``items.jsonl`` layout (``../shared/datasets/README.md``), so
:func:`genrec.data.loaders.amazon.load_sequences_folder` reads them. What makes them realistic enough:

- titles: ``<Brand> <words...> <leaf category>``; the word count is log-normal with the
  parameters of Amazon Beauty's titles (log-mean 2.25, log-sd 0.47: median 9, 95th percentile 18
  words, measured on ``amazon-beauty/items.jsonl``); words come from a Zipfian vocabulary of
  pseudo-words generated from syllables (frequent words are short, as in real text);
- brands (Zipf-popular) and a three-level category path per item;
- item popularity is Zipf-skewed (exponent ``popularity_skew``): categories have Zipf weights and,
  within a category, the i-th item has weight ~ 1/i^s;
- users are 5-core-like (length 5 + geometric, mean ~9, as Beauty's 8.9) and draw 60% of their
  items from one favourite category, so co-occurrence models find signal.

Everything is drawn in fixed-size blocks, each with its own random stream ``(seed, kind, block)``,
so the output is byte-identical for a seed on every machine and memory does not grow with the
number of interactions (only a few arrays of ``n_items`` numbers are held).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BLOCK = 20_000  # items or users per block (one random stream each)
TITLE_LOG_MEAN, TITLE_LOG_SD = 2.25, 0.47  # Amazon Beauty titles' word counts, log-normal fit
FOCUS = 0.6  # share of a user's items drawn from the favourite category
MEAN_EXTRA = 3.9  # user length = 5 + geometric extra (mean 3.9): mean 8.9 like Beauty 5-core
N_TOP, N_MID, N_LEAF = 24, 8, 8  # category tree: 24 x 8 x 8 = 1,536 leaves
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["ar", "el", "in", "on", "us", "ix"]


def pseudo_word(i: int) -> str:
    """The i-th word of the vocabulary: i written in base len(_SYLLABLES) with syllables as digits
    (a bijection, so words are unique; small i, i.e. frequent words, are short)."""
    base, out = len(_SYLLABLES), []
    i += 1
    while i:
        i, d = divmod(i - 1, base)
        out.append(_SYLLABLES[d])
    return "".join(reversed(out))


def _name(kind: int, k: int) -> str:
    """A capitalised name (brand, category) of ``kind``, disjoint from the title words: a
    bijective scramble into the four-syllable range, so names do not all share a prefix."""
    lo = len(_SYLLABLES) ** 3  # above every title word (vocabulary <= 250,000 < 76^3)
    span = len(_SYLLABLES) ** 4 - lo
    return pseudo_word(lo + ((kind * 2_000_000 + k) * 1_000_003) % span).title()


def zipf_positions(rng: np.random.Generator, sizes: np.ndarray, s: float) -> np.ndarray:
    """One 0-based position per entry of ``sizes``, P(j) ~ 1/(j+1)^s (continuous power law inverted
    in closed form, so drawing needs no table of size ``max(sizes)``)."""
    u = rng.random(len(sizes))
    top = sizes.astype(np.float64) + 1.0
    if abs(s - 1.0) < 1e-9:
        x = top ** u
    else:
        x = (u * (top ** (1.0 - s) - 1.0) + 1.0) ** (1.0 / (1.0 - s))
    return np.minimum(np.floor(x).astype(np.int64) - 1, sizes - 1)


def _zipf_cdf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return np.cumsum(w) / w.sum()


def _check(n_items: int, n_interactions: int, popularity_skew: float) -> None:
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    if n_interactions < 1:
        raise ValueError(f"n_interactions must be at least 1, got {n_interactions}")
    if popularity_skew <= 0:
        raise ValueError(f"popularity_skew must be positive, got {popularity_skew}")


def write_synthetic_large(folder: str | Path, n_items: int = 1_000_000, n_interactions: int = 10_000_000,
                          seed: int = 0, *, popularity_skew: float = 1.0) -> dict:
    """Write ``items.jsonl``, ``sequences.txt`` and ``generated.json`` (the parameters and counts)
    into ``folder``; returns what ``generated.json`` holds. Same arguments, same bytes."""
    _check(n_items, n_interactions, popularity_skew)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_leaves = N_TOP * N_MID * N_LEAF
    # Category sizes: items spread over leaves with Zipf weights (leaf order shuffled by the seed).
    rng = np.random.default_rng([seed, 0])
    leaf_p = np.diff(_zipf_cdf(n_leaves, 0.8), prepend=0.0)[rng.permutation(n_leaves)]
    sizes = rng.multinomial(n_items, leaf_p)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    leaf_of = np.repeat(np.arange(n_leaves), sizes)  # items are laid out category by category
    # Draw a category by its share of the catalog's popularity (its items' summed Zipf weight ~ its size).
    leaf_cdf = np.cumsum(sizes) / n_items
    vocab = max(1_000, min(250_000, n_items // 4))
    word_cdf = _zipf_cdf(vocab, 1.0)
    n_brands = max(20, n_items // 100)
    brand_cdf = _zipf_cdf(n_brands, 1.0)
    width = len(str(n_items - 1))
    # External ids are a bijection of the layout order (multiplier coprime with n), so ids carry no category.
    mult = _coprime(n_items, int(n_items * 0.618) + 1)
    stats = {"n_items": n_items, "n_interactions": n_interactions, "seed": seed,
             "popularity_skew": popularity_skew, "vocabulary": vocab, "brands": n_brands, "categories": n_leaves}
    _write_items(folder / "items.jsonl", seed, n_items, leaf_of, word_cdf, brand_cdf, width, mult)
    stats["n_users"] = _write_sequences(folder / "sequences.txt", seed, n_items, n_interactions, sizes,
                                        starts, leaf_cdf, popularity_skew, width, mult)
    stats["synthetic"] = True
    (folder / "generated.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def _coprime(n: int, start: int) -> int:
    m = max(1, start)
    while np.gcd(m, n) != 1:
        m += 1
    return m


def _item_ids(idx: np.ndarray, n: int, width: int, mult: int) -> list[str]:
    return [f"I{j:0{width}d}" for j in ((idx * mult) % n).tolist()]


def _category_names(leaf: int) -> list[str]:
    top, rest = divmod(leaf, N_MID * N_LEAF)
    mid, low = divmod(rest, N_LEAF)
    return [_name(1, top), _name(2, top * N_MID + mid), _name(3, leaf)]


def _write_items(path: Path, seed: int, n: int, leaf_of, word_cdf, brand_cdf, width: int, mult: int) -> None:
    cats = {}
    with open(path, "w", encoding="utf-8") as f:
        for b, lo in enumerate(range(0, n, BLOCK)):
            hi = min(n, lo + BLOCK)
            rng = np.random.default_rng([seed, 1, b])
            lens = np.clip(np.round(rng.lognormal(TITLE_LOG_MEAN, TITLE_LOG_SD, hi - lo)), 2, 120).astype(np.int64)
            words = np.searchsorted(word_cdf, rng.random(int((lens - 2).sum())), side="right")
            brands = np.searchsorted(brand_cdf, rng.random(hi - lo), side="right")
            ids = _item_ids(np.arange(lo, hi), n, width, mult)
            ends = np.cumsum(lens - 2)
            lines = []
            for r in range(hi - lo):
                leaf = int(leaf_of[lo + r])
                if leaf not in cats:
                    cats[leaf] = _category_names(leaf)
                brand = _name(0, int(brands[r]))
                body = " ".join(pseudo_word(int(w)) for w in words[ends[r] - lens[r] + 2:ends[r]])
                title = f"{brand} {body} {cats[leaf][2]}".replace("  ", " ")
                lines.append(json.dumps({"item_id": ids[r], "title": title, "brand": brand,
                                         "categories": cats[leaf]}, ensure_ascii=False))
            f.write("\n".join(lines) + "\n")


def _write_sequences(path: Path, seed: int, n_items: int, n_interactions: int, sizes, starts, leaf_cdf,
                     skew: float, width: int, mult: int) -> int:
    nonempty = np.flatnonzero(sizes)
    written, users, b = 0, 0, 0
    uwidth = len(str(max(1, n_interactions // 5)))
    with open(path, "w", encoding="utf-8") as f:
        while written < n_interactions:
            rng = np.random.default_rng([seed, 2, b])
            b += 1
            lens = 5 + rng.geometric(1.0 / (MEAN_EXTRA + 1.0), BLOCK) - 1
            total = np.cumsum(lens)
            keep = int(np.searchsorted(total, n_interactions - written, side="left")) + 1
            lens = lens[:keep].copy()
            lens[-1] -= max(0, int(lens.sum()) - (n_interactions - written))  # the last user ends the log exactly
            fav = nonempty[np.minimum(np.searchsorted(leaf_cdf[nonempty], rng.random(len(lens)), side="right"),
                                      len(nonempty) - 1)]
            m = int(lens.sum())
            owner = np.repeat(np.arange(len(lens)), lens)
            other = np.minimum(np.searchsorted(leaf_cdf, rng.random(m), side="right"), len(sizes) - 1)
            leaf = np.where(rng.random(m) < FOCUS, fav[owner], other)
            leaf = np.where(sizes[leaf] > 0, leaf, fav[owner])  # an empty category falls back to the favourite
            item = starts[leaf] + zipf_positions(rng, sizes[leaf], skew)
            ids = _item_ids(item, n_items, width, mult)
            out, pos = [], 0
            for u, ln in enumerate(lens.tolist()):
                out.append(f"U{users + u:0{uwidth}d} " + " ".join(ids[pos:pos + ln]))
                pos += ln
            f.write("\n".join(out) + "\n")
            users += len(lens)
            written += m
    return users


def load_synthetic_large(n_items: int = 100_000, n_interactions: int = 1_000_000, seed: int = 0,
                         popularity_skew: float = 1.0, folder: str | Path | None = None):
    """The generated catalog and log as a Dataset (dataset name ``synthetic-large``). Files are
    generated once into ``folder`` (default: the cache, ``$GENREC_CACHE/datasets/synthetic-large/...``)
    and reused when their ``generated.json`` matches the parameters."""
    from genrec.data.loaders.amazon import load_sequences_folder
    from genrec.paths import cache_root

    _check(n_items, n_interactions, popularity_skew)
    if folder is None:
        folder = (cache_root() / "datasets" / "synthetic-large" /
                  f"items{n_items}-log{n_interactions}-seed{seed}-skew{popularity_skew:g}")
    folder = Path(folder)
    meta = folder / "generated.json"
    want = {"n_items": n_items, "n_interactions": n_interactions, "seed": seed, "popularity_skew": popularity_skew}
    have = json.loads(meta.read_text()) if meta.is_file() else {}
    if any(have.get(k) != v for k, v in want.items()):
        write_synthetic_large(folder, n_items, n_interactions, seed, popularity_skew=popularity_skew)
    ds = load_sequences_folder(folder, name="synthetic-large")
    ds.info.update({"synthetic": True, **want})
    ds.synthetic = True
    return ds
