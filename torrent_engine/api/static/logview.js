"use strict";
// The daemon's log (GET /api/log, GET /api/log/peers: an admin's): the lines kept, then, every
// LOG_POLL ms while the dialog is open, those after the last one shown, as qBittorrent's web UI
// reads log/main with last_known_id. At most LOG_ROWS rows are kept on the page.

const LOG_POLL = 2000;
const LOG_ROWS = 2000;
let logTimer = null;
let logAfter = -1;  // the last id shown of the view
let logView = "";  // what is shown: the levels asked for, or "peers"
let logAsk = 0;  // the latest poll's number: an earlier one's answer, come late, is dropped

function logRow(item, peers) {
  const kind = peers ? (item.blocked ? "blocked" : "banned") : item.level;
  const text = peers ? `${item.ip}: ${item.blocked ? "blocked" : "banned"} (${item.reason})` : item.message;
  return el("div", {class: `log-line ${kind}`, "data-id": String(item.id)},
    el("time", {text: when(item.time)}), el("span", {class: "log-kind", text: kind}),
    el("span", {class: "log-text", text}));
}

async function pollLog() {
  logTimer = null;
  const ask = ++logAsk;
  if (!$("log-dialog").open) return;
  const view = $("log-level").value;
  const box = $("log-lines");
  if (view !== logView) { logView = view; logAfter = -1; box.replaceChildren(); }
  const peers = view === "peers";
  try {
    const answer = await api("GET", peers ? `/api/log/peers?after=${logAfter}`
      : `/api/log?after=${logAfter}&level=${encodeURIComponent(view)}`);
    if (ask !== logAsk) return;  // (asked again meanwhile: a view changed, the dialog reopened)
    const items = peers ? answer.peers : answer.lines;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    for (const item of items) box.append(logRow(item, peers));
    if (items.length) logAfter = items[items.length - 1].id;
    while (box.childElementCount > LOG_ROWS) box.firstElementChild.remove();
    if (atEnd) box.scrollTop = box.scrollHeight;
    $("log-status").textContent = box.childElementCount ? `${box.childElementCount} shown`
      : (peers ? "No peer refused or banned." : "Nothing logged at these levels.");
  } catch (e) {
    if (ask !== logAsk) return;
    $("log-status").textContent = e.message;
  }
  if ($("log-dialog").open) logTimer = setTimeout(pollLog, LOG_POLL);
}

function openLog() {
  logView = "";  // (drawn again from the first line kept)
  $("log-status").textContent = "Loading…";
  $("log-dialog").showModal();
  if (logTimer !== null) clearTimeout(logTimer);
  pollLog();
}

document.addEventListener("DOMContentLoaded", () => {
  $("log-open").addEventListener("click", openLog);
  $("log-close").addEventListener("click", () => $("log-dialog").close());
  $("log-level").addEventListener("change", () => { if (logTimer !== null) clearTimeout(logTimer); pollLog(); });
  $("log-dialog").addEventListener("close", () => { if (logTimer !== null) clearTimeout(logTimer); logTimer = null; });
});
