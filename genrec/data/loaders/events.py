"""Interaction events held compactly while a large file streams in: each distinct user and item
id is kept once (a dict from id to a code), the events as three typed arrays (user code, item
code, time), about 24 bytes per event instead of three Python objects per row.

:meth:`EventLog.sequences` groups them (numpy's stable ``lexsort``: by user in order of first
appearance, then time, ties in file order), the same order as
:func:`genrec.data.loaders.generic.sequences_from_events`, which holds Python lists of every row.
Written by hand because the grouping must keep genrec's exact tie and user order (a pandas
groupby would sort users by id) and the arrays must grow while parsing.
"""

from __future__ import annotations

from array import array

import numpy as np

from genrec.data.sequences import Sequences


class EventLog:
    """Events appended one by one (``add``), then grouped into :class:`Sequences`."""

    def __init__(self, with_times: bool) -> None:
        self.users: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self._u, self._i = array("q"), array("q")
        self._t: array | None = array("d") if with_times else None

    def __len__(self) -> int:
        return len(self._u)

    def add(self, user: str, item: str, time: float | None = None) -> None:
        users, items = self.users, self.items
        u = users.get(user)
        if u is None:
            u = users[user] = len(users)
        i = items.get(item)
        if i is None:
            i = items[item] = len(items)
        self._u.append(u)
        self._i.append(i)
        if self._t is not None:
            self._t.append(float(time))  # type: ignore[arg-type]

    def item_ids(self) -> set[str]:
        return set(self.items)

    def sequences(self, note: str) -> Sequences:
        u = np.frombuffer(self._u, dtype=np.int64)
        i = np.frombuffer(self._i, dtype=np.int64)
        t = None if self._t is None else np.frombuffer(self._t, dtype=np.float64)
        order = np.argsort(u, kind="stable") if t is None else np.lexsort((t, u))
        u_sorted = u[order]
        bounds = np.flatnonzero(np.diff(u_sorted)) + 1
        starts = np.concatenate(([0], bounds)) if len(u_sorted) else np.zeros(0, np.int64)
        ends = np.concatenate((bounds, [len(u_sorted)])) if len(u_sorted) else np.zeros(0, np.int64)
        user_names = list(self.users)
        item_names = list(self.items)
        items_sorted = i[order].tolist()
        times_sorted = None if t is None else t[order].tolist()
        seqs: dict[str, list[str]] = {}
        tms: dict[str, list[float]] | None = None if t is None else {}
        for a, b in zip(starts.tolist(), ends.tolist()):
            name = user_names[int(u_sorted[a])]
            seqs[name] = [item_names[c] for c in items_sorted[a:b]]
            if tms is not None and times_sorted is not None:
                tms[name] = times_sorted[a:b]
        return Sequences(seqs, tms, [note])
