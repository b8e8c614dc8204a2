"use strict";
// The torrent creator (/api/creations: an admin's), as qBittorrent's: a file or folder of the
// download folder made into a torrent in the background (v1, v2 or hybrid, a piece size, private,
// trackers by tier, web seeds, a comment and a source), seeded at once if asked, its .torrent
// saved from the browser or written into the download folder. The tasks are listed with their
// progress; while the dialog is open and one is unfinished, they are asked again every
// CREATE_POLL ms. A task removed while it runs is stopped, and nothing of it is left.

const CREATE_POLL = 1000;
let createTimer = null;
let createAsk = 0;  // the latest look's number: an earlier one's answer, come late, is dropped

function createSay(text) { $("create-status").textContent = text; }

// The trackers' text as tiers: one URL a line, an empty line between tiers (qBittorrent's way).
function trackerTiers(text) {
  const tiers = [[]];
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (line) tiers[tiers.length - 1].push(line);
    else if (tiers[tiers.length - 1].length) tiers.push([]);
  }
  return tiers.filter((t) => t.length);
}

function creationRequest() {
  const body = {
    source_path: $("create-source").value.trim(),
    version: $("create-version").value,
    piece_length: Number($("create-piece").value),
    private: $("create-private").checked,
    skip_hidden: $("create-skip-hidden").checked,
    start_seeding: $("create-seed").checked,
    comment: $("create-comment").value,
    source: $("create-source-field").value,
    trackers: trackerTiers($("create-trackers").value),
    web_seeds: $("create-web-seeds").value.split("\n").map((l) => l.trim()).filter((l) => l),
  };
  const file = $("create-file").value.trim();
  if (file) body.torrent_file_path = file;
  return body;
}

async function submitCreation(event) {
  event.preventDefault();
  const said = $("create-error");
  said.hidden = true;
  try {
    const task = await api("POST", "/api/creations", creationRequest());
    createSay(`Making "${task.name}"…`);
    await pollCreations();
  } catch (e) {
    said.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    said.hidden = false;
  }
}

async function saveTorrent(task, button) {
  button.disabled = true;
  try {
    await saveFrom(`/api/creations/${encodeURIComponent(task.id)}/torrent`, `${task.name}.torrent`);
    createSay(`Saved "${task.name}.torrent".`);
  } catch (e) {
    createSay(e.message);
  } finally {
    button.disabled = false;
  }
}

async function removeCreation(task) {
  try {
    await api("DELETE", `/api/creations/${encodeURIComponent(task.id)}`);
    createSay(task.status === "running" || task.status === "queued"
      ? `Stopped making "${task.name}".` : `Removed "${task.name}" from the list.`);
    await loadCreations();
  } catch (e) {
    createSay(e.message);
  }
}

function creationRow(task) {
  const what = task.status === "running" ? `hashing, ${task.progress}%`
    : task.status === "finished" ? `made, ${bytes(task.size)}${task.job_id ? ", seeding" : ""}`
    : task.status;
  const detail = el("div", {class: "create-what"},
    el("span", {class: "title", text: task.name, title: task.source_path}),
    el("span", {class: `muted status ${task.status}`, text: what}));
  if (task.status === "running" || task.status === "queued") {
    detail.append(el("progress", {max: "100", value: String(task.progress), "aria-label": `${task.name}: hashed`}));
  }
  if (task.error) detail.append(el("span", {class: "login-error", text: task.error}));
  if (task.torrent_file_path) detail.append(el("span", {class: "muted", text: `written to ${task.torrent_file_path}`}));
  const buttons = el("div", {class: "row"});
  if (task.status === "finished" || task.info_hash) {
    const save = el("button", {type: "button", "data-save": task.id, text: "Save .torrent"});
    save.addEventListener("click", () => saveTorrent(task, save));
    buttons.append(save);
  }
  const unfinished = task.status === "running" || task.status === "queued";
  const remove = el("button", {type: "button", "data-remove": task.id, text: unfinished ? "Stop" : "Remove",
    title: unfinished ? "stop making it: nothing of it is kept" : "take it off the list (what was made stays)"});
  remove.addEventListener("click", () => removeCreation(task));
  buttons.append(remove);
  return el("li", {"data-task": task.id, class: task.status}, detail, buttons);
}

async function loadCreations() {
  const ask = ++createAsk;
  const listing = await api("GET", "/api/creations");
  if (ask !== createAsk) return [];
  const tasks = listing.creations;
  $("create-tasks").replaceChildren(...(tasks.length ? tasks.map(creationRow)
    : [el("li", {class: "muted empty", text: "Nothing made yet."})]));
  return tasks;
}

async function pollCreations() {
  if (createTimer !== null) clearTimeout(createTimer);
  createTimer = null;
  if (!$("create-dialog").open) return;
  let tasks = [];
  try { tasks = await loadCreations(); } catch (e) { createSay(e.message); }
  if ($("create-dialog").open && tasks.some((t) => t.status === "queued" || t.status === "running")) {
    createTimer = setTimeout(pollCreations, CREATE_POLL);
  }
}

function openCreator() {
  createSay("");
  $("create-error").hidden = true;
  $("create-dialog").showModal();
  $("create-source").focus();
  pollCreations();
}

document.addEventListener("DOMContentLoaded", () => {
  const pieces = $("create-piece");
  for (let n = 14; n <= 28; n++) {
    const size = 2 ** n;
    pieces.append(el("option", {value: String(size), text: size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`}));
  }
  $("create-open").addEventListener("click", openCreator);
  $("create-close").addEventListener("click", () => $("create-dialog").close());
  $("create-dialog").addEventListener("close", () => { if (createTimer !== null) clearTimeout(createTimer); createTimer = null; });
  $("create-form").addEventListener("submit", submitCreation);
});
