"""Prompt templates with named fields (:mod:`genrec.prompts.template`), the named templates
(:mod:`genrec.prompts.library`) and the token-level builder GPT4Rec trains and generates with
(:mod:`genrec.prompts.tokens`). No heavy imports here."""

from genrec.prompts.library import TEMPLATES, get_template, gpt4rec_template
from genrec.prompts.template import PromptTemplate, TemplateError, cut_to_tokens, last_items, letters, strip_control

__all__ = ["PromptTemplate", "TemplateError", "TEMPLATES", "get_template", "gpt4rec_template", "cut_to_tokens",
           "last_items", "letters", "strip_control"]
