"""GPT4Rec's rank-based merge of per-query retrieval results (Li et al. 2023, section 3.2).

Queries come best first (by generation score). Rules, applied in order:

1. Quotas. Each of the m queries gets ``K // m`` slots; the ``K % m`` remaining slots go one each
   to the highest-scoring queries. So K=10, m=4 gives quotas 3, 3, 2, 2; when K < m only the
   first K queries get a slot (one each). K divisible by m is the paper's case: K/m per query.
2. In query order, each query contributes its best not-yet-taken, not-excluded items up to its
   quota (an item found by two queries is credited to the first).
3. Fill from the queries: if a query found too few items, the free slots go round-robin, in query
   order, to the queries' next not-yet-taken results, until K items or no results are left.
4. Fill by popularity: remaining slots take the most popular not-yet-taken, not-excluded items;
   their count is returned (and the model records it in its notes and ``why``).

The final score of the item at position p (0-based) is ``K - p``: the merge is rank-based, so
only the order carries meaning.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Collection, Sequence


@dataclass
class Merged:
    items: list[str]
    scores: list[float]
    contributions: list[list[str]] = field(default_factory=list)  # per query, the items it put in
    filled_from_queries: int = 0   # items taken beyond the quotas (rule 3)
    filled_by_popularity: int = 0  # items taken by popularity (rule 4)


def quotas(k: int, m: int) -> list[int]:
    """Slots per query (rule 1)."""
    if k < 0 or m < 0:
        raise ValueError("k and m must be non-negative")
    if m == 0:
        return []
    base, extra = divmod(k, m)
    return [base + (1 if j < extra else 0) for j in range(m)]


def rank_merge(results: Sequence[Sequence[str]], k: int, *, exclude: Collection[str] = (),
               popular: Sequence[str] = ()) -> Merged:
    """Merge per-query ranked item lists (queries best first) into K items, following the rules
    in the module docstring. ``exclude`` (e.g. the user's history) is never returned."""
    if k <= 0:
        raise ValueError("k must be positive")
    taken: set[str] = set(exclude)
    items: list[str] = []
    contrib: list[list[str]] = [[] for _ in results]
    cursor = [0] * len(results)

    def next_from(j: int) -> str | None:
        lst = results[j]
        while cursor[j] < len(lst):
            it = lst[cursor[j]]
            cursor[j] += 1
            if it not in taken:
                return it
        return None

    for j, q in enumerate(quotas(k, len(results))):
        for _ in range(q):
            it = next_from(j)
            if it is None:
                break
            taken.add(it)
            items.append(it)
            contrib[j].append(it)
    # Rule 3: round-robin over the queries in order; a query with no results left drops out.
    from_queries = 0
    turn = deque(range(len(results)))
    while turn and len(items) < k:
        j = turn.popleft()
        it = next_from(j)
        if it is None:
            continue
        taken.add(it)
        items.append(it)
        contrib[j].append(it)
        from_queries += 1
        turn.append(j)
    by_pop = 0
    for it in popular:
        if len(items) >= k:
            break
        if it not in taken:
            taken.add(it)
            items.append(it)
            by_pop += 1
    scores = [float(k - p) for p in range(len(items))]
    return Merged(items, scores, contrib, from_queries, by_pop)
