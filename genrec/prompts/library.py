"""The named prompt templates. GPT4Rec's is the paper's wording (Li et al. 2023, section 3.1)::

    Previously, the customer has bought: <T1>. <T2>. ... In the future, the customer wants to buy

(in training the target title follows: `` <target title>`` + EOS).
"""

from __future__ import annotations

from genrec.errors import UnknownNameError
from genrec.prompts.template import PromptTemplate

GPT4REC = PromptTemplate(
    "gpt4rec",
    "Previously, the customer has bought:{history} In the future, the customer wants to buy",
    lists={"history": " {item}."}, data=("history",))
GPT4REC_MOVIES = PromptTemplate(
    "gpt4rec-movies",
    "Previously, the customer has watched:{history} In the future, the customer wants to watch",
    lists={"history": " {item}."}, data=("history",))

TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (GPT4REC, GPT4REC_MOVIES)}
_DOMAINS = {"products": GPT4REC, "shop": GPT4REC, "ecommerce": GPT4REC, "movies": GPT4REC_MOVIES,
            "movie": GPT4REC_MOVIES}


def get_template(name: str) -> PromptTemplate:
    """A named template; unknown names fail listing the known ones."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise UnknownNameError("prompt template", name, list(TEMPLATES)) from None


def gpt4rec_template(domain: str = "products") -> PromptTemplate:
    """GPT4Rec's template for a domain: "products" (bought / buy) or "movies" (watched / watch)."""
    try:
        return _DOMAINS[domain]
    except KeyError:
        raise ValueError(f"unknown prompt domain {domain!r}; use 'products' or 'movies'") from None
