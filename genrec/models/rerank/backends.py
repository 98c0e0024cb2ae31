"""The re-ranker's ``backend`` parameter: one string naming an LLM behind the
:class:`~genrec.llm.types.LLMBackend` protocol, so local and remote models are interchangeable.

- ``"smollm2-135m"`` (or any alias of :data:`genrec.lm.load.ALIASES`): the packaged GGUF model.
- ``"hf:<hub id or folder or .gguf>"``: any Hugging Face causal LM, through
  :class:`~genrec.llm.local.HFBackend`.
- ``"openai:<base_url>#<model>"``: an OpenAI-compatible server, e.g.
  ``openai:http://127.0.0.1:8000/v1#smollm2`` (:class:`~genrec.llm.http.OpenAIBackend`).
- ``"scratch"``: an untrained tiny GPT-2 with a tokenizer trained on the catalog's titles; it ranks
  no better than chance and exists so the plumbing (conformance, tests) runs in seconds without
  weights. It is saved with the model; every other backend is re-opened from its string on load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class BackendSpec:
    """A parsed ``backend`` string: ``kind`` is scratch, hf or openai; ``target`` the model
    (alias, id or path; the base URL for openai); ``model`` the server's model name (openai)."""

    kind: str
    target: str = ""
    model: str = ""


SPEC_HELP = "'smollm2-135m', 'hf:<hub id or folder>', 'openai:<base_url>#<model>' or 'scratch'"


def parse_backend(spec: str) -> BackendSpec:
    """Parse a ``backend`` string (module docstring); ``ValueError`` naming the accepted forms."""
    from genrec.lm.load import ALIASES

    s = str(spec).strip()
    if s == "scratch":
        return BackendSpec("scratch")
    if s.lower() in ALIASES:
        return BackendSpec("hf", s.lower())
    if s.startswith("hf:") and s[3:].strip():
        return BackendSpec("hf", s[3:].strip())
    if s.startswith("openai:"):
        url, sep, model = s[len("openai:"):].rpartition("#")
        if sep and url.startswith(("http://", "https://")) and model.strip():
            return BackendSpec("openai", url.strip(), model.strip())
        raise ValueError(f"backend {spec!r}: write openai:<base_url>#<model>, "
                         f"e.g. openai:http://127.0.0.1:8000/v1#smollm2")
    raise ValueError(f"backend {spec!r} is not one of {SPEC_HELP}")


def open_backend(spec: BackendSpec, *, device: str | None = None, bf16: bool | None = None,
                 batch_size: int = 8, cache: str | None = None):
    """The LLM backend a (non-scratch) spec names."""
    if spec.kind == "openai":
        from genrec.llm.http import OpenAIBackend

        return OpenAIBackend(spec.target, spec.model, cache=cache)
    if spec.kind == "hf":
        from genrec.llm.local import HFBackend

        return HFBackend.load(spec.target, device=device, bf16="auto" if bf16 is None else bf16,
                              batch_size=batch_size, cache=cache)
    raise ValueError(f"open_backend: a {spec.kind!r} backend is built by the model, not opened by name")


def scratch_backend(texts: Sequence[str], *, seed: int = 0, n_positions: int = 2048, device: str | None = None,
                    bf16: bool | None = None, batch_size: int = 8, cache: str | None = None):
    """An untrained tiny GPT-2 (seeded) with a byte-level BPE tokenizer trained on ``texts``."""
    from genrec.llm.local import HFBackend
    from genrec.lm.scratch import build_model, train_tokenizer

    tok = train_tokenizer(list(texts), vocab_size=1024)
    model = build_model("tiny", tok, n_positions=n_positions, dropout=0.0, seed=seed).eval()
    return wrap_local(model, tok, model_id="scratch:tiny", device=device, bf16=bf16, batch_size=batch_size,
                      cache=cache)


def wrap_local(model: Any, tok: Any, *, model_id: str, device: str | None = None, bf16: bool | None = None,
               batch_size: int = 8, cache: str | None = None):
    """An in-memory (model, tokenizer) pair as a local backend."""
    from genrec.llm.local import HFBackend

    return HFBackend(model, tok, model_id=model_id, device=device, bf16="auto" if bf16 is None else bf16,
                     batch_size=batch_size, cache=cache)
