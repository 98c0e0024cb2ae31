"""P5-style task families, each with several prompt templates, some held out of training.

P5 (Geng et al., RecSys'22; jeykigung/P5) trains one language model on several recommendation
tasks written as text, with many templates per task, and tests "zero-shot prompt
generalisation" on templates never seen in training. OpenP5 keeps 10 seen + 1 unseen template
per task. Here each family has a few ``seen`` templates (used to build training examples) and
one ``held_out`` template (never in a training batch; ``tests/models/test_p5.py`` checks it).

Families (the answer follows the prompt, after a space):

- ``sequential``: the history, oldest first -> the next item.
- ``direct``: the history and candidates -> the chosen candidate.
- ``yesno``: the history and one item -> ``Yes`` or ``No`` (TALLRec's question, scored by P(Yes)).
- ``rating``: items the user rated high and low, and one item -> a rating ``1``..``5``.
- ``explanation``: the history and one item -> the user's review of it (needs review text,
  which none of the shared datasets carry; trained only when the training data has it).

Every history, candidate and item field is data: cleaned and quoted by :class:`PromptTemplate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from genrec.errors import UnknownNameError
from genrec.prompts.template import PromptTemplate

QUOTE = '"'
_LIST = " {item};"
_CAND = " ({letter}) {item}"


def _t(name: str, text: str, lists: dict[str, str], data: tuple[str, ...]) -> PromptTemplate:
    return PromptTemplate(name, text, lists=lists, data=data, quote=QUOTE)


@dataclass(frozen=True)
class TaskFamily:
    """One task: its answer kind, its seen templates and its held-out template."""

    name: str
    seen: tuple[PromptTemplate, ...]
    held_out: tuple[PromptTemplate, ...]

    @property
    def templates(self) -> tuple[PromptTemplate, ...]:
        return self.seen + self.held_out

    def get(self, name: str) -> PromptTemplate:
        for t in self.templates:
            if t.name == name:
                return t
        raise UnknownNameError(f"{self.name} template", name, [t.name for t in self.templates])

    def group(self, which: str) -> tuple[PromptTemplate, ...]:
        """``"seen"`` or ``"held_out"`` templates."""
        if which not in ("seen", "held_out"):
            raise ValueError(f"a template group is 'seen' or 'held_out', got {which!r}")
        return self.seen if which == "seen" else self.held_out


H = ("history",)
SEQUENTIAL = TaskFamily("sequential", seen=(
    _t("seq-1", "A user interacted with these items, oldest first:{history} Which item comes next? Answer:",
       {"history": _LIST}, H),
    _t("seq-2", "Recent items of the user:{history}\nPredict the next item. Answer:", {"history": _LIST}, H),
    _t("seq-3", "Given the history{history} recommend the item to choose next. Answer:", {"history": _LIST}, H),
), held_out=(
    _t("seq-unseen", "Here is what someone enjoyed, in order:{history} Guess what they pick after that. Answer:",
       {"history": _LIST}, H),
))

HC = ("history", "candidates")
DIRECT = TaskFamily("direct", seen=(
    _t("direct-1", "A user interacted with:{history}\nCandidates:{candidates}\nWhich candidate will the user "
       "choose? Answer:", {"history": _LIST, "candidates": _CAND}, HC),
    _t("direct-2", "Choose the best item for a user whose history is{history} among{candidates}. Answer:",
       {"history": _LIST, "candidates": _CAND}, HC),
), held_out=(
    _t("direct-unseen", "Options:{candidates}\nSomeone liked{history} Select the option that suits them. Answer:",
       {"history": _LIST, "candidates": _CAND}, HC),
))

HI = ("history", "item")
YESNO = TaskFamily("yesno", seen=(
    _t("yesno-1", "A user interacted with:{history}\nWill the user like {item}? Answer Yes or No. Answer:",
       {"history": _LIST}, HI),
    _t("yesno-2", "Items the user enjoyed:{history} Should we recommend {item} to them? Answer:",
       {"history": _LIST}, HI),
), held_out=(
    _t("yesno-unseen", "Knowing that someone chose{history} is {item} a good suggestion for them? Answer:",
       {"history": _LIST}, HI),
))

LDI = ("liked", "disliked", "item")
RATING = TaskFamily("rating", seen=(
    _t("rating-1", "The user rated highly:{liked}\nThe user rated low:{disliked}\nHow will the user rate {item} "
       "from 1 to 5? Answer:", {"liked": _LIST, "disliked": _LIST}, LDI),
    _t("rating-2", "Liked:{liked} Disliked:{disliked} Predict the star rating of {item}. Answer:",
       {"liked": _LIST, "disliked": _LIST}, LDI),
), held_out=(
    _t("rating-unseen", "Someone enjoyed{liked} and did not enjoy{disliked} How many stars for {item}? Answer:",
       {"liked": _LIST, "disliked": _LIST}, LDI),
))

EXPLANATION = TaskFamily("explanation", seen=(
    _t("explain-1", "A user interacted with:{history}\nWrite the user's review of {item}. Answer:",
       {"history": _LIST}, HI),
    _t("explain-2", "Explain why a user who chose{history} would pick {item}. Answer:", {"history": _LIST}, HI),
), held_out=(
    _t("explain-unseen", "What would someone who enjoyed{history} say about {item}? Answer:",
       {"history": _LIST}, HI),
))

FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (SEQUENTIAL, DIRECT, YESNO, RATING, EXPLANATION)}
YES, NO = "Yes", "No"
RATINGS = ("1", "2", "3", "4", "5")


def family(name: str) -> TaskFamily:
    """A task family by name; unknown names fail listing the known ones."""
    if name not in FAMILIES:
        raise UnknownNameError("P5 task", name, list(FAMILIES))
    return FAMILIES[name]


def all_words() -> list[str]:
    """The fixed words of every template and answer (to train a scratch tokenizer on)."""
    return [t.words() for f in FAMILIES.values() for t in f.templates] + [YES, NO, *RATINGS]
