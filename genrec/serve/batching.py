"""Micro-batching of concurrent recommend calls across request threads (no added wait)."""

from __future__ import annotations

import threading
from typing import Any, Callable

from genrec.serve.errors import Rejected

Key = tuple[int, bool, frozenset]


class _Job:
    __slots__ = ("history", "key", "result", "error", "done")

    def __init__(self, history: list[str], key: Key) -> None:
        self.history, self.key = history, key
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class Batcher:
    """Requests that arrive while the model is busy queue up; the next free request thread runs
    every queued job with the same ``(k, exclude_history, exclude)`` as one ``run`` call and
    hands each caller its own result. A batched model call (GPT4Rec's generation, a scoring
    model's matrix product) costs far less than the same calls one by one. ``k`` is part of the
    key because GPT4Rec's merge gives each query a share of ``k``: results for different ``k``
    are not prefixes of each other.

    ``run(histories, k, exclude_history, exclude) -> list of per-history results``. A
    ``ValueError`` from it becomes :class:`Rejected` for every caller of the batch.
    """

    def __init__(self, run: Callable[..., list], max_batch: int = 32) -> None:
        self.run, self.max_batch = run, max_batch
        self.cv = threading.Condition()
        self.pending: list[_Job] = []
        self.busy = False
        self.calls = self.jobs = 0

    def submit(self, history: list[str], k: int, exclude_history: bool,
               exclude: frozenset[str] = frozenset()) -> Any:
        """This history's result, computed in some thread's batch (maybe this one's)."""
        job = _Job(history, (k, exclude_history, exclude))
        with self.cv:
            self.pending.append(job)
        while True:
            with self.cv:
                while not job.done and self.busy:
                    self.cv.wait()
                if job.done:
                    break
                self.busy = True
                key = self.pending[0].key
                batch = [j for j in self.pending if j.key == key][: self.max_batch]
                taken = set(map(id, batch))
                self.pending = [j for j in self.pending if id(j) not in taken]
            self.calls += 1
            self.jobs += len(batch)
            try:
                results = self.run([j.history for j in batch], *key)
                for j, r in zip(batch, results):
                    j.result = r
            except BaseException as e:  # noqa: BLE001 - handed to every caller of the batch
                for j in batch:
                    j.error = e
            finally:
                with self.cv:
                    for j in batch:
                        j.done = True
                    self.busy = False
                    self.cv.notify_all()
        if job.error is not None:
            if isinstance(job.error, ValueError):
                raise Rejected(f"the model rejected the request: {job.error}") from job.error
            raise job.error
        return job.result

    def stats(self) -> dict:
        return {"calls": self.calls, "requests": self.jobs,
                "mean_batch": round(self.jobs / self.calls, 2) if self.calls else 0.0}
