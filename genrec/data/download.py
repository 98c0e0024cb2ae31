"""Download a dataset's official zip into the cache: streamed, checksummed, unzipped atomically.

``download_dataset(name, spec, cache_root)`` fetches ``spec.url`` with urllib (stdlib: one GET of
a public zip needs no more), computes its SHA-256 while streaming, checks it against
``spec.sha256`` when the spec has one, and unzips into a temporary folder beside the target
that is renamed to ``cache_root/<spec.folder>`` only when complete, so an interrupted download
never leaves a half-filled dataset folder. The URL, size, SHA-256 and time are recorded in
``<folder>/.genrec-download.json``; without a known checksum a warning names the URL and the
SHA-256 computed, and the record marks it unverified. Any network failure raises a GenrecError
that says which URL to fetch by hand, where to unzip it, and that ``--data-dir`` works.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from genrec.data.files import has_required
from genrec.errors import GenrecError

RECORD = ".genrec-download.json"
CHUNK = 1 << 20


def _manual(name: str, spec: Any, dest: Path) -> str:
    files = ", ".join(spec.required) if spec.required else "its files"
    return (f"To install {name!r} by hand: download {spec.url} and unzip it so that {files} lie directly in "
            f"{dest} (or in any folder, then pass --data-dir FOLDER).")


def download_dataset(name: str, spec: Any, cache_root: str | Path, *, timeout: float = 60.0) -> Path:
    """Download and unzip ``spec.url`` into ``cache_root/<spec.folder>``; returns that folder.

    ``spec`` is a :class:`genrec.data.registry.DatasetSpec` (``url``, ``folder``, ``required``,
    ``sha256``). An already complete folder is returned without downloading.
    """
    if not spec.url or not spec.folder:
        raise GenrecError(f"dataset {name!r} has no download URL; put its files in a folder and pass --data-dir")
    cache_root = Path(cache_root)
    dest = cache_root / spec.folder
    if has_required(dest, spec.required):
        return dest
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenrecError(f"cannot create the cache folder {cache_root} ({e}). {_manual(name, spec, dest)}") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", suffix=".part", dir=cache_root))
    try:
        archive = tmp / "download.zip"
        digest, size = _fetch(spec.url, archive, timeout, name, spec, dest)
        if spec.sha256 and digest != spec.sha256.lower():
            raise GenrecError(f"checksum mismatch for {spec.url}: expected SHA-256 {spec.sha256}, got {digest} "
                              f"({size:,} bytes); the file is corrupt or has changed upstream, nothing was "
                              f"installed. {_manual(name, spec, dest)}")
        content = _unzip(archive, tmp / "unzipped", spec.url)
        folder = _find_root(content, spec.required)
        if folder is None:
            raise GenrecError(f"{spec.url} does not contain {', '.join(spec.required)}; nothing was installed. "
                              f"{_manual(name, spec, dest)}")
        _write_record(folder, name, spec, digest, size)
        if not spec.sha256:
            warnings.warn(f"{name}: no known checksum for {spec.url}, so the download was not verified; its "
                          f"SHA-256 is {digest} ({size:,} bytes), recorded in {dest / RECORD}", stacklevel=2)
        if dest.exists():  # an incomplete earlier attempt, or a concurrent download that finished
            if has_required(dest, spec.required):
                return dest
            shutil.rmtree(dest)
        try:
            os.replace(folder, dest)  # atomic on one filesystem: dest is either absent or complete
        except OSError:
            if has_required(dest, spec.required):  # another process won the race
                return dest
            raise
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_record(folder: Path, name: str, spec: Any, digest: str, size: int) -> None:
    """``.genrec-download.json``: URL, computed SHA-256, whether it matched a known one, size, time."""
    rec = {"name": name, "url": spec.url, "sha256": digest, "sha256_expected": spec.sha256,
           "verified": bool(spec.sha256), "bytes": size,
           "downloaded_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not spec.sha256:
        rec["note"] = "no known checksum for this URL: sha256 is what this download computed, not verified"
    (folder / RECORD).write_text(json.dumps(rec, indent=2) + "\n")


def _fetch(url: str, out: Path, timeout: float, name: str, spec: Any, dest: Path) -> tuple[str, int]:
    """Stream ``url`` to ``out``; returns (sha256 hex, bytes). Network errors become GenrecError."""
    h = hashlib.sha256()
    size = 0
    req = urllib.request.Request(url, headers={"User-Agent": "genrec (dataset download)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(out, "wb") as f:
            expected = resp.headers.get("Content-Length")
            total = int(expected) if expected is not None and expected.isdigit() else None
            # disable=None: a progress bar on a terminal only, silent in logs and tests
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}", disable=None) as bar:
                while chunk := resp.read(CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise GenrecError(f"download of {url} was cut short ({size:,} of {int(expected):,} bytes). "
                              f"{_manual(name, spec, dest)}")
    except urllib.error.HTTPError as e:
        raise GenrecError(f"could not download {url}: HTTP {e.code} {e.reason}. {_manual(name, spec, dest)}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise GenrecError(f"could not download {url} ({reason}); this machine may have no internet access. "
                          f"{_manual(name, spec, dest)}") from None
    return h.hexdigest(), size


def _unzip(archive: Path, out: Path, url: str) -> Path:
    """Extract ``archive`` into ``out``, refusing members that would land outside it."""
    try:
        with zipfile.ZipFile(archive) as z:
            for m in z.infolist():
                p = PurePosixPath(m.filename)
                if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
                    raise GenrecError(f"{url}: unsafe path in the zip: {m.filename!r}; nothing was installed")
            z.extractall(out)
    except zipfile.BadZipFile as e:
        raise GenrecError(f"{url} is not a valid zip file ({e}); nothing was installed") from None
    return out


def _find_root(content: Path, required: tuple[str, ...]) -> Path | None:
    """The folder in the unzipped tree that holds the required files (GroupLens zips have one top folder)."""
    if has_required(content, required):
        return content
    for d in sorted(p for p in content.rglob("*") if p.is_dir()):
        if has_required(d, required):
            return d
    return None
