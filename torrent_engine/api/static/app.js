// The web UI of torrent-engine: a client of the HTTP API like any other.
// The token comes from the address's fragment (#token=...), which browsers never send to the
// server; it is kept in sessionStorage and sent as a header. Live updates come from
// GET /api/events, read with fetch() so the token travels in a header too.
"use strict";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
const STATE_LABEL = {
  queued: "queued", checking: "checking", fetching_metadata: "metadata", downloading: "downloading",
  seeding: "seeding", paused: "paused", error: "error", completed: "completed", failed: "failed", cancelled: "cancelled",
};
const SOURCE_LABEL = {lsd: "LSD", dht: "DHT", pex: "PEX"};  // where a peer was heard of
const jobs = new Map();          // id -> job (summary JSON)
const details = new Map();       // id -> {sub, timer, asked, shown, pending}
const streamTokens = new Map();  // id -> the job's read-only stream token (for "stream" links)
// A details view only shows an answer newer than the one it shows: every request for it takes a
// number (asked), the view remembers the number of what it shows (shown), and an older answer
// arriving late is dropped. A file whose change the server has not yet answered stays disabled
// with the choice made (pending: file index -> selected) whatever a refresh says meanwhile.
let tab = "active";
let token = null;
let lastEventId = null;
let pendingCancel = null;
// The charts: the server's last hour (GET /api/stats/history, a sample every `interval` s),
// extended from the live service.stats events at the same interval.
const chart = {interval: 10, span: 3600, samples: [], last: null, peersNow: null, topPeers: 0};

const $ = (id) => document.getElementById(id);

// ---- formatting -------------------------------------------------------------------------

function bytes(n) {
  if (n == null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}
const rate = (n) => `${bytes(n || 0)}/s`;
function duration(s) {
  if (s == null || !isFinite(s)) return "∞";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d) return `${d}d ${h % 24}h`;
  if (h) return `${h}h ${m % 60}m`;
  return `${m}m ${s % 60}s`;
}
function when(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return d.toLocaleString();
}
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- errors -----------------------------------------------------------------------------

function showError(message) {
  const box = el("div", {class: "error", role: "alert"}, el("span", {text: message}));
  const close = el("button", {title: "dismiss", text: "✕"});
  close.onclick = () => box.remove();
  box.append(close);
  $("errors").append(box);
  setTimeout(() => box.remove(), 12000);
}

// ---- the API ----------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {Authorization: `Bearer ${token}`};
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const res = await fetch(path, {method, headers, body: payload, cache: "no-store"});
  let data = null;
  try { data = await res.json(); } catch (e) { /* empty */ }
  if (res.status === 401) { logout(); throw new Error("the API token was refused"); }
  if (!res.ok) {
    const msg = data && data.error ? data.error : `${res.status} ${res.statusText}`;
    throw new Error(data && data.field ? `${msg}` : msg);
  }
  return data;
}
const act = (promise) => promise.catch((e) => showError(e.message));

// ---- live events (SSE over fetch) -------------------------------------------------------

function setConn(state, text) {
  $("conn").className = `conn ${state}`;
  $("conn-text").textContent = text;
}

async function followEvents() {
  for (;;) {
    if (!token) return;
    try {
      const headers = {Authorization: `Bearer ${token}`, Accept: "text/event-stream"};
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const res = await fetch("/api/events", {headers, cache: "no-store"});
      if (res.status === 401) { logout(); return; }
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      setConn("live", "live");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          dispatch(block);
        }
      }
    } catch (e) {
      /* fall through to the retry */
    }
    setConn("down", "reconnecting");
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function dispatch(block) {
  let name = "message", data = "", id = null;
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data += (data ? "\n" : "") + value;
    else if (field === "id") id = value;
  }
  if (id) lastEventId = id;
  if (!data) return;
  const msg = JSON.parse(data);
  switch (name) {
    case "snapshot":
      jobs.clear();
      for (const j of msg.jobs) jobs.set(j.id, j);
      render();
      break;
    case "job.added": case "job.state": case "job.progress": case "job.updated":
      jobs.set(msg.job.id, msg.job);
      renderJob(msg.job);
      if (name !== "job.progress") { render(); refreshDetails(msg.job.id); }
      break;
    case "job.removed":
      jobs.delete(msg.job_id);
      render();
      break;
    case "service.stats":
      $("stat-down").textContent = rate(msg.stats.download_rate);
      $("stat-up").textContent = rate(msg.stats.upload_rate);
      chartLive(msg.stats);
      break;
  }
}

// ---- charts -----------------------------------------------------------------------------

async function loadHistory() {
  const h = await api("GET", "/api/stats/history");
  chart.interval = h.interval;
  chart.samples = h.samples.map((x) => ({t: x.time, down: x.download_rate, up: x.upload_rate, peers: x.peers}));
  chart.last = chart.samples.length ? chart.samples[chart.samples.length - 1].t : null;
  drawCharts();
}

function chartLive(stats) {
  const now = Date.now() / 1000;
  chart.peersNow = stats.peers;
  peersLabel();
  if (chart.last !== null && now - chart.last < chart.interval) return;
  chart.last = now;
  chart.samples.push({t: now, down: stats.download_rate, up: stats.upload_rate, peers: stats.peers});
  drawCharts();
}

function points(samples, value, top, now, span) {
  const W = 600, H = 80, pad = 3;
  return samples.map((x) => {
    const px = W - ((now - x.t) / span) * W;
    const py = H - pad - (top > 0 ? (value(x) / top) * (H - 2 * pad) : 0);
    return `${px.toFixed(1)},${py.toFixed(1)}`;
  }).join(" ");
}

function drawCharts() {
  const now = Date.now() / 1000;
  chart.samples = chart.samples.filter((x) => now - x.t <= chart.span);
  const s = chart.samples;
  // the x axis spans what there is, from a minute up to the hour
  const span = Math.min(chart.span, Math.max(60, s.length ? now - s[0].t : 0));
  const topRate = Math.max(0, ...s.map((x) => Math.max(x.down, x.up)));
  const topPeers = Math.max(0, ...s.map((x) => x.peers));
  $("chart-down").setAttribute("points", points(s, (x) => x.down, topRate, now, span));
  $("chart-up").setAttribute("points", points(s, (x) => x.up, topRate, now, span));
  $("chart-peers-line").setAttribute("points", points(s, (x) => x.peers, Math.max(1, topPeers), now, span));
  const label = span >= 3600 ? "last hour" : `last ${Math.max(1, Math.round(span / 60))} min`;
  $("chart-rate-span").textContent = $("chart-peers-span").textContent = label;
  $("chart-rate-max").textContent = topRate > 0 ? `top ${rate(topRate)}` : "idle";
  chart.topPeers = topPeers;
  if (chart.peersNow === null && s.length) chart.peersNow = s[s.length - 1].peers;
  peersLabel();
}

function peersLabel() {
  if (chart.peersNow !== null) $("chart-peers-now").textContent = `${chart.peersNow} now, top ${chart.topPeers}`;
}

// ---- rendering --------------------------------------------------------------------------

function visible(job) { return tab === "history" ? FINISHED.has(job.state) : !FINISHED.has(job.state); }

function render() {
  const list = $("jobs");
  const all = [...jobs.values()];
  const shown = all.filter(visible).sort((a, b) =>
    tab === "history" ? (b.updated_at || 0) - (a.updated_at || 0) : (a.created_at || 0) - (b.created_at || 0));
  $("count-active").textContent = all.filter((j) => !FINISHED.has(j.state)).length;
  $("count-history").textContent = all.filter((j) => FINISHED.has(j.state)).length;
  const keep = new Set(shown.map((j) => j.id));
  for (const node of [...list.children]) if (!keep.has(node.dataset.jobId)) node.remove();
  shown.forEach((job, i) => {
    let node = list.querySelector(`[data-job-id="${CSS.escape(job.id)}"]`);
    if (!node) node = makeJob(job);
    // Moved only when out of place: moving a node takes it out of the page for a moment, which
    // drops a click whose button went down before and up after.
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    renderJob(job);
  });
  $("empty").hidden = shown.length > 0;
  $("empty").textContent = tab === "history" ? "No finished jobs." : "Nothing here yet. Paste a magnet link above to start.";
  $("clear-history").hidden = tab !== "history" || shown.length === 0;
}

function makeJob(job) {
  const node = $("job-template").content.firstElementChild.cloneNode(true);
  node.dataset.jobId = job.id;
  node.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.action) onAction(job.id, b.dataset.action, node);
    else if (b.dataset.sub) { details.get(job.id).sub = b.dataset.sub; refreshDetails(job.id); }
  });
  node.addEventListener("change", (ev) => {
    const box = ev.target;
    if (box.dataset.fileIndex !== undefined) selectFile(job.id, box);
  });
  return node;
}

function renderJob(job) {
  const node = document.querySelector(`[data-job-id="${CSS.escape(job.id)}"]`);
  if (!node) return;
  const pct = Math.floor((job.progress || 0) * 1000) / 10;
  node.className = `job ${job.state}`;
  node.querySelector(".name").textContent = job.name || job.info_hash;
  node.querySelector(".name").title = job.name || job.info_hash;
  const state = node.querySelector(".state");
  state.textContent = STATE_LABEL[job.state] || job.state;
  state.className = `state ${job.state}`;
  node.querySelector(".fill").style.width = `${pct}%`;
  node.querySelector(".pct").textContent = `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)} %`;
  const parts = [];
  const f = job.features || {};
  if (f.category) parts.push(`[${f.category}]`);
  if (f.tags && f.tags.length) parts.push(f.tags.map((t) => `#${t}`).join(" "));
  if (job.total_size) parts.push(`${bytes(job.done_size)} of ${bytes(job.total_size)}`);
  if (FINISHED.has(job.state)) {
    const r = job.result || {};
    if (r.duration != null) parts.push(`in ${duration(r.duration)}`);
    if (r.average_rate) parts.push(`avg ${rate(r.average_rate)}`);
    if (job.completed_at || job.updated_at) parts.push(when(job.completed_at || job.updated_at));
  } else {
    if (job.state === "downloading" || job.state === "seeding") {
      parts.push(`↓ ${rate(job.download_rate)}`, `↑ ${rate(job.upload_rate)}`);
      parts.push(`${job.peers || 0} ${job.peers === 1 ? "peer" : "peers"}`);
    }
    if (job.state === "downloading") parts.push(`ETA ${duration(job.eta)}`);
  }
  node.querySelector(".meta").textContent = parts.join(" · ");
  let err = node.querySelector(".error-line");
  const message = job.error || (job.result && job.result.error);
  if (message) {
    if (!err) { err = el("div", {class: "error-line"}); node.querySelector(".progress").after(err); }
    err.textContent = message;
  } else if (err) err.remove();
  let stall = node.querySelector(".stall-line");
  if (job.stall && !message) {
    if (!stall) { stall = el("div", {class: "stall-line"}); node.querySelector(".progress").after(stall); }
    stall.textContent = `Stalled since ${when(job.stall.since)}: ${job.stall.message}`;
    stall.title = job.stall.reason;
  } else if (stall) stall.remove();
  const finished = FINISHED.has(job.state);
  node.querySelector('[data-action="pause"]').hidden = finished || job.state === "paused";
  node.querySelector('[data-action="resume"]').hidden = job.state !== "paused";
  node.querySelector('[data-action="cancel"]').hidden = finished;
}

function onAction(id, action, node) {
  const job = jobs.get(id);
  if (action === "pause") act(api("POST", `/api/jobs/${id}/pause`).then(upsert));
  else if (action === "resume") act(api("POST", `/api/jobs/${id}/resume`).then(upsert));
  else if (action === "cancel") {
    pendingCancel = id;
    $("cancel-name").textContent = job ? (job.name || job.info_hash) : id;
    $("cancel-delete").checked = false;
    $("cancel-dialog").showModal();
  } else if (action === "details") {
    const box = node.querySelector(".details");
    const open = box.hidden;
    box.hidden = !open;
    node.querySelector(".expand").setAttribute("aria-expanded", String(open));
    if (open) {
      details.set(id, {sub: "files", timer: setInterval(() => refreshDetails(id), 2000),
                       asked: 0, shown: 0, pending: new Map()});
      refreshDetails(id);
    } else {
      clearInterval(details.get(id)?.timer);
      details.delete(id);
    }
  }
}

function upsert(job) { jobs.set(job.id, job); render(); }

async function refreshDetails(id) {
  const open = details.get(id);
  if (!open) return;
  const n = ++open.asked;
  let job;
  try { job = await api("GET", `/api/jobs/${id}`); } catch (e) { return; }
  if (!streamTokens.has(id) && (job.files || []).length) {
    try { streamTokens.set(id, (await api("GET", `/api/jobs/${id}/stream-token`)).token); } catch (e) { /* no links */ }
  }
  showDetails(id, job, n);
}

// Show ``job`` (the answer to request number ``n``) in the open details of job ``id``, unless a
// newer answer is shown already.
function showDetails(id, job, n) {
  const open = details.get(id);
  const node = document.querySelector(`[data-job-id="${CSS.escape(id)}"]`);
  if (!open || !node || n <= open.shown) return;
  open.shown = n;
  for (const b of node.querySelectorAll(".subtab")) b.classList.toggle("selected", b.dataset.sub === open.sub);
  const body = node.querySelector(".subbody");
  if (open.sub !== "files" || !updateFiles(body, job, open.pending)) {
    body.replaceChildren(detailView(job, open.sub, open.pending));
  }
}

// A file (un)ticked: the change goes to the server; until it answers, the box keeps the choice
// and is disabled; then the view shows the server's answer (or, on an error, what it holds).
function selectFile(id, box) {
  const open = details.get(id);
  const index = Number(box.dataset.fileIndex);
  const selected = box.checked;
  if (open) open.pending.set(index, selected);
  box.disabled = true;
  const done = () => { if (open && open.pending.get(index) === selected) open.pending.delete(index); };
  // The answer is newer than whatever a refresh asked before it came (numbered when it comes).
  api("PATCH", `/api/jobs/${id}`, {file_priorities: {[index]: selected ? 1 : 0}})
    .then((job) => { done(); if (open) showDetails(id, job, ++open.asked); })
    .catch((e) => { done(); showError(e.message); refreshDetails(id); });
}

// Update a files table in place (the same files in the same order): a click is not lost to a
// redraw, and a box being clicked stays the same element. False if it must be drawn anew.
function updateFiles(body, job, pending) {
  const files = job.files || [];
  const rows = body.querySelectorAll("tbody tr");
  if (!files.length || rows.length !== files.length) return false;
  if (streamTokens.has(job.id) !== Boolean(body.querySelector("a.stream"))) return false;
  const finished = FINISHED.has(job.state);
  for (let i = 0; i < files.length; i++) {
    const box = rows[i].querySelector("input[data-file-index]");
    if (!box || Number(box.dataset.fileIndex) !== files[i].index) return false;
  }
  files.forEach((f, i) => {
    const cells = rows[i].children;
    fileBox(cells[0].firstChild, f, finished, pending);
    cells[1].textContent = f.path;
    cells[2].textContent = bytes(f.size);
    cells[3].textContent = `${Math.floor((f.progress || 0) * 100)} %`;
    cells[4].firstChild.firstChild.style.width = `${(f.progress || 0) * 100}%`;
  });
  return true;
}

function fileBox(box, f, finished, pending) {
  const waiting = pending.has(f.index);
  box.checked = waiting ? pending.get(f.index) : f.selected;
  box.disabled = finished || waiting;
  box.title = waiting ? "saving…" : "download this file";
  box.dataset.fileIndex = f.index;
  return box;
}

function table(headers, rows) {
  const head = el("tr", {}, ...headers.map(([h, cls]) => el("th", {class: cls || "", text: h})));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
}

function detailView(job, sub, pending) {
  if (sub === "files") {
    const files = job.files || [];
    if (!files.length) return el("p", {class: "empty", text: "The file list arrives with the metadata."});
    const finished = FINISHED.has(job.state);
    const token = streamTokens.get(job.id);
    const canStream = token && !["failed", "cancelled"].includes(job.state);
    return table([["", ""], ["File", ""], ["Size", "num"], ["Done", "num"], ["", "hide-narrow"], ["", ""]], files.map((f) => {
      const box = fileBox(el("input", {type: "checkbox"}), f, finished, pending);
      const bar = el("div", {class: "mini"}, el("div"));
      bar.firstChild.style.width = `${(f.progress || 0) * 100}%`;
      const url = `/api/jobs/${encodeURIComponent(job.id)}/files/${f.index}/stream?token=${encodeURIComponent(token || "")}`;
      const link = canStream ? el("a", {class: "stream", href: url, target: "_blank", rel: "noopener",
                                        title: "play or save this file while it downloads", text: "stream"}) : "";
      return el("tr", {}, el("td", {}, box), el("td", {class: "path", text: f.path}),
        el("td", {class: "num", text: bytes(f.size)}),
        el("td", {class: "num", text: `${Math.floor((f.progress || 0) * 100)} %`}),
        el("td", {class: "hide-narrow"}, bar), el("td", {}, link));
    }));
  }
  if (sub === "peers") {
    const peers = job.peer_list || [];
    if (!peers.length) return el("p", {class: "empty", text: "No peers connected."});
    return table([["Address", ""], ["Via", ""], ["From", "hide-narrow"], ["Client", "hide-narrow"], ["↓", "num"], ["↑", "num"], ["Has", "num"]],
      peers.map((p) => el("tr", {}, el("td", {text: p.address}), el("td", {text: (p.transport || "").toUpperCase()}),
        el("td", {class: "hide-narrow peer-sources", text: (p.sources || []).map((s) => SOURCE_LABEL[s] || s).join(", ")}),
        el("td", {class: "hide-narrow", text: p.client || ""}),
        el("td", {class: "num", text: rate(p.download_rate)}), el("td", {class: "num", text: rate(p.upload_rate)}),
        el("td", {class: "num", text: `${Math.floor((p.progress || 0) * 100)} %`}))));
  }
  if (sub === "trackers") {
    const trackers = job.trackers || [];
    if (!trackers.length) return el("p", {class: "empty", text: "No trackers."});
    return table([["URL", ""], ["Status", ""], ["Peers", "num"]], trackers.map((t) =>
      el("tr", {}, el("td", {class: "path", text: t.url}),
        el("td", {text: t.message ? `${t.status}: ${t.message}` : t.status}),
        el("td", {class: "num", text: String(t.peers ?? "")}))));
  }
  const kv = el("dl", {class: "kv"});
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "") kv.append(el("dt", {text: k}), el("dd", {text: String(v)})); };
  add("Job id", job.id); add("Info-hash", job.info_hash); add("Saved in", job.save_path || (job.options && job.options.save_path));
  add("Added", when(job.created_at)); add("Completed", when(job.completed_at));
  add("Downloaded", bytes(job.downloaded)); add("Uploaded", bytes(job.uploaded));
  add("Seeds", job.seeds); add("Error", job.error);
  if (job.stall) add("Stalled since", `${when(job.stall.since)}: ${job.stall.message}`);
  const f = job.features || {};
  add("Category", f.category); add("Tags", (f.tags || []).join(", "));
  if (job.ratio != null) add("Ratio", job.ratio.toFixed(2));
  if (job.seeding_time) add("Seeding for", duration(job.seeding_time));
  if (job.queue_position) add("Queue position", job.queue_position);
  const limit = (v, unit) => (v == null ? "default" : v < 0 ? "none" : unit(v));
  if (!FINISHED.has(job.state)) {
    add("Ratio limit", limit(f.ratio_limit, (v) => String(v)));
    add("Seeding time limit", limit(f.seeding_time_limit, duration));
  }
  return kv;
}

// ---- adding -----------------------------------------------------------------------------

function addOptions() {
  const opts = {};
  const save = $("add-save-path").value.trim();
  if (save) opts.save_path = save;
  const peers = $("add-peers").value.split(/[\s,]+/).filter(Boolean);
  if (peers.length) opts.peers = peers;
  if ($("add-paused").checked) opts.paused = true;
  if ($("add-sequential").checked) opts.sequential = true;
  return opts;
}

async function addMagnet(ev) {
  ev.preventDefault();
  const source = $("add-source").value.trim();
  if (!source) { showError("Paste a magnet link, or choose a .torrent file."); return; }
  $("add-button").disabled = true;
  try {
    const job = await api("POST", "/api/jobs", {source, ...addOptions()});
    upsert(job);
    $("add-source").value = "";
    if (tab !== "active") switchTab("active");
  } catch (e) { showError(e.message); }
  finally { $("add-button").disabled = false; }
}

async function addFile() {
  const file = $("add-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("torrent", file, file.name);
  const opts = addOptions();
  for (const [k, v] of Object.entries(opts)) form.append(k, Array.isArray(v) ? v.join(" ") : String(v));
  try {
    upsert(await api("POST", "/api/jobs", form));
    if (tab !== "active") switchTab("active");
  } catch (e) { showError(e.message); }
  $("add-file").value = "";
}

// ---- tabs, history, login ---------------------------------------------------------------

function switchTab(name) {
  tab = name;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("selected", b.dataset.tab === name);
  render();
}

function logout() {
  sessionStorage.removeItem("torrent-engine-token");
  token = null;
  $("app").hidden = true;
  $("login").hidden = false;
  setConn("down", "signed out");
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  followEvents();
  loadHistory().catch(() => {});
  api("GET", "/api/health").then((health) => {
    for (const lost of health.lost_jobs || []) showError(`A job record could not be read at start and was lost: ${lost.reason}`);
  }).catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("torrent-engine-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);  // out of sight and history
  }
  token = sessionStorage.getItem("torrent-engine-token");
  $("add-form").addEventListener("submit", addMagnet);
  $("add-file").addEventListener("change", addFile);
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => switchTab(b.dataset.tab));
  $("clear-history").addEventListener("click", () =>
    act(api("DELETE", "/api/jobs?finished=true").then(() => {
      for (const [id, j] of jobs) if (FINISHED.has(j.state)) jobs.delete(id);
      render();
    })));
  $("cancel-dialog").addEventListener("close", () => {
    const id = pendingCancel;
    pendingCancel = null;
    if ($("cancel-dialog").returnValue !== "cancel" || !id) return;
    const del = $("cancel-delete").checked;
    act(api("DELETE", `/api/jobs/${id}?delete_files=${del}`).then(upsert));
  });
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("login-token").value.trim();
    sessionStorage.setItem("torrent-engine-token", token);
    start();
  });
  if (token) start(); else logout();
});
