"""Splits by named protocols, each followed by a leakage check that fails loudly.

- ``user``: GPT4Rec's protocol. Users are shuffled with a seed and split 0.8/0.1/0.1; training
  users' whole sequences are training data; for each validation/test user the last item is the
  target and the rest the history. Test users are never seen in training.
- ``loo``: leave-one-out. For every user the last item is the test target, the second last the
  validation target; training sequences end before the validation item.
- ``temporal``: a global time cut. Interactions before the validation cut train; a user's first
  interaction after a cut is that user's validation/test target, earlier ones the history.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field

import numpy as np

from genrec.data.catalog import Catalog
from genrec.data.sequences import Sequences
from genrec.errors import GenrecError


class LeakageError(GenrecError):
    """A split lets evaluation information into training."""


@dataclass(frozen=True)
class Case:
    """One evaluation case: predict ``target`` from ``history`` (oldest first)."""

    user: str
    history: tuple[str, ...]
    target: str


@dataclass
class Split:
    catalog: Catalog
    train: Sequences
    valid: list[Case]
    test: list[Case]
    protocol: str
    seed: int
    info: dict = field(default_factory=dict)
    #: Explicit ratings ``{user: {item: rating}}`` of the dataset (None: implicit data); models read
    #: only their training pairs' (:func:`genrec.data.ratings.train_triples`).
    ratings: dict[str, dict[str, float]] | None = field(default=None, repr=False)
    #: The dataset's user attributes ``{user: {attribute: value}}`` (``Dataset.info["user_features"]``),
    #: for breakdowns by group (:mod:`genrec.eval.groups`); None when it has none.
    user_features: dict[str, dict] | None = field(default=None, repr=False)

    def describe(self) -> dict:
        """What a run card says about this split."""
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "train_users": len(self.train),
            "train_interactions": self.train.num_interactions(),
            "valid_cases": len(self.valid),
            "test_cases": len(self.test),
            "items": len(self.catalog),
            **self.info,
        }

    @property
    def cold_items(self) -> set[str]:
        """Items held out of training (cold start), empty unless the split was made with some."""
        return set(self.info.get("cold_items", ()))

    def cold_view(self) -> "Split":
        """The same split with only the cases whose target is a cold (never trained) item."""
        cold = self.cold_items
        if not cold:
            raise ValueError("this split holds out no items: make it with cold_items=0.1")
        return Split(self.catalog, self.train, [c for c in self.valid if c.target in cold],
                     [c for c in self.test if c.target in cold], self.protocol, self.seed,
                     {**self.info, "view": "cold-start targets only"}, ratings=self.ratings,
                     user_features=self.user_features)

    def cases(self, which: str) -> list[Case]:
        if which not in ("valid", "test"):
            raise ValueError("which must be 'valid' or 'test'")
        return self.valid if which == "valid" else self.test


PROTOCOLS = ("user", "loo", "temporal")


def make_split(dataset, protocol: str = "user", seed: int = 0, *,
               ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
               temporal_quantiles: tuple[float, float] = (0.8, 0.9), cold_items: float = 0.0,
               check: bool = True) -> Split:
    """Split ``dataset`` (a :class:`genrec.data.dataset.Dataset`) by ``protocol``.

    ``cold_items=0.1`` holds out a seeded 10% of the items from training: they are removed from
    every training sequence and every history, so they can appear only as validation/test
    targets (see :meth:`Split.cold_view`). Text-based models can still find them by title.
    """
    if not 0 <= cold_items < 1:
        raise ValueError(f"cold_items must be a fraction in [0, 1), got {cold_items}")
    seqs: Sequences = dataset.sequences
    if protocol == "user":
        split = _user_split(seqs, seed, ratios)
    elif protocol == "loo":
        split = _loo_split(seqs)
    elif protocol == "temporal":
        split = _temporal_split(seqs, temporal_quantiles)
    else:
        from genrec.errors import UnknownNameError

        raise UnknownNameError("split protocol", protocol, list(PROTOCOLS))
    train, valid, test, info = split
    _warn_single_item_users(dataset.name, protocol, info)
    if cold_items:
        train, valid, test, info = _hold_out_items(dataset.catalog, train, valid, test, info, cold_items, seed)
    info = {"dataset": dataset.name, "synthetic": dataset.synthetic,
            "preprocess": dataset.info.get("preprocess"), **info}
    out = Split(dataset.catalog, train, valid, test, protocol, seed, info, ratings=getattr(dataset, "ratings", None),
                user_features=dataset.info.get("user_features") or None)
    if check:
        check_leakage(out)
    return out


def _warn_single_item_users(name: str, protocol: str, info: dict) -> None:
    """One counted warning for users whose single item leaves no history to predict from."""
    if protocol == "user" and info.get("cases_skipped_short"):
        n = info["cases_skipped_short"]
        why = "validation/test users with a single item were skipped: no history to predict it from"
    elif protocol == "loo" and info.get("users_single_item"):
        n = info["users_single_item"]
        why = "users with a single item give no evaluation case (no history to predict it from); it only trains"
    else:
        return
    warnings.warn(f"{name}, split '{protocol}': {n:,} {why}", stacklevel=3)


def _hold_out_items(catalog: Catalog, train: Sequences, valid, test, info, frac: float, seed: int):
    ids = sorted(catalog.ids)
    random.Random(f"cold-{seed}").shuffle(ids)
    cold = set(ids[: int(round(frac * len(ids)))])
    from genrec.data.sequences import keep_items

    warm = set(catalog.ids) - cold
    train = keep_items(train, warm, f"hold out {len(cold)} cold items")

    def strip(cases: list[Case]) -> list[Case]:
        out = []
        for c in cases:
            h = tuple(i for i in c.history if i not in cold)
            if h:
                out.append(Case(c.user, h, c.target))
        return out

    info = {**info, "cold_items": sorted(cold), "cold_fraction": frac}
    return train, strip(valid), strip(test), info


def _case(user: str, seq: list[str]) -> Case:
    return Case(user, tuple(seq[:-1]), seq[-1])


def _user_split(seqs: Sequences, seed: int, ratios):
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6) or min(ratios) < 0:
        raise ValueError(f"ratios must be non-negative and sum to 1, got {ratios}")
    users = sorted(seqs.users)
    random.Random(seed).shuffle(users)
    n = len(users)
    n_train = int(round(ratios[0] * n))
    n_valid = int(round(ratios[1] * n))
    tr, va, te = users[:n_train], users[n_train:n_train + n_valid], users[n_train + n_valid:]
    skipped = sum(1 for u in va + te if len(seqs[u]) < 2)
    valid = [_case(u, seqs[u]) for u in va if len(seqs[u]) >= 2]
    test = [_case(u, seqs[u]) for u in te if len(seqs[u]) >= 2]
    train = seqs.subset_users(tr)
    return train, valid, test, {"ratios": list(ratios), "cases_skipped_short": skipped}


def _loo_split(seqs: Sequences):
    train_items: dict[str, list[str]] = {}
    times = seqs.times
    train_times: dict[str, list[float]] = {}
    valid, test = [], []
    for u, s in seqs.items.items():
        # From 3 items on, the last item tests, the second last validates and the rest trains. With
        # 2 items the first trains and the second tests; a single item only trains.
        n_eval = min(len(s) - 1, 2) if s else 0
        if n_eval >= 1:
            test.append(_case(u, s))
        if n_eval == 2:
            valid.append(_case(u, s[:-1]))
        n_train = len(s) - n_eval
        if n_train:
            train_items[u] = list(s[:n_train])
            if times is not None:
                train_times[u] = list(times[u][:n_train])
    lengths = [len(s) for s in seqs.items.values()]
    info = {"users_shorter_than_3": sum(n < 3 for n in lengths), "users_single_item": lengths.count(1)}
    return Sequences(train_items, train_times if times is not None else None, list(seqs.log)), valid, test, info


def _temporal_split(seqs: Sequences, q: tuple[float, float]):
    if seqs.times is None:
        raise GenrecError("the temporal split needs timestamps; this dataset has none "
                          "(its files carry order only): use --split loo or --split user")
    all_t = np.concatenate([np.asarray(t, dtype=float) for t in seqs.times.values()])
    t_valid, t_test = (float(x) for x in np.quantile(all_t, q))
    train_items, train_times, valid, test = {}, {}, [], []
    for u, s in seqs.items.items():
        t = seqs.times[u]
        before_v = [i for i, x in enumerate(t) if x < t_valid]
        if before_v:
            train_items[u] = [s[i] for i in before_v]
            train_times[u] = [t[i] for i in before_v]
        nv = next((i for i, x in enumerate(t) if x >= t_valid), None)
        if nv is not None and nv > 0 and t[nv] < t_test:
            valid.append(Case(u, tuple(s[:nv]), s[nv]))
        nt = next((i for i, x in enumerate(t) if x >= t_test), None)
        if nt is not None and nt > 0:
            test.append(Case(u, tuple(s[:nt]), s[nt]))
    return (Sequences(train_items, train_times, list(seqs.log)), valid, test,
            {"valid_cut": t_valid, "test_cut": t_test, "quantiles": list(q)})


def check_leakage(split: Split) -> None:
    """Raise :class:`LeakageError` if evaluation targets can be seen in training.

    Every rule is checked in full and reported with its count and a first example: targets in the
    catalog; non-empty histories; ``user``: no validation/test user trains, none is both; ``loo``:
    each user's training sequence is a prefix of the case's history (so it ends before the
    target); ``temporal``: no training interaction at or after the validation cut; cold items:
    never in training nor in a history.
    """
    problems: list[str] = []

    def rule(bad: list[str], what: str) -> None:
        if bad:
            problems.append(f"{len(bad)} {what} (e.g. {bad[0]})")

    train = split.train
    for name, cases in (("valid", split.valid), ("test", split.test)):
        rule([f"{c.target!r} of user {c.user!r}" for c in cases if c.target not in split.catalog],
             f"{name} targets are not in the catalog")
        rule([f"user {c.user!r}" for c in cases if not c.history], f"{name} cases have an empty history")
    if split.protocol == "user":
        train_users = set(train.users)
        for name, cases in (("valid", split.valid), ("test", split.test)):
            rule([repr(c.user) for c in cases if c.user in train_users], f"{name} users also appear in training")
        both = sorted({c.user for c in split.valid} & {c.user for c in split.test})
        rule([repr(u) for u in both], "users are both validation and test users")
    elif split.protocol == "loo":
        for name, cases in (("valid", split.valid), ("test", split.test)):
            rule([f"user {c.user!r}" for c in cases
                  if list(c.history[: len(train.items.get(c.user, []))]) != train.items.get(c.user, [])],
                 f"{name} cases whose training sequence is not a prefix of the history")
    elif split.protocol == "temporal":
        cut = split.info["valid_cut"]
        rule([f"user {u!r}" for u, ts in (train.times or {}).items() if any(t >= cut for t in ts)],
             f"training sequences have interactions at or after the validation cut {cut}")
    cold = split.cold_items
    if cold:
        rule(sorted(repr(i) for i in cold & train.item_set()), "held-out cold items appear in training")
        rule([f"user {c.user!r}" for c in split.valid + split.test if cold.intersection(c.history)],
             "evaluation histories hold held-out cold items")
    if problems:
        raise LeakageError(f"leakage check failed for the {split.protocol!r} split: " + "; ".join(problems))
