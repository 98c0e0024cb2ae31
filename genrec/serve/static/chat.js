// The chat panel: POST /chat turns, their items and reasons, and the exact prompts sent to the LLM
// (the query prompt, and the ranking prompt when the LLM re-orders the candidates).
// Uses el(), api(), $() and saveToken() from app.js. Data goes in through textContent only.
"use strict";

let chatConversation = null;

function chatWho(body) {
  // The same person as the recommend form: a typed history (when its box is open) or a user id.
  const typed = $("history").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const user = $("user").value.trim();
  if (chatConversation) body.conversation_id = chatConversation;
  else if (typed.length && $("history-box").open) body.history = typed;
  else if (user) body.user = user;
  return body;
}

function promptText(prompt) {
  if (prompt === null || prompt === undefined) return null;
  if (typeof prompt === "string") return prompt;
  return prompt.map((m) => `[${m.role}]\n${m.content}`).join("\n\n");
}

function promptDetails(summary, text, kind = "") {
  // A collapsed box holding a prompt exactly as the LLM got it; `kind` adds "<kind>" to the <pre>
  // and "<kind>-details" to the box.
  const extra = kind ? ` ${kind}` : "";
  return el("details", {class: `prompt-details${kind ? ` ${kind}-details` : ""}`},
    el("summary", {}, summary),
    el("pre", {class: `prompt${extra}`}, text));
}

function promptBox(llm) {
  const text = promptText(llm.prompt);
  const where = llm.remote ? "sent to the LLM server (it left this service)" : "given to the in-process LLM";
  if (text === null) return el("p", {class: "muted small"}, "No LLM: your message itself was the search query.");
  return promptDetails(`Prompt ${where}`, text);
}

function rankPromptBox(llm) {
  // The ranking prompt (--chat-llm-rank): the candidates the LLM re-ordered, as it got them.
  const text = promptText(llm.rank_prompt);
  if (text === null) return null;
  const where = llm.remote ? "sent to the LLM server" : "given to the in-process LLM";
  return promptDetails(`Ranking prompt ${where}`, text, "rank-prompt");
}

function chatItem(it) {
  return el("li", {class: "item", "data-item-id": it.item_id},
    el("span", {class: "rank"}, it.rank),
    el("span", {class: "title"}, it.title, el("span", {class: "sources"}, it.sources.join(" + "))),
    el("span", {class: "meta"}, [it.brand, (it.categories || []).join(" › ")].filter(Boolean).join(" · ")),
    el("span", {class: "score", title: "fused score"}, fmtScore(it.score)),
    el("span", {class: "reason"}, it.explanation.text));
}

function renderTurn(message, data) {
  const queries = data.queries.map((q) => `${q.source}: “${q.query}”`).join(" · ");
  const li = el("li", {class: "turn", "data-turn": data.turn},
    el("div", {class: "you"}, message),
    el("div", {class: "answer"},
      el("div", {class: "answer-text"}, data.answer),
      el("div", {class: "chat-queries"}, "searched for ", queries),
      el("ol", {class: "items"}, ...data.items.map(chatItem)),
      data.notes.length ? el("ul", {class: "notes"}, ...data.notes.map((n) => el("li", {}, n))) : null,
      promptBox(data.llm),
      rankPromptBox(data.llm)));
  $("chat-log").append(li);
  li.scrollIntoView({block: "nearest"});
}

function chatError(msg) {
  $("chat-error").textContent = msg || "";
  $("chat-error").hidden = !msg;
}

async function chatSend(ev) {
  if (ev) ev.preventDefault();
  chatError("");
  const message = $("chat-message").value;
  const body = chatWho({message, k: Number($("k").value) || 10});
  saveToken();
  $("chat-send").disabled = true;
  try {
    const data = await api("POST", "/chat", body);
    chatConversation = data.conversation_id;
    renderTurn(message, data);
    $("chat-message").value = "";
    $("chat-preview-box").hidden = true;
    $("chat").dataset.state = "done";
  } catch (e) {
    chatError(e.message);
    $("chat").dataset.state = "error";
  } finally {
    $("chat-send").disabled = false;
  }
}

async function chatPreview() {
  chatError("");
  const box = $("chat-preview-box");
  try {
    const data = await api("POST", "/chat/preview", chatWho({message: $("chat-message").value}));
    const text = promptText(data.llm.prompt);
    const rank = promptText(data.llm.rank_prompt);
    box.textContent = (text === null ? "No LLM is configured: nothing would be sent; the message is the query."
      : `Turn ${data.turn} would send${data.llm.remote ? " to the LLM server" : ""}:\n\n${text}`)
      + (rank === null ? "" : `\n\nThen the ranking prompt (for the candidates found without the LLM's query):\n\n${rank}`);
    box.hidden = false;
    $("chat").dataset.state = "preview";
  } catch (e) {
    chatError(e.message);
    $("chat").dataset.state = "error";
  }
}

function chatNew() {
  chatConversation = null;
  $("chat-log").replaceChildren();
  $("chat-preview-box").hidden = true;
  chatError("");
}

function chatInfo(health) {
  // From the /health answer app.js fetches at load (one request, not two).
  const c = health.chat;
  if (!c) return;
  const llm = c.backend === null ? "no LLM (the message is the query)"
    : `LLM ${c.backend}${c.remote ? " (prompts leave this service)" : ""}`;
  const sent = [c.send_user_id ? "user id" : null, c.send_profile ? "user's items" : null].filter(Boolean);
  $("chat-info").textContent = `· ${llm} · prompts hold ${sent.length ? "the " + sent.join(" and ") : "no user data"}`
    + ` · LLM cache ${c.llm_cache ? c.llm_cache.mode + " at " + c.llm_cache.path : "off"}`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("chat-form").addEventListener("submit", chatSend);
  $("chat-preview").addEventListener("click", chatPreview);
  $("chat-new").addEventListener("click", chatNew);
  $("chat-message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) chatSend(e);
  });
});
document.addEventListener("genrec:health", (e) => chatInfo(e.detail));
