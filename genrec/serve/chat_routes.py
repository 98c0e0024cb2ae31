"""The routes of the conversational recommender (:mod:`.chatting`): ``POST /chat``,
``POST /chat/preview``, ``GET /chat/{id}`` and ``DELETE /chat/{id}``.

They are reads as far as access goes (open unless reads are protected): a conversation only
stores its own turns, and its id (128 random bits, made by the server) is the key to it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from genrec.serve import chat_schemas as C
from genrec.serve.auth import Auth
from genrec.serve.chatting import ChatEngine
from genrec.serve.routes import _doc, known_query_only

ConvId = Path(..., pattern=C.CONVERSATION_PATTERN, description="A conversation id from a /chat answer.")


def build_chat_router(chat: ChatEngine, auth: Auth) -> APIRouter:
    rd, _ = auth.dependencies()
    read_err = (401, 403) if auth.protect_reads else ()
    r = APIRouter(dependencies=[Depends(known_query_only)], tags=["chat"])

    @r.post("/chat", response_model=C.ChatResponse, dependencies=rd,
            responses=_doc(400, *read_err, 404, 409, 413, 422, 503))
    def chat_turn(req: C.ChatRequest) -> dict:
        """One turn of a conversation: items for the message, with reasons and the exact LLM prompt.

        Without ``conversation_id`` a new conversation starts (its id is in the answer); 404 for an
        unknown conversation, 409 when it was started for another user or got a turn meanwhile."""
        return chat.respond(req)

    @r.post("/chat/preview", response_model=C.ChatPreview, dependencies=rd,
            responses=_doc(400, *read_err, 404, 409, 413, 422, 503))
    def chat_preview(req: C.ChatRequest) -> dict:
        """The prompt ``POST /chat`` would send to the LLM for this request; nothing is sent or stored."""
        return chat.preview(req)

    @r.get("/chat/{conversation_id}", response_model=C.ConversationOut, dependencies=rd,
           responses=_doc(*read_err, 404, 422, 503))
    def get_conversation(conversation_id: str = ConvId) -> dict:
        """A conversation's turns, oldest first, with the prompts each sent (query and ranking)."""
        return chat.conversation(conversation_id)

    @r.delete("/chat/{conversation_id}", status_code=204, dependencies=rd,
              responses=_doc(*read_err, 404, 422, 503))
    def delete_conversation(conversation_id: str = ConvId) -> Response:
        """Forget a conversation: its turns and the prompts they sent are deleted from the database."""
        chat.store.delete(conversation_id)
        return Response(status_code=204)

    return r
