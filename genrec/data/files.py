"""Whether a folder holds a dataset's files (shared by the registry and the downloader)."""

from __future__ import annotations

from pathlib import Path


def has_entry(folder: Path, entry: str) -> bool:
    """Whether ``folder`` holds a file matching one of ``entry``'s "|"-separated glob patterns."""
    for pattern in entry.split("|"):
        if any(ch in pattern for ch in "*?["):
            if any(p.is_file() for p in folder.glob(pattern)):
                return True
        elif (folder / pattern).is_file():
            return True
    return False


def has_required(folder: Path, required: tuple[str, ...]) -> bool:
    """Whether ``folder`` is a directory holding every entry of ``required``."""
    return folder.is_dir() and all(has_entry(folder, r) for r in required)
