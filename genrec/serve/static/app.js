// genrec web page: plain JS. Every piece of data goes into the page through textContent or
// setAttribute, never innerHTML, so titles, user ids and generated queries always show as text.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const t = sessionStorage.getItem("genrec-token");
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

async function api(method, path, body) {
  const res = await fetch(path, {method, headers: headers(body !== undefined),
                                 body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    // Every error body is {detail: "one sentence", errors: [{loc, msg, type}]} (errors only on 422).
    let msg = data && data.detail ? data.detail : res.statusText;
    if (data && data.errors && data.errors.length) {
      msg = data.errors.map((e) => (e.loc || []).slice(1).join(".") + ": " + e.msg).join("; ");
    }
    throw new Error(res.status + ": " + msg);
  }
  return data;
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

async function loadInfo() {
  try {
    const h = await api("GET", "/health");
    $("model-info").textContent = `model ${h.model} · ${h.items.toLocaleString()} items · ${h.database}`;
    document.dispatchEvent(new CustomEvent("genrec:health", {detail: h}));  // for chat.js
  } catch (e) {
    $("model-info").textContent = "service unreachable";
  }
  await loadUsers();
}

async function loadUsers() {
  try {
    const users = (await api("GET", "/users?limit=200")).users;
    const list = $("user-list");
    list.replaceChildren(...users.map((u) => el("option", {value: u.user}, `${u.events} events`)));
  } catch (e) { /* reads may be protected until a token is given: reloaded when one is typed */ }
}

function saveToken() {
  const tok = $("token").value;
  if (tok) sessionStorage.setItem("genrec-token", tok);
}

function fmtScore(s) {
  return s === null || s === undefined ? "" : Number(s).toFixed(3);
}

function renderHistory(data) {
  const ol = $("history-list");
  ol.replaceChildren(...data.history.map((h) => el("li", {},
    el("span", {class: "title"}, h.title === null ? h.item_id : h.title),
    " ", el("span", {class: "id"}, h.item_id),
    h.time ? el("span", {class: "time"}, new Date(h.time).toISOString().slice(0, 10)) : null)));
  if (!data.history.length) ol.replaceChildren(el("li", {class: "muted"}, "no history: popular-style fallback"));
  $("history-count").textContent = `(${data.history.length})`;
  const un = $("unresolved");
  un.hidden = !data.unresolved.length;
  un.textContent = data.unresolved.length ? "Not found in the catalog: " + data.unresolved.join(" · ") : "";
}

// The response carries one typed explanation, data.why (genrec.core.why.Why as JSON):
// {queries: [{query, score, items}], explanations: [{item_id, text, evidence}], profile,
//  filled_by_popularity}; each item also has its query indices and its explanation.
function itemCard(it) {
  return el("li", {class: "item", "data-item-id": it.item_id},
    el("span", {class: "rank"}, it.rank),
    el("span", {class: "title"}, it.title),
    el("span", {class: "meta"}, [it.brand, (it.categories || []).join(" › ")].filter(Boolean).join(" · ")),
    el("span", {class: "score", title: "model score"}, fmtScore(it.score)),
    it.explanation ? el("span", {class: "reason"}, it.explanation.text) : null);
}

function renderQueries(data) {
  const ul = $("queries");
  const qs = data.why.queries;
  const profile = data.why.profile;
  $("no-queries").hidden = qs.length > 0 || !!profile || data.why.explanations.length > 0;
  const ex = $("explanation");
  ex.hidden = !profile;
  ex.textContent = profile || "";
  ul.replaceChildren(...qs.map((q, n) => el("li", {class: "query", "data-query": n},
    el("span", {class: "qtext"}, q.query),
    q.score !== null && q.score !== undefined ? el("span", {class: "qscore"}, fmtScore(q.score)) : null,
    el("span", {class: "qcount muted"}, `${q.items.length} found`))));
}

function renderGroups(data) {
  const groups = $("groups");
  const byId = new Map(data.items.map((it) => [it.item_id, it]));
  const blocks = [];
  const shown = new Set();
  const qs = data.why.queries;
  qs.forEach((q, n) => {
    const its = q.items.map((i) => byId.get(i)).filter(Boolean);
    if (!its.length) return;
    its.forEach((it) => shown.add(it.item_id));
    blocks.push(el("div", {class: "group", "data-query": n},
      el("h3", {}, "found by ", el("q", {class: "qtext"}, q.query)),
      el("ol", {class: "items"}, ...its.map(itemCard))));
  });
  const rest = data.items.filter((it) => !shown.has(it.item_id));
  if (rest.length) {
    const label = qs.length ? "not found by a query (filled by popularity)" : "recommended";
    blocks.push(el("div", {class: "group", "data-query": "none"}, qs.length ? el("h3", {}, label) : null,
      el("ol", {class: "items"}, ...rest.map(itemCard))));
  }
  if (!data.items.length) blocks.push(el("p", {class: "muted"}, "nothing to recommend with these filters"));
  groups.replaceChildren(...blocks);
  $("rec-count").textContent = `(${data.items.length} for ${data.user !== null ? "user " + data.user : "the typed history"})`;
  $("notes").replaceChildren(...data.notes.map((n) => el("li", {}, n)));
}

function renderChart(data) {
  const counts = new Map();
  for (const it of data.items) {
    const c = (it.categories && it.categories.length) ? it.categories[0] : "(none)";
    counts.set(c, (counts.get(c) || 0) + 1);
  }
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const box = $("chart");
  if (!rows.length) { box.replaceChildren(el("p", {class: "muted"}, "no items")); return; }
  const barH = 22, gap = 6, labelW = 160, width = 380, max = rows[0][1];
  const h = rows.length * (barH + gap);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${h}`, width, height: h, role: "img",
                             "aria-label": "categories of the recommended items", id: "category-chart"});
  rows.forEach(([name, n], i) => {
    const y = i * (barH + gap);
    const w = Math.max(2, (width - labelW - 30) * n / max);
    const g = svg("g", {class: "bar"});
    g.append(svg("title", {}, `${name}: ${n}`));
    g.append(svg("text", {x: labelW - 6, y: y + barH * 0.7, "text-anchor": "end", class: "label"},
                 name.length > 22 ? name.slice(0, 21) + "…" : name));
    g.append(svg("rect", {x: labelW, y, width: w, height: barH, rx: 3, class: "fill"}));
    g.append(svg("text", {x: labelW + w + 4, y: y + barH * 0.7, class: "count"}, n));
    chart.append(g);
  });
  box.replaceChildren(chart);
}

async function recommend(ev) {
  if (ev) ev.preventDefault();
  showError("");
  const body = {k: Number($("k").value) || 10};
  const cat = $("category").value.trim();
  if (cat) body.category = cat;
  const typed = $("history").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const user = $("user").value.trim();
  if (typed.length && $("history-box").open) body.history = typed;
  else if (user) body.user = user;
  else { showError("pick or type a user, or type a history"); return; }
  saveToken();
  $("go").disabled = true;
  try {
    const data = await api("POST", "/recommend", body);
    renderHistory(data);
    renderQueries(data);
    renderGroups(data);
    renderChart(data);
    $("results").hidden = false;
    document.body.dataset.state = "done";
  } catch (e) {
    showError(e.message);
    document.body.dataset.state = "error";
  } finally {
    $("go").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("rec-form").addEventListener("submit", recommend);
  $("token").addEventListener("change", () => { saveToken(); loadUsers(); });
  const params = new URLSearchParams(location.search);
  if (params.get("user")) $("user").value = params.get("user");
  loadInfo().then(() => { if (params.get("user")) recommend(); });
});
