"""The GGUF import and its safetensors cache.

A GGUF file is imported once (transformers dequantises it to fp32, about 30 s for SmolLM2-135M),
checked (a plain copy of the model must reproduce the GGUF model's logits), and cached as an
ordinary ``save_pretrained`` folder under ``cache_root()/lm/<name>-<sha256[:16]>/``, written to a
temporary folder and renamed into place. :mod:`genrec.lm.load` uses it; torch and transformers are
imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genrec.errors import GenrecError
from genrec.paths import cache_root

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

MARKER = "genrec_lm.json"
CACHE_FORMAT = 1
GGUF_MAGIC = b"GGUF"


class LMLoadError(GenrecError):
    """A language model could not be found or loaded; the message says what to pass instead."""


def genrec_cache_dir() -> Path:
    """The one cache root (``genrec.paths.cache_root``)."""
    return cache_root()


def is_gguf(path: str | Path) -> bool:
    """Whether ``path`` is a file starting with the GGUF magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (about 0.1 s for a 100 MB GGUF)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else genrec_cache_dir() / "lm"


def _cached_sha256(path: Path, root: Path) -> str:
    """:func:`file_sha256`, remembered in ``root/sha256.json`` by (path, size, mtime, inode) to skip re-reading."""
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    memo_file = root / "sha256.json"
    try:
        memo = json.loads(memo_file.read_text())
        if isinstance(memo, dict) and isinstance(memo.get(key), str):
            return memo[key]
    except (OSError, ValueError):
        memo = {}
    sha = file_sha256(path)
    memo = {k: v for k, v in memo.items() if not k.startswith(f"{path}|")} if isinstance(memo, dict) else {}
    memo[key] = sha
    try:  # best effort, atomic
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".sha256-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        tmp.write_text(json.dumps(memo, indent=1))
        os.replace(tmp, memo_file)
    except OSError:
        pass
    return sha


def gguf_cache_folder(gguf_path: str | Path, *, name: str | None = None, cache_dir: str | Path | None = None,
                      sha256: str | None = None) -> Path:
    """``<cache_dir or $GENREC_CACHE/lm>/<name>-<sha256[:16]>``; ``name`` defaults to the file's stem."""
    root = _cache_root(cache_dir)
    stem = re.sub(r"[^\w.\-]+", "_", name or Path(gguf_path).stem)
    return root / f"{stem}-{(sha256 or _cached_sha256(Path(gguf_path).resolve(), root))[:16]}"


def _dtype_kw(dtype: Any) -> dict[str, Any]:
    """``dtype=`` (transformers >= 4.56) or ``torch_dtype=`` (older)."""
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}


# ---------------------------------------------------------------------------------------------- GGUF import

def read_gguf(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Import a GGUF file with transformers, weights dequantised to fp32 (the slow step, ~30 s for 135M)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path).resolve()
    extra: dict[str, Any] = {}
    try:  # ask for plain dense weights, so the model can be saved as an ordinary checkpoint
        from transformers import GgufConfig

        extra["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older transformers always dequantise
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     **_dtype_kw(torch.float32), **extra)
    except Exception as e:  # noqa: BLE001 - transformers raises many types here
        raise LMLoadError(f"could not import the GGUF file {path}: {type(e).__name__}: {e}") from e
    return model.eval(), tokenizer


def _vanilla_copy(model: PreTrainedModel) -> PreTrainedModel:
    """The same weights in a plain model of the same class, without the GGUF quantizer attached."""
    import torch

    config_dict = model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = type(model.config).from_dict(config_dict)
    config.architectures = [type(model).__name__]
    with torch.device("cpu"):
        clean = type(model)(config)
    clean.load_state_dict(model.state_dict(), strict=True)  # strict: packed GGUF layers would not fit
    if getattr(model, "generation_config", None) is not None:
        clean.generation_config = model.generation_config
    return clean.float().eval()


def _probe_ids(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.Tensor:
    ids = tokenizer("A user bought a lamp and a desk; next they search for", return_tensors="pt")["input_ids"]
    return ids.clamp_(0, vocab_size - 1)


def write_lm_cache(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | Path, *,
                   sha256: str, source: str, import_seconds: float | None = None, replace: bool = False) -> Path:
    """Save ``model`` (e.g. straight from :func:`read_gguf`) and ``tokenizer`` as a plain checkpoint folder.

    The weights are copied into a plain model of the same class (which must reproduce ``model``'s
    logits), saved into a temporary sibling folder with a marker file listing every file and its size,
    and the folder renamed to ``folder``.
    A complete folder already there (another process finished first) is kept unless ``replace``.
    """
    import torch
    import transformers

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        clean = _vanilla_copy(model)
        probe = _probe_ids(tokenizer, clean.config.get_text_config().vocab_size)
        with torch.no_grad():
            same = torch.allclose(model(probe).logits.float(), clean(probe).logits, rtol=1e-4, atol=1e-4)
        if not same:
            raise LMLoadError(f"importing {source}: the plain copy of the model does not reproduce its logits")
        clean.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        marker = {"format": CACHE_FORMAT, "source": source, "sha256": sha256, "files": files,
                  "transformers": transformers.__version__, "import_seconds": import_seconds,
                  "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        del clean
        if folder.exists():
            if not replace and cache_is_complete(folder, sha256):
                return folder
            _remove_folder(folder)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not cache_is_complete(folder, sha256):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def cache_is_complete(folder: str | Path, sha256: str | None = None) -> bool:
    """Whether ``folder`` holds a finished cache: marker readable, same source hash, every file at its size."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text())
        files = marker["files"]
        if marker.get("format") != CACHE_FORMAT or (sha256 is not None and marker.get("sha256") != sha256):
            return False
        if "config.json" not in files or not any(n.endswith((".safetensors", ".bin")) for n in files):
            return False
        return all((folder / n).stat().st_size == size for n, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _remove_folder(folder: Path) -> None:
    """Rename aside then delete, so no reader sees a half-deleted folder under the real name."""
    aside = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def ensure_gguf_cache(gguf_path: str | Path, *, name: str | None = None,
                      cache_dir: str | Path | None = None, force: bool = False) -> Path:
    """The cache folder of a GGUF file, importing it first when missing, incomplete or ``force``."""
    gguf_path = Path(gguf_path).resolve()
    sha = _cached_sha256(gguf_path, _cache_root(cache_dir))
    folder = gguf_cache_folder(gguf_path, name=name, cache_dir=cache_dir, sha256=sha)
    if not force and cache_is_complete(folder, sha):
        return folder
    log.warning("importing %s (GGUF, dequantised to fp32; ~30 s for 135M parameters) into %s", gguf_path, folder)
    t0 = time.perf_counter()
    model, tokenizer = read_gguf(gguf_path)
    seconds = time.perf_counter() - t0
    return write_lm_cache(model, tokenizer, folder, sha256=sha, source=str(gguf_path), import_seconds=seconds,
                          replace=force)


# ---------------------------------------------------------------------------------------------- loading
