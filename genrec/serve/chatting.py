"""``POST /chat`` in the domain (no HTTP): a conversational recommender in the manner of Chat-Rec.

One turn:

1. Context: the conversation's earlier turns (from the database), the user's history (stored
   events for ``user``, or an explicit ``history``).
2. Queries: with an LLM configured (``--chat-backend``), the LLM writes one search query from the
   message and the earlier turns (:mod:`genrec.prompts.chat`; one greedy generation). Always also
   the message's words and, from the second turn on, the recent messages' words joined (so "older
   than that" is read with what "that" was), conversational filler dropped (:data:`FILLER`). Without an LLM the endpoint works the same without the
   first query (the deterministic fallback).
3. Candidates: per query, BM25 over titles and (with ``--chat-embedder``) MiniLM cosine search;
   and the served model's own recommendations for the history (collaborative candidates).
4. Ranking: a weighted sum of normalised scores over those lists (:func:`.chat_search.fuse`):
   each query's text lists weigh 1 (the message 0.5 and the context 0.25 when an LLM query leads;
   the context 0.5 otherwise), the collaborative list ``cf_weight`` (0.25), so the request leads
   and the user's model breaks near-ties. Items shown in the last turn, the history (unless
   ``exclude_history`` is false), deleted and excluded ids never come back. Then, with an LLM and
   ``llm_rank = N > 0`` (``--chat-llm-rank``), the LLM re-orders the top N of that list in one
   forward pass by verbalizer scores (:mod:`.chat_rank`, prompt :func:`genrec.prompts.chat.rank_prompt`:
   the request, the same context, the candidates' quoted titles with letters); the rest keep the
   fused order below them, and a failed ranking call leaves the fused order (with a note).
5. Reasons: per item, fixed sentences from its evidence (the queries that found it, the words it
   shares with the message, its rank among the collaborative candidates, the place the LLM gave
   it), so nothing is invented and nothing the LLM writes is shown.

Privacy: the LLM prompt holds the messages and catalog titles only; the user's id and their own
items (the profile) are added only when the service was started with ``send_user_id`` /
``send_profile``. The exact prompts (query and ranking) are returned with the answer, stored with
the turn (``GET /chat/{id}``) and shown by ``POST /chat/preview`` (which calls nothing, so its
ranking prompt holds the candidates found without the LLM's query). LLM calls are not cached unless ``llm_cache`` says so.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genrec.core.why import Why
from genrec.errors import GenrecError
from genrec.prompts.chat import ChatContext, query_prompt, rank_prompt, read_query
from genrec.serve import chat_schemas as C
from genrec.serve import schemas as S
from genrec.serve.chat_rank import llm_order
from genrec.serve.chat_reasons import explain, reply
from genrec.serve.chat_search import Ranked, TitleSearch, fuse, normalise
from genrec.serve.chat_store import ChatStore, Conversation, Turn
from genrec.serve.errors import Conflict
from genrec.serve.recommending import HISTORY_EVENTS, _dedup_last, _read_why

if TYPE_CHECKING:
    from genrec.serve.service import Service

log = logging.getLogger("genrec.serve")
CONTEXT_TURNS = 3  # earlier turns the prompt and the context query see


@dataclass(frozen=True)
class ChatConfig:
    """How ``POST /chat`` works (``genrec serve --chat-*``). ``backend``: an LLM spec
    (:func:`genrec.models.rerank.backends.parse_backend`: smollm2-135m, hf:..., openai:URL#MODEL,
    scratch) or None for the deterministic fallback; ``embedder``: a sentence-transformers model
    (``all-minilm-l6-v2``) or None for BM25 only; ``llm_cache``: off, record or replay;
    ``llm_rank``: how many of the top fused candidates the LLM re-orders (0: it does not rank)."""

    backend: str | None = None
    embedder: str | None = None
    send_user_id: bool = False
    send_profile: bool = False
    llm_cache: str = "off"
    cf_weight: float = 0.25
    candidates: int = 50
    max_new_tokens: int = 24
    llm_rank: int = 0

    def check(self) -> None:
        from genrec.llm.cache import normalise_mode
        from genrec.models.rerank.backends import parse_backend

        if self.backend is not None:
            parse_backend(self.backend)
        normalise_mode(self.llm_cache)
        if self.cf_weight < 0 or self.candidates < 1 or self.max_new_tokens < 1:
            raise ValueError("cf_weight must be >= 0, candidates and max_new_tokens >= 1")
        try:
            check_llm_rank(self.llm_rank, needs_backend=self.backend is None)
        except ValueError as e:
            raise ValueError(f"llm_rank {e}") from None


MAX_LLM_RANK = 26  # one letter per candidate (genrec.models.rerank.prompts.labels)


def check_llm_rank(n: int, needs_backend: bool = False) -> None:
    """``ValueError`` unless ``n`` is 0 or ``2 <= n <= 26`` (and 0 when no LLM is configured)."""
    if isinstance(n, bool) or not isinstance(n, int) or not (n == 0 or 2 <= n <= MAX_LLM_RANK):
        raise ValueError(f"{n!r} is not 0 (the LLM does not rank) or an integer from 2 to {MAX_LLM_RANK} "
                         f"(one letter per candidate)")
    if n and needs_backend:
        raise ValueError(f"{n}: ranking needs an LLM (--chat-backend)")


class ChatEngine:
    """The conversational recommender over a :class:`~genrec.serve.service.Service`."""

    def __init__(self, svc: "Service", config: ChatConfig | None = None) -> None:
        self.svc, self.config = svc, config or ChatConfig()
        self.config.check()
        self.store = ChatStore(svc.store)
        self.search = TitleSearch(lambda: svc.catalog, lambda: svc.state.version, self.config.embedder)
        self.llm: Any = None
        self.remote = False
        self._llm_lock = threading.Lock()  # one LLM call at a time (a local model is not thread-safe)
        if self.config.backend is not None:
            self.llm, self.remote = _open_llm(self.config, svc.catalog.titles)
        self.chat_prompts = self.llm is None or self.remote or bool(getattr(getattr(self.llm, "tokenizer", None),
                                                                            "chat_template", None))
        for line in self.describe_lines():
            log.info(line)

    def close(self) -> None:
        """Close the LLM's HTTP client or cache file, if any."""
        for obj in (self.llm, getattr(self.llm, "cache", None)):
            close = getattr(obj, "close", None)
            if callable(close):
                close()

    # -- what is configured ------------------------------------------------------------------------
    def info(self) -> dict:
        """For ``/health``: the LLM (or none), whether it is out of process, what may be sent,
        and where the LLM cache writes (null when off)."""
        cache = getattr(self.llm, "cache", None)
        return {"backend": self.config.backend, "remote": self.remote,
                "llm_cache": None if cache is None else {"mode": cache.mode, "path": str(cache.path)},
                "send_user_id": self.config.send_user_id, "send_profile": self.config.send_profile,
                "search": self.search.describe(), "cf_weight": self.config.cf_weight,
                "llm_rank": self.config.llm_rank if self.llm is not None else 0}

    def describe_lines(self) -> list[str]:
        i = self.info()
        where = "none (the message itself is the query)" if i["backend"] is None else \
            f"{i['backend']} ({'out of process: prompts leave this process' if i['remote'] else 'in process'})"
        cache = "off" if i["llm_cache"] is None else f"{i['llm_cache']['mode']}, writing to {i['llm_cache']['path']}"
        if i["backend"] is not None:
            where += f"; it re-orders the top {i['llm_rank']} candidates" if i["llm_rank"] else "; it does not rank"
        return [f"chat LLM: {where}", f"chat LLM cache: {cache}",
                f"chat prompts include the user id: {'yes' if i['send_user_id'] else 'no'}; "
                f"the user's own items: {'yes' if i['send_profile'] else 'no'}"]

    # -- one turn ------------------------------------------------------------------------------------
    def preview(self, req: C.ChatRequest) -> dict:
        """What ``respond`` would send to the LLM for this request (nothing is called or stored)."""
        conv, user, hist_ids, _, notes = self._context(req)
        ctx = self._chat_context(req, conv, user, hist_ids)
        prompt = query_prompt(ctx, chat=self.chat_prompts) if self.llm is not None else None
        ranker = None
        if self.ranks:
            # The turn's candidates depend on the query the LLM writes, which the preview does not ask for.
            fused, *_ = self._candidates(req, conv, hist_ids, self._text_queries(ctx, 1.0))
            ranker = self._rank_prompt(ctx, fused)
            notes.append("the ranking prompt shows the candidates found without the LLM's query (the preview "
                         "calls no LLM); the turn's candidates can differ" if ranker is not None else
                         "fewer than 2 candidates without the LLM's query: the LLM would have nothing to rank")
        return {"conversation_id": req.conversation_id, "turn": (conv.turns[-1].turn if conv and conv.turns else 0) + 1,
                "llm": self._llm_out(prompt, used=False, rank_prompt=ranker), "notes": notes}

    @property
    def ranks(self) -> bool:
        """Whether the LLM re-orders the top candidates (an LLM and ``llm_rank > 0``)."""
        return self.llm is not None and self.config.llm_rank > 0

    def respond(self, req: C.ChatRequest) -> dict:
        svc = self.svc
        svc.sync()
        conv, user, history, history_out, notes = self._context(req)
        turn_no = (conv.turns[-1].turn if conv and conv.turns else 0) + 1
        ctx = self._chat_context(req, conv, user, history)

        queries: list[dict[str, Any]] = []
        prompt, error = None, None
        if self.llm is not None:
            prompt = query_prompt(ctx, chat=self.chat_prompts)
            written, error = self._ask(prompt)
            if written:
                queries.append({"query": written, "source": "llm", "weight": 1.0})
            elif error is None:
                notes.append("the LLM wrote no usable query; the message is the query")
            if error:
                notes.append(f"the LLM failed ({error}); answered without it")
        queries += self._text_queries(ctx, 0.5 if queries else 1.0)
        if not queries:
            notes.append("the message has no words to search for; the items come from the user's model alone")

        fused, lists, cf, cf_why = self._candidates(req, conv, history, queries)
        if len(fused) < req.k:
            notes.append(f"only {len(fused)} item(s) matched and passed the filters")
        ranker, llm_rank = None, None
        if self.ranks:
            ranker = self._rank_prompt(ctx, fused)
            if ranker is None:
                notes.append("fewer than 2 candidates: the LLM had nothing to rank")
            else:
                llm_rank = llm_order(self.llm, ranker, min(self.config.llm_rank, len(fused)), self._llm_lock)
                notes += llm_rank.notes()
                fused = [fused[j] for j in llm_rank.order] + fused[llm_rank.n:]
        items, why = explain(self.svc.catalog, svc.name, fused, lists, queries, cf, cf_why, req.message,
                             bool(history), llm_rank)
        answer = reply(req.message, queries, items, bool(cf))
        conv_id = self.store.add_turn(
            conv.id if conv else None,
            Turn(turn_no, req.message, [{"query": q["query"], "source": q["source"]} for q in queries],
                 [x["item_id"] for x in items], answer, prompt, rank_prompt=ranker),
            user_id=req.user, history=None if req.history is None else history)
        return {"conversation_id": conv_id, "turn": turn_no, "model": svc.name, "user": user, "answer": answer,
                "queries": [{**q, "items": list(why.queries[n].items)} for n, q in enumerate(queries)],
                "items": items, "why": why.to_dict(), "history": history_out,
                "ranking": (llm_rank.describe() if llm_rank else "") + "weighted sum of normalised scores: title search (BM25"
                           + (" + embeddings" if self.search.embed is not None else "")
                           + f") per query, and the served model's ranks (weight {self.config.cf_weight:g})",
                "llm": self._llm_out(prompt, used=prompt is not None and error is None, error=error,
                                     rank_prompt=ranker, rank_error=llm_rank.error if llm_rank else None),
                "notes": notes}

    def conversation(self, conv_id: str) -> dict:
        """``GET /chat/{id}``: every turn, oldest first, with the prompts it sent."""
        conv = self.store.get(conv_id)
        return {"conversation_id": conv.id, "user": conv.user_id,
                "turns": [{"turn": t.turn, "message": t.message, "answer": t.answer, "queries": t.queries,
                           "items": [self.svc.ref(i) for i in t.items], "prompt": t.prompt,
                           "rank_prompt": t.rank_prompt} for t in conv.turns]}

    # -- steps ---------------------------------------------------------------------------------------
    def _context(self, req: C.ChatRequest) -> tuple[Conversation | None, str | None, list[str], list[dict], list[str]]:
        """``(conversation, user, history ids, history refs, notes)``; a continued conversation keeps
        the user (or history) it was started with."""
        conv = self.store.get(req.conversation_id, last=CONTEXT_TURNS) if req.conversation_id else None
        user, entries = req.user, req.history
        if conv is not None:
            if (user is not None and user != conv.user_id) or (entries is not None and conv.user_id is not None):
                raise Conflict("this conversation was started for another user; start a new one")
            if user is None and entries is None:
                user, entries = conv.user_id, conv.history
        notes: list[str] = []
        if user is not None:
            rows = self.svc.store.history(user, limit=HISTORY_EVENTS) or []
            ids = [r.item_id for r in rows]
        else:
            ids, unresolved = self.svc.state.resolve(entries or [])
            if unresolved:
                notes.append(f"{len(unresolved)} history entr{'y' if len(unresolved) == 1 else 'ies'} matched no item")
        history = _dedup_last(ids)[-S.MAX_HISTORY:]
        return conv, user, history, [self.svc.ref(i) for i in history], notes

    def _chat_context(self, req: C.ChatRequest, conv: Conversation | None, user: str | None,
                      history: list[str]) -> ChatContext:
        """What the LLM prompts (query and ranking) may hold; profile and user id only when allowed."""
        cat = self.svc.catalog
        last = conv.turns[-1] if conv and conv.turns else None
        return ChatContext(
            message=req.message,
            earlier=[t.message for t in conv.turns[-CONTEXT_TURNS:]] if conv else [],
            shown=[cat[i].title for i in (last.items[:5] if last else []) if i in cat],
            profile=[cat[i].title for i in history[-10:] if i in cat] if self.config.send_profile else [],
            user_id=user if self.config.send_user_id else None)

    def _rank_prompt(self, ctx: ChatContext, fused: list[tuple[str, float]]) -> Any:
        """The ranking prompt for the top ``llm_rank`` of ``fused`` (None for fewer than 2)."""
        top = fused[:self.config.llm_rank]
        if len(top) < 2:
            return None
        return rank_prompt(ctx, [self.svc.catalog[i].title for i, _ in top], chat=self.chat_prompts)

    def _text_queries(self, ctx: ChatContext, lead: float) -> list[dict[str, Any]]:
        """The message's words (weight ``lead``) and, from the second turn on, the recent messages'
        words joined (``lead / 2``)."""
        earlier, message = list(ctx.earlier), ctx.message
        out: list[dict[str, Any]] = []
        said = search_words(message)
        if said:
            out.append({"query": said, "source": "message", "weight": lead})
        context = search_words(" ".join(earlier[-2:] + [message]))
        if earlier and context and context != said:
            out.append({"query": context, "source": "context", "weight": lead / 2})
        return out

    def _candidates(self, req: C.ChatRequest, conv: Conversation | None, history: list[str],
                    queries: list[dict[str, Any]]) -> tuple[list[tuple[str, float]], list[Ranked], list[str], Why]:
        """``(fused top k, the lists fused, collaborative ids, the model's why)``: every query's title
        search and the served model's candidates, filtered, fused by a weighted sum."""
        svc = self.svc
        shown = set(conv.turns[-1].items) if conv and conv.turns else set()
        excluded = set(svc.state.deleted) | set(req.exclude_ids) | shown
        if req.exclude_history:
            excluded |= set(history)
        keep = self._keeper(req, excluded)
        n = self.config.candidates
        lists: list[Ranked] = []
        for qn, q in enumerate(queries):
            for source, ids, scores in self.search.search(q["query"], n, excluded):
                norm = normalise(source, scores)
                kept = [(i, s) for i, s in zip(ids, norm) if keep(i)]
                lists.append(Ranked(source, q["weight"], tuple(i for i, _ in kept), tuple(s for _, s in kept), qn))
        cf, cf_why = self._collaborative(history, req, excluded, keep)
        if cf and self.config.cf_weight > 0:
            lists.append(Ranked("collaborative", self.config.cf_weight, tuple(cf),
                                tuple(normalise("collaborative", [0.0] * len(cf)))))
        return fuse(lists)[:req.k], lists, cf, cf_why

    def _ask(self, prompt: Any) -> tuple[str, str | None]:
        """The LLM's query (cleaned), or ``("", reason)`` when the call failed: a chat turn is
        answered without the LLM rather than failing."""
        from genrec.llm.types import GenParams

        try:
            with self._llm_lock:
                gen = self.llm.generate([prompt], GenParams(max_new_tokens=self.config.max_new_tokens))[0]
        except (GenrecError, OSError, RuntimeError, ValueError) as e:
            log.warning("chat LLM call failed: %s", e)
            return "", f"{type(e).__name__}: {str(e)[:200]}"
        return read_query(gen[0].text if gen else ""), None

    def _keeper(self, req: C.ChatRequest, excluded: set[str]):  # noqa: ANN202
        catalog, cat = self.svc.catalog, req.category.casefold() if req.category else None

        def keep(i: str) -> bool:
            if i in excluded:
                return False
            it = catalog.get(i)
            return it is not None and (cat is None or any(c.casefold() == cat for c in it.categories))
        return keep

    def _collaborative(self, history: list[str], req: C.ChatRequest, excluded: set[str], keep) -> tuple:  # noqa: ANN001
        """The served model's top ``candidates`` for the history (what ``/recommend`` would give)."""
        svc = self.svc
        n = min(len(svc.catalog), self.config.candidates + (0 if svc.takes_exclude else len(excluded)))
        extra = frozenset(excluded) if svc.takes_exclude else frozenset()
        items, _, why, _ = svc.batcher.submit(history, max(n, 1), req.exclude_history, extra)
        return [i for i in items if keep(i)][:self.config.candidates], _read_why(why, svc.name, [])

    def _llm_out(self, prompt: Any, used: bool, error: str | None = None, rank_prompt: Any = None,
                 rank_error: str | None = None) -> dict:
        return {"backend": self.config.backend, "remote": self.remote, "used": used, "prompt": prompt,
                "sent": {"user_id": self.config.send_user_id, "profile": self.config.send_profile},
                "error": error, "rank_prompt": rank_prompt, "rank_error": rank_error}


# Conversational filler: words that say how to search, not what for ("something like", "than that",
# "please"). Dropped from the message and context queries (not from the LLM's); a short hand list,
# since general stop-word lists keep "like", "than" and "something", which matched titles here.
FILLER = frozenset("""a an and any anything are as at be but by can could do does for from get give has have
help i id im in is it its just kind like looking love maybe me more less my need not of on one ones or
please recommend show similar so some something sort suggest than that the them then there these
this those to try want was what which with would you your instead else other another""".split())


def search_words(text: str) -> str:
    """The words of a message worth searching titles for (filler dropped), space-joined, in order."""
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", str(text))
    return " ".join(w for w in words if w.casefold() not in FILLER and w.casefold().replace("'", "") not in FILLER)


def _open_llm(config: ChatConfig, titles: list[str]) -> tuple[Any, bool]:
    """``(backend, out of process?)`` for the configured spec."""
    from genrec.models.rerank import backends as B
    from genrec.prompts.chat import TEMPLATES

    spec = B.parse_backend(str(config.backend))
    cache = None if config.llm_cache == "off" else config.llm_cache
    if spec.kind == "scratch":
        words = [t.words() for t in TEMPLATES.values()] * 20
        return B.scratch_backend(list(titles) + words, cache=cache), False
    return B.open_backend(spec, cache=cache), spec.kind == "openai"
