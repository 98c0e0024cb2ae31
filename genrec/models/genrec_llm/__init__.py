"""``genrec-llm``: GenRec (Ji et al., 2023), an instruction-tuned causal LM that writes the next
item's title; decoding constrained to catalog titles or grounded to them (BIGRec). See
:mod:`genrec.models.genrec_llm.model`."""

from genrec.models.genrec_llm.model import GenRecLLM

__all__ = ["GenRecLLM"]
