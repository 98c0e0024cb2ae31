"""The LLM backend layer: one protocol for local and remote language models.

- :class:`~genrec.llm.types.LLMBackend` (protocol): ``generate(prompts, GenParams)``,
  ``score(prompt, continuations)`` (log-likelihood, sum and mean per continuation),
  ``next_token_scores(prompts, candidates)`` (verbalizers, one forward pass), ``usage()``,
  ``describe()``.
- :class:`~genrec.llm.local.HFBackend`: any Hugging Face causal LM (id, folder, ``.gguf``, the
  ``smollm2-135m`` alias, or an in-memory model such as the scratch GPT-2).
- :class:`~genrec.llm.http.OpenAIBackend`: an OpenAI-compatible server (chat and completions).
- :class:`~genrec.llm.cache.LLMCache`: the SQLite record-replay cache (off / record / replay).
- :class:`~genrec.llm.constrained.TokenTrie`: constrained decoding over allowed token sequences
  (catalog titles), ``generate(..., constraint=trie)`` on the local backend.
- :mod:`genrec.llm.server`: an OpenAI-compatible server over the local backend.

Nothing heavy is imported here; import the submodules.
"""
