"""Run cards: what was run, on what, with which versions, how long and how much memory."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import resource
import sys
import time


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss), in MiB."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in ("genrec", "numpy", "scipy", "torch", "transformers", "tokenizers", "implicit", "bm25s"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def machine() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch  # only if already importable; cheap once imported

        if "torch" in sys.modules:
            info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        pass
    return info


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
