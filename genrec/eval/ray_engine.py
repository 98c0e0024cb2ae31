"""Batch inference on Ray Data: the same ``recommend`` calls as one process, spread over actors.

``RayEngine.recommend_chunks(model, chunks, ...)`` takes the histories already cut into the
chunks one process would score (``evaluate``'s ``batch_size``), so every chunk is scored exactly
as in one process and the metrics are bit-identical. The chunks become a ``ray.data`` dataset
(one row per chunk); ``map_batches`` runs them through :class:`ChunkRecommender`, a callable
class: each actor loads the model once, from the saved model folder (packed into Ray's object
store, so a cluster's nodes need no shared file system, only genrec installed), and keeps it.
The results are put back in chunk order; a chunk missing or returned twice is an error.

Faults: an actor that dies (its process exits or is killed) is restarted up to
``max_restarts`` times and its chunk retried up to ``max_task_retries`` times (Ray's actor fault
tolerance; Ray Data's own default is to retry forever, which turns a broken model into a hang).
An exception raised by ``recommend`` is not retried: it fails the run with its message.

Ray is imported only here. ``ray.init`` starts a local instance (``num_cpus`` = ``workers``, no
dashboard) unless ``address`` names a cluster ("auto", "ray://host:10001" or "host:6379").
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import ray

from genrec.errors import GenrecError


class RayEngineError(GenrecError):
    """The Ray run failed or returned an incomplete result."""


def pack_dir(folder: Path) -> bytes:
    """A model folder as one tar archive in memory (what the actors unpack)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(folder), arcname="model")
    return buf.getvalue()


class ChunkRecommender:
    """The ``map_batches`` callable: the model loaded once per actor, then one chunk per call."""

    def __init__(self, packed: list, call: dict, threads: int | None, fault_marker: str | None = None) -> None:
        from genrec.cli_support import set_threads
        from genrec.models.registry import load_model

        set_threads(threads)
        blob = ray.get(packed[0])  # the ObjectRef sits in a list so that Ray does not resolve it for us
        self._tmp = tempfile.TemporaryDirectory(prefix="genrec-ray-")
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
            tar.extractall(self._tmp.name, filter="data")
        self.model: Any = load_model(Path(self._tmp.name) / "model")
        self.call, self.fault_marker = call, fault_marker

    def _maybe_die(self) -> None:
        """Test hook: the first call anywhere (the marker file does not exist yet) kills this actor's process."""
        if self.fault_marker and not os.path.exists(self.fault_marker):
            Path(self.fault_marker).write_text(str(os.getpid()))
            os._exit(1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._maybe_die()
        payloads = []
        for raw in batch["histories"]:
            histories = json.loads(raw)
            ks, k, excl = self.call["ks"], self.call["k"], self.call["exclude_history"]
            if ks:
                out: Any = self.model.recommend_for_ks(histories, ks, exclude_history=excl)
            else:
                out = self.model.recommend(histories, k=k, exclude_history=excl)
            payloads.append(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
        res = np.empty(len(payloads), dtype=object)
        res[:] = payloads
        return {"n": np.asarray(batch["n"]), "payload": res}


@dataclass
class RayEngine:
    """Where and how wide: ``address`` (None: a local instance), ``workers`` actors with
    ``threads`` torch/BLAS threads each, the fault-tolerance limits; ``model_dir``: a saved model
    folder to use instead of saving the model given to :meth:`recommend_chunks`."""

    address: str | None = None
    workers: int = 2
    threads: int | None = 1
    max_restarts: int = 2
    max_task_retries: int = 2
    model_dir: Path | None = None
    fault_marker: str | None = None  # test hook, see ChunkRecommender._maybe_die

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1; got {self.workers}")

    def describe(self) -> str:
        return (f"ray ({self.workers} workers x {self.threads or 'default'} threads, "
                f"{'address ' + self.address if self.address else 'local instance'})")

    def start(self) -> None:
        if ray.is_initialized():
            return
        env = {} if self.threads is None else {v: str(self.threads) for v in
                                               ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                              "runtime_env": {"env_vars": env}}
        if self.address is None:
            kw["num_cpus"] = self.workers
            # Ray's memory monitor kills workers when the *node* is above 95% memory, whoever uses it:
            # on a machine shared with other jobs it killed our actors while they used 70 MB. A local
            # instance leaves out-of-memory to the kernel (set the variable yourself to keep Ray's).
            os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
        try:
            ray.init(address=self.address, **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RayEngineError(f"could not start or reach Ray{' at ' + self.address if self.address else ''}: "
                                 f"{str(e).strip().splitlines()[0]}") from e
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)

    def recommend_chunks(self, model, chunks: Sequence[Sequence[Sequence[str]]], *, k: int,
                         ks: Sequence[int] | None = None, exclude_history: bool = True) -> list:
        """Per chunk, ``model.recommend(chunk, k)`` (or ``recommend_for_ks(chunk, ks)`` when ``ks``
        is given), computed by the actors, in chunk order."""
        self.start()
        with tempfile.TemporaryDirectory(prefix="genrec-ray-model-") as tmp:
            folder = self.model_dir
            if folder is None:
                folder = Path(tmp) / "model"
                model.save(folder)
            ref = ray.put(pack_dir(Path(folder)))
        rows = [{"n": i, "histories": json.dumps([list(h) for h in c])} for i, c in enumerate(chunks)]
        if not rows:
            return []
        call = {"k": int(k), "ks": [int(x) for x in ks] if ks else None, "exclude_history": bool(exclude_history)}
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts/max_task_retries only as "ray_remote_args", which it
            # announces as deprecated without a named replacement yet.
            warnings.simplefilter("ignore", DeprecationWarning)
            out = ds.map_batches(ChunkRecommender, batch_size=1, batch_format="numpy",
                                 compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(rows))), num_cpus=1,
                                 fn_constructor_kwargs={"packed": [ref], "call": call, "threads": self.threads,
                                                        "fault_marker": self.fault_marker},
                                 max_restarts=self.max_restarts, max_task_retries=self.max_task_retries)
        try:
            got = out.take_all()
        except Exception as e:  # Ray wraps the actor's error in its own types
            raise RayEngineError(f"Ray batch inference failed: {type(e).__name__}: "
                                 f"{str(e).strip().splitlines()[-1][:300]}") from e
        by_n: dict[int, Any] = {}
        for r in got:
            n = int(r["n"])
            if n in by_n:
                raise RayEngineError(f"chunk {n} came back twice")
            by_n[n] = pickle.loads(r["payload"])
        missing = [n for n in range(len(rows)) if n not in by_n]
        if missing:
            raise RayEngineError(f"{len(missing)} chunk(s) missing from the Ray result (first: {missing[0]})")
        return [by_n[n] for n in range(len(rows))]

    @staticmethod
    def shutdown() -> None:
        if ray.is_initialized():
            ray.shutdown()
