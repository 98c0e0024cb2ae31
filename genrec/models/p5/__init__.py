"""P5-style multi-task prompts over one causal LM (:class:`genrec.models.p5.model.P5`).

Modules: ``identifiers`` (leak-free item identifiers), ``examples`` (training examples of every
task), ``prompts`` (inference prompts with a token budget), ``lm`` (scratch GPT-2 or a pre-trained
LM with LoRA), ``scoring`` (next-token and continuation log-probabilities), ``decoding``
(catalog-constrained beam search + popularity fill), ``tasks_api`` (direct, yes/no, rating,
explanation), ``model``. The templates live in :mod:`genrec.prompts.tasks`.
"""

from genrec.models.p5.model import P5

__all__ = ["P5"]
