"""Title cleaning, done once in the Catalog: HTML entities, tags, control characters, whitespace."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^<>]{0,200}>")
_WS = re.compile(r"\s+")


def clean_title(raw: object) -> str:
    """Return a display- and prompt-safe title.

    Decodes HTML entities (twice, since scraped catalogs double-encode ``&amp;amp;``), strips HTML
    tags, drops control and format characters, applies NFC and folds whitespace. ``None`` becomes
    ``""``. The result is still untrusted text: prompt builders must quote it, pages must escape it.
    """
    if raw is None:
        return ""
    text = str(raw)
    for _ in range(2):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    return _WS.sub(" ", text).strip()
