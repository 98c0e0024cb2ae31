"""Where genrec keeps what it downloads or builds: one cache root for every module.

``$GENREC_CACHE`` when set (and non-empty), else ``~/.cache/genrec``. Datasets go under
``<root>/datasets``, converted language models under ``<root>/lm``. The variable is read here and
nowhere else; it is read on every call, so a process (or a test) that changes it is honoured.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GENREC_CACHE"


def cache_root() -> Path:
    """``$GENREC_CACHE`` or ``~/.cache/genrec`` (``~`` expanded)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "genrec").expanduser()
