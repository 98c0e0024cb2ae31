"""``llm-rerank``: an LLM re-ranks the top N candidates of any registered retriever (issue 13).

Modules: :mod:`.model` (the registered :class:`LLMRerank`), :mod:`.ranking` (verbalizer,
likelihood and listwise ranking, position-bias bootstrapping), :mod:`.prompts` (the templates:
profile line, recency line, few-shot examples, chat template), :mod:`.profile` (the user profile in
words, Chat-Rec), :mod:`.fitting` (retriever chosen on validation, few-shot examples from training
sequences), :mod:`.listwise` (parsing a written ranking, failures counted), :mod:`.evidence`
(grounded explanations), :mod:`.reasons` (LLM-written reasons and their hallucination check),
:mod:`.bias` (hit rate by the target's position), :mod:`.backends` (the ``backend`` string: local
HF, SmolLM2 GGUF, OpenAI-compatible), :mod:`.train` (LlamaRec's LoRA training of the verbalizer:
examples from training interactions, loss on the label token, through the one trainer) and
:mod:`.fine_tune` (its parameters, adapter save/load).

Measurements: benchmarks/rerank_eval.py (full catalog and LLMRank protocol, position bias,
hallucination rate) and benchmarks/rerank_injection.py (injected titles).
"""

from genrec.models.rerank.model import LLMRerank

__all__ = ["LLMRerank"]
