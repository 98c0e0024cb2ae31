"""Run cards: what was run, on what, with which versions, how long and how much memory."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import resource
import sys
import time


PROCESS_PEAK = "process peak RSS so far (includes everything this process ran before)"
_peak_scope = PROCESS_PEAK


def peak_memory_mb() -> float:
    """Peak resident memory (ru_maxrss) in MiB, since the last :func:`reset_peak_memory` if any,
    else of the whole process so far; :func:`peak_memory_scope` says which."""
    # Linux: VmHWM, the counter that clear_refs resets. getrusage's ru_maxrss is not enough there: it
    # is the max of VmHWM and a per-process maximum the kernel keeps across exited threads, which a
    # reset never lowers (seen in CI after tests that ran thread pools).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def peak_memory_scope() -> str:
    """What :func:`peak_memory_mb` measures now, for run cards."""
    return _peak_scope


def reset_peak_memory(label: str) -> bool:
    """Reset the peak RSS to the current RSS (Linux ``/proc/self/clear_refs``), so that the next
    :func:`peak_memory_mb` is the peak since ``label``. False (and the scope says so) where the
    kernel does not allow it; the peak then stays the process's."""
    global _peak_scope
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        _peak_scope = PROCESS_PEAK + "; a per-model reset is not possible here"
        return False
    _peak_scope = f"peak RSS since {label} (includes memory already held then)"
    return True


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in ("genrec", "numpy", "scipy", "torch", "transformers", "tokenizers", "implicit", "bm25s"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded, for a run card (what else shared the CPU)."""
    return [round(x, 2) for x in os.getloadavg()]


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
    torch = sys.modules.get("torch")  # only if a model already loaded it: importing torch costs seconds
    if torch is not None:
        try:
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
