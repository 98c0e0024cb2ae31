"""Position bias of a re-ranker: hit rates by where the target stood among the candidates shown.

Each case gives the target's 1-based position among the N candidates in the prompt (``None``
when the retriever did not put it among them) and its 1-based rank after re-ranking (``None`` or
0 when it is not in the re-ranked list). An unbiased re-ranker's HR@1 by position follows the
targets' quality only; a position-biased one piles hits on the first (or last) positions.
"""

from __future__ import annotations

from typing import Sequence

BUCKETS = ((1, 1), (2, 3), (4, 5), (6, 10), (11, 15), (16, 20))


def position_bias(positions: Sequence[int | None], ranks: Sequence[int | None], *,
                  buckets: Sequence[tuple[int, int]] = BUCKETS, ks: Sequence[int] = (1, 5)) -> list[dict]:
    """One row per position bucket (cases whose target was shown at a position in it): the
    number of cases, HR@k after re-ranking for each ``k`` and the mean rank after re-ranking."""
    if len(positions) != len(ranks):
        raise ValueError(f"{len(positions)} positions but {len(ranks)} ranks")
    rows = []
    for lo, hi in buckets:
        got = [int(r) for p, r in zip(positions, ranks) if p is not None and lo <= p <= hi and r]
        n = sum(1 for p in positions if p is not None and lo <= p <= hi)
        row: dict = {"positions": f"{lo}" if lo == hi else f"{lo}-{hi}", "cases": n}
        for k in ks:
            row[f"HR@{k}"] = round(sum(1 for r in got if r <= k) / n, 4) if n else None
        row["mean_rank"] = round(sum(got) / len(got), 2) if got else None
        rows.append(row)
    return rows
