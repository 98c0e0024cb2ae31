"""``llm-rerank``: an LLM re-ranks the top N candidates of any registered retriever (issue 13).

Modules: :mod:`.model` (the registered :class:`LLMRerank`), :mod:`.ranking` (verbalizer,
likelihood and listwise ranking, position-bias bootstrapping), :mod:`.prompts` (the templates),
:mod:`.listwise` (parsing a written ranking, failures counted), :mod:`.evidence` (grounded
explanations), :mod:`.backends` (the ``backend`` string: local HF, SmolLM2 GGUF, OpenAI-compatible),
:mod:`.train` (LlamaRec's LoRA training of the verbalizer: examples from training interactions,
loss on the label token, through the one trainer) and :mod:`.fine_tune` (its parameters, adapter
save/load).

TODO (issue 13, not done yet):
- Few-shot listwise (in-context examples from training users), the recency-focused prompt, the
  user profile in words (Chat-Rec), chat-template prompts for instruct models.
- Measurements: position-bias hit rate by target position, the injected-title experiment over many
  users per mode and backend, the hallucination rate of explanations, the full ML-100K / Beauty
  tables, the LLMRank 20-candidate protocol, speed.
"""

from genrec.models.rerank.model import LLMRerank

__all__ = ["LLMRerank"]
