// The web UI of torrent-engine: a client of the HTTP API like any other.
// The token comes from the address's fragment (#token=...), which browsers never send to the
// server; it is kept in sessionStorage and sent as a header. Live updates come from
// GET /api/events, read with fetch() so the token travels in a header too.
// The job table holds tens of thousands of jobs: events only change the in-memory map and ask
// for a frame; a frame filters and sorts again only when something that decides the shown list
// changed, and draws only the rows in the scrolled window (rows of a fixed height).
"use strict";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
const STATE_LABEL = {
  queued: "queued", checking: "checking", fetching_metadata: "metadata", downloading: "downloading",
  seeding: "seeding", paused: "paused", error: "error", completed: "completed", failed: "failed", cancelled: "cancelled",
};
const SOURCE_LABEL = {lsd: "LSD", dht: "DHT", pex: "PEX"};  // where a peer was heard of
const jobs = new Map();          // id -> job (summary JSON)
const details = new Map();       // id -> {sub, timer, asked, shown, pending} (one job's open)
const streamTokens = new Map();  // id -> the job's read-only stream token (for "stream" links)
// A details view only shows an answer newer than the one it shows: every request for it takes a
// number (asked), the view remembers the number of what it shows (shown), and an older answer
// arriving late is dropped. A file whose change the server has not yet answered stays disabled
// with the choice made (pending: file index -> selected) whatever a refresh says meanwhile.
let tab = "active";
let token = null;
const ROW_HEIGHT = 44;           // px, as .jobs-table tr.job in app.css: the window is computed
const OVERSCAN = 8;              // rows drawn above and below the window (smooth scrolling)
// The table's columns after the name, as qBittorrent's: each with its head, the value it sorts
// by and how its cell is drawn; `shown` ones by default (the browser keeps the choice made in
// the Columns menu). The name column is always there.
const live = (j) => j.state === "downloading" || j.state === "seeding";
const cellText = (f) => (td, j) => { td.textContent = f(j); };
const featuresOf = (j) => j.features || {};
const COLUMNS = [
  {key: "state", label: "State", cls: "c-state", shown: true, sort: (j) => STATE_LABEL[j.state] || j.state,
   draw: (td, j) => {
     const badge = td.firstElementChild || td.appendChild(el("span"));
     badge.textContent = STATE_LABEL[j.state] || j.state;
     badge.className = `state ${j.state}`;
   }},
  {key: "progress", label: "Progress", cls: "c-progress", shown: true, sort: (j) => j.progress || 0,
   draw: (td, j) => {
     if (!td.firstElementChild) {
       td.append(el("div", {class: "progress"}, el("div", {class: "bar"}, el("div", {class: "fill"})),
                    el("span", {class: "pct"})));
     }
     const pct = Math.floor((j.progress || 0) * 1000) / 10;
     td.querySelector(".fill").style.width = `${pct}%`;
     td.querySelector(".pct").textContent = `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)} %`;
   }},
  {key: "size", label: "Size", cls: "num c-size", shown: true, sort: (j) => j.total_size || 0,
   draw: cellText((j) => (j.total_size ? bytes(j.total_size) : ""))},
  {key: "total_size", label: "Total size", title: "every file of the torrent, wanted or not", cls: "num c-size",
   sort: (j) => j.torrent_size || 0, draw: cellText((j) => (j.torrent_size != null ? bytes(j.torrent_size) : ""))},
  {key: "done", label: "Done", title: "verified bytes of the wanted files", cls: "num c-size",
   sort: (j) => j.done_size || 0, draw: cellText((j) => (j.total_size ? bytes(j.done_size || 0) : ""))},
  {key: "down", label: "↓", title: "download rate", cls: "num c-rate", shown: true, sort: (j) => j.download_rate || 0,
   draw: cellText((j) => (live(j) && j.download_rate ? rate(j.download_rate) : ""))},
  {key: "up", label: "↑", title: "upload rate", cls: "num c-rate", shown: true, sort: (j) => j.upload_rate || 0,
   draw: cellText((j) => (live(j) && j.upload_rate ? rate(j.upload_rate) : ""))},
  {key: "eta", label: "ETA", title: "time left at the current rate", cls: "num c-time",
   sort: (j) => (j.eta == null ? Infinity : j.eta), draw: cellText((j) => (j.eta == null ? "" : duration(j.eta)))},
  {key: "seeds", label: "Seeds", title: "connected peers that have every piece", cls: "num c-count",
   sort: (j) => j.seeds || 0, draw: cellText((j) => (live(j) ? String(j.seeds || 0) : ""))},
  {key: "peers", label: "Peers", title: "connected peers", cls: "num c-count",
   sort: (j) => j.peers || 0, draw: cellText((j) => (live(j) ? String(j.peers || 0) : ""))},
  {key: "ratio", label: "Ratio", title: "uploaded over downloaded", cls: "num c-count",
   sort: (j) => j.ratio || 0, draw: cellText((j) => (j.ratio || 0).toFixed(2))},
  {key: "downloaded", label: "Downloaded", cls: "num c-size", sort: (j) => j.downloaded || 0,
   draw: cellText((j) => bytes(j.downloaded || 0))},
  {key: "uploaded", label: "Uploaded", cls: "num c-size", sort: (j) => j.uploaded || 0,
   draw: cellText((j) => bytes(j.uploaded || 0))},
  {key: "category", label: "Category", cls: "c-text", sort: (j) => (featuresOf(j).category || "").toLowerCase(),
   draw: cellText((j) => featuresOf(j).category || "")},
  {key: "tags", label: "Tags", cls: "c-text", sort: (j) => (featuresOf(j).tags || []).join(", ").toLowerCase(),
   draw: cellText((j) => (featuresOf(j).tags || []).join(", "))},
  {key: "added", label: "Added", cls: "c-added", shown: true, sort: (j) => j.created_at || 0,
   draw: (td, j) => { td.textContent = shortWhen(j.created_at); td.title = when(j.created_at); }},
  {key: "completed", label: "Completed", cls: "c-added", sort: (j) => j.completed_at || 0,
   draw: (td, j) => { td.textContent = shortWhen(j.completed_at); td.title = when(j.completed_at); }},
  {key: "seeding_time", label: "Seeding time", cls: "num c-time", sort: (j) => j.seeding_time || 0,
   draw: cellText((j) => (j.seeding_time ? duration(j.seeding_time) : ""))},
  {key: "time_active", label: "Time active", title: "time spent downloading or seeding (not paused or queued)",
   cls: "num c-time", sort: (j) => j.time_active || 0,
   draw: cellText((j) => (j.time_active ? duration(j.time_active) : ""))},
  {key: "availability", label: "Availability",
   title: "distributed copies: whole copies of the torrent among the connected peers and us (blank while it does not run)",
   cls: "num c-count", sort: (j) => (j.availability == null ? -1 : j.availability),
   draw: cellText((j) => (j.availability == null ? "" : j.availability.toFixed(3)))},
  {key: "tracker", label: "Tracker", title: "the host of the job's first tracker", cls: "c-text",
   sort: (j) => (j.tracker_hosts || [])[0] || "",
   draw: (td, j) => { const h = j.tracker_hosts || []; td.textContent = h[0] || ""; td.title = h.join(", "); }},
  {key: "save_path", label: "Save path", cls: "c-path", sort: (j) => (j.options || {}).save_path || "",
   draw: (td, j) => { td.textContent = (j.options || {}).save_path || ""; td.title = td.textContent; }},
  {key: "queue", label: "#", title: "place in the queue", cls: "num c-count",
   sort: (j) => j.queue_position || Infinity, draw: cellText((j) => (j.queue_position ? String(j.queue_position) : ""))},
  {key: "limits", label: "Share limits", title: "the job's own ratio and seeding-time limits", cls: "c-text",
   sort: (j) => featuresOf(j).ratio_limit ?? -1, draw: cellText(shareLimits)},
];
// each column's width (px; the name takes what is left, at least NAME_WIDTH: the table scrolls
// sideways past that)
// (the default columns fit beside the open sidebar from a 1366 px wide window up: browser tests)
const WIDTH = {"c-state": 124, "c-progress": 140, "c-size": 84, "c-rate": 88, "c-time": 92, "c-count": 64,
               "c-text": 120, "c-added": 132, "c-path": 180};
const NAME_WIDTH = 200, FIXED_WIDTH = 32 + 30 + 142;  // (the name; the select, expand and actions columns)
const widthOf = (c) => WIDTH[c.cls.split(" ").pop()];
const COLUMN = new Map(COLUMNS.map((c) => [c.key, c]));
const SORT_KEYS = {name: (j) => (j.name || j.info_hash || "").toLowerCase(),
                   ...Object.fromEntries(COLUMNS.map((c) => [c.key, c.sort]))};
let columns = [];                // the keys of the columns shown, in COLUMNS' order
const sortBy = {active: {key: "added", dir: 1}, history: {key: "added", dir: -1}};
const filters = {status: "", category: "", tag: "", tracker: "", issue: "", search: ""};  // "": all; "\u0000": none
// The sidebar's status filters, as qBittorrent's: each a test of a job (the counts are the jobs
// of the tab that pass it, whatever the other filters).
const LIVE = new Set(["downloading", "fetching_metadata"]);
const isActive = (j) => (j.download_rate || 0) > 0 || (j.upload_rate || 0) > 0;
const STATUS = [
  ["", "All", () => true],
  ["downloading", "Downloading", (j) => LIVE.has(j.state)
    || (["queued", "paused", "checking"].includes(j.state) && (j.progress || 0) < 1)],
  ["seeding", "Seeding", (j) => j.state === "seeding"],
  ["completed", "Completed", (j) => j.state === "completed" || (j.progress || 0) >= 1],
  ["running", "Running", (j) => !FINISHED.has(j.state) && j.state !== "paused"],
  ["paused", "Paused", (j) => j.state === "paused"],
  ["active", "Active", isActive],
  ["inactive", "Inactive", (j) => !isActive(j)],
  ["stalled", "Stalled", (j) => (LIVE.has(j.state) && !j.download_rate) || (j.state === "seeding" && !j.upload_rate)],
  ["checking", "Checking", (j) => j.state === "checking"],
  ["errored", "Errored", (j) => j.state === "error" || j.state === "failed"],
  ["moving", "Moving", (j) => !!j.moving],
];
const STATUS_TEST = new Map(STATUS.map(([key, , test]) => [key, test]));
// The sidebar's tracker status filters, as qBittorrent 5.1's: what went wrong with a job's last
// announces (its tracker_issues).
const ISSUES = [["", "All"], ["warning", "Warning"], ["tracker_error", "Tracker error"], ["other_error", "Other error"]];
const selected = new Set();      // ids of the selected jobs (always among those shown)
let view = [];                   // the jobs shown, filtered and sorted (refreshed in a frame)
let viewStale = true;            // something that decides `view` changed: filter and sort again
let reorderTimer = null;         // a sort key alone changed: sort again within a second
let frame = 0;                   // the requested animation frame (0: none)
let lastClicked = -1;            // index in `view` of the last row ticked (shift-click: a range)
let current = -1;                // index in `view` of the keyboard's row (arrows move it, Enter opens it)
let lastEventId = null;
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
const shareRatio = (c) => (c.downloaded ? (c.uploaded / c.downloaded).toFixed(2) : "–");  // ({downloaded, uploaded})
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
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;  // (a style attribute is an inline style the CSP refuses)
    else e.setAttribute(k, v);
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
    const error = new Error(msg);
    error.field = data && data.field ? data.field : null;  // (the offending input, when named)
    error.status = res.status;
    throw error;
  }
  return data;
}
const act = (promise) => promise.catch((e) => showError(e.message));

// ---- live events (SSE over fetch) -------------------------------------------------------

// ---- the status bar ----------------------------------------------------------------------

let myRole = null;  // the signed-in principal's role (GET /api/me; null until it answers)
let limits = null;  // the settings the status bar shows: the global and alternative limits
let addPausedShown = null;  // the add_paused setting last given to the "Start paused" box

function statusStats(stats) {
  $("sb-down").textContent = rate(stats.download_rate);
  $("sb-up").textContent = rate(stats.upload_rate);
  $("sb-dht").textContent = (stats.dht_nodes || 0).toLocaleString();
  // (as qBittorrent's connection status: firewalled until a peer from outside connected)
  $("sb-port").textContent = !stats.listen_port ? "not listening"
    : stats.incoming_connections ? "reachable" : "firewalled";
  $("sb-port-state").title = !stats.listen_port ? "no port is listening for peers"
    : stats.incoming_connections ? `port ${stats.listen_port}: peers from outside this host and its local network connect`
    : `port ${stats.listen_port}: no peer from outside this host and its local network has connected since it `
      + "opened (it may be closed at a router or a firewall, or no peer has tried yet)";
  $("sb-peers").textContent = (stats.peers || 0).toLocaleString();
  const moved = stats.transfer;  // (this run's bytes beside the rates, as qBittorrent's status bar)
  if (moved) {
    $("sb-down-data").textContent = `(${bytes(moved.session.downloaded)})`;
    $("sb-up-data").textContent = `(${bytes(moved.session.uploaded)})`;
    const all = moved.all_time;
    $("sb-all-down").textContent = bytes(all.downloaded);
    $("sb-all-up").textContent = bytes(all.uploaded);
    $("sb-all-ratio").textContent = shareRatio(all);
    $("sb-alltime").title = `every run of the daemon together: ${all.session_count.toLocaleString()} `
      + `start(s), ${all.added.toLocaleString()} torrent(s) added`;
  }
  if ("free_space" in stats) $("sb-free").textContent = stats.free_space == null ? "?" : bytes(stats.free_space);
}

function statusLimits(settings) {
  limits = settings;
  const alt = !!settings.alt_speed_enabled;
  const shown = (n) => (n ? `[${rate(n)}]` : "");
  $("sb-down-limit").textContent = shown(alt ? settings.alt_download_limit : settings.download_limit);
  $("sb-up-limit").textContent = shown(alt ? settings.alt_upload_limit : settings.upload_limit);
  $("sb-alt").setAttribute("aria-pressed", String(alt));
  if (settings.add_paused !== addPausedShown) {  // (the setting is the box's default; an add says)
    addPausedShown = settings.add_paused;
    $("add-paused").checked = !!settings.add_paused;
  }
}

async function refreshStatus() {
  const [stats, settings] = await Promise.all([api("GET", "/api/stats"), api("GET", "/api/settings")]);
  statusStats(stats);
  statusLimits(settings);
}

async function toggleAlt() {
  const on = $("sb-alt").getAttribute("aria-pressed") !== "true";
  statusLimits(await api("PATCH", "/api/settings", {alt_speed_enabled: on}));
}

function setConn(state, text) {
  $("conn").className = `conn ${state}`;
  $("conn-text").textContent = text;
  $("sb-conn").textContent = state === "live" ? "connected" : text;
}

// The live events, followed for as long as the page is open: a stream that fails, ends or
// goes silent past two heartbeats (the server sends one every 15 s) is asked again after a
// pause (1 s, doubling to 8 s), with the id of the last event seen, so the server replays what
// was missed (or sends every job anew): the list is current again without a reload.
const STREAM_SILENCE = 40000;  // ms without a byte before the stream is taken for lost
let streamLost = false;        // the stream was lost since it was last live (the bar says so)

async function followEvents() {
  let pause = 1000;
  for (;;) {
    if (!token) return;
    const abort = new AbortController();
    let watchdog = setTimeout(() => abort.abort(), STREAM_SILENCE);
    try {
      const headers = {Authorization: `Bearer ${token}`, Accept: "text/event-stream"};
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const res = await fetch("/api/events", {headers, cache: "no-store", signal: abort.signal});
      if (res.status === 401) { logout(); return; }
      if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
      setConn("live", "live");
      pause = 1000;
      if (streamLost) {  // (back: what the events do not carry is asked again too)
        streamLost = false;
        refreshStatus().catch(() => {});
        for (const id of details.keys()) refreshDetails(id);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", from = 0;
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), STREAM_SILENCE);
        buffer += value.replace(/\r\n?/g, "\n");
        // Look for the end of an event only in what arrived since the last look: a snapshot of
        // 10 000 jobs (megabytes) arrives in hundreds of chunks.
        let cut;
        while ((cut = buffer.indexOf("\n\n", from)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          from = 0;
          dispatch(block);
        }
        from = Math.max(0, buffer.length - 1);
      }
    } catch (e) {
      /* fall through to the retry */
    } finally { clearTimeout(watchdog); abort.abort(); }
    if (!token) return;
    streamLost = true;
    setConn("down", "reconnecting…");
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(8000, pause * 2);
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
      changed();
      break;
    case "job.added": case "job.state": case "job.progress": case "job.updated":
      upsert(msg.job);
      if (name !== "job.progress") refreshDetails(msg.job.id);
      break;
    case "job.removed":
      jobs.delete(msg.job_id);
      selected.delete(msg.job_id);
      if (details.has(msg.job_id)) closeDetails();
      changed();
      break;
    case "service.stats":
      $("stat-down").textContent = rate(msg.stats.download_rate);
      $("stat-up").textContent = rate(msg.stats.upload_rate);
      statusStats(msg.stats);
      statsUpdate(msg.stats);  // (statistics.js)
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

// ---- the job table ----------------------------------------------------------------------

function onTab(job) { return tab === "history" ? FINISHED.has(job.state) : !FINISHED.has(job.state); }

function shown(job) {
  if (!onTab(job)) return false;
  if (filters.status && !STATUS_TEST.get(filters.status)(job)) return false;
  const f = job.features || {};
  if (filters.category && (filters.category === "\u0000" ? f.category : f.category !== filters.category)) return false;
  if (filters.tag && (filters.tag === "\u0000" ? (f.tags || []).length : !(f.tags || []).includes(filters.tag))) return false;
  const hosts = job.tracker_hosts || [];
  if (filters.tracker && (filters.tracker === "\u0000" ? hosts.length : !hosts.includes(filters.tracker))) return false;
  if (filters.issue && !(job.tracker_issues || []).includes(filters.issue)) return false;
  if (filters.search && !(job.name || job.info_hash || "").toLowerCase().includes(filters.search)) return false;
  return true;
}

// Whether a new version of a job may move it in or out of the shown list, or in its order.
function decidesView(old, job) {
  if (!old || old.state !== job.state || old.name !== job.name) return "now";
  if (filters.status && STATUS_TEST.get(filters.status)(old) !== STATUS_TEST.get(filters.status)(job)) return "now";
  const a = old.features || {}, b = job.features || {};
  if (a.category !== b.category || (a.tags || []).join("\n") !== (b.tags || []).join("\n")) return "now";
  if ((old.tracker_hosts || []).join("\n") !== (job.tracker_hosts || []).join("\n")) return "now";
  if ((old.tracker_issues || []).join("\n") !== (job.tracker_issues || []).join("\n")) return "now";
  const key = SORT_KEYS[sortBy[tab].key];
  return key(old) !== key(job) ? "soon" : "";
}

// A job changed (an event, an action's answer): keep it, and draw it in the next frame.
function upsert(job) {
  const why = decidesView(jobs.get(job.id), job);
  jobs.set(job.id, job);
  if (why === "now") viewStale = true;
  else if (why === "soon" && !reorderTimer) {
    // A rate or progress moved: the order follows within a second (sorting 10 000 jobs in
    // every frame while they all report would take the page's whole time).
    reorderTimer = setTimeout(() => { reorderTimer = null; changed(); }, 1000);
  }
  schedule();
}

function changed() { viewStale = true; schedule(); }

function schedule() { if (!frame) frame = requestAnimationFrame(paint); }

// Filter and sort every job again: the tab counts, the filters' choices and the shown list.
function rebuild() {
  viewStale = false;
  let unfinished = 0, finished = 0;
  const statuses = new Map(STATUS.map(([key]) => [key, 0]));
  const categories = new Map([["", 0], ["\u0000", 0]]), tags = new Map([["", 0], ["\u0000", 0]]);
  const trackers = new Map([["", 0], ["\u0000", 0]]), issues = new Map();
  const bump = (counts, key) => counts.set(key, (counts.get(key) || 0) + 1);
  const list = [];
  for (const job of jobs.values()) {
    if (FINISHED.has(job.state)) finished++; else unfinished++;
    if (onTab(job)) {
      const f = job.features || {};
      for (const [key, , test] of STATUS) if (test(job)) bump(statuses, key);
      bump(categories, ""); bump(categories, f.category || "\u0000");
      bump(tags, "");
      if (!(f.tags || []).length) bump(tags, "\u0000");
      for (const t of f.tags || []) bump(tags, t);
      bump(trackers, "");
      if (!(job.tracker_hosts || []).length) bump(trackers, "\u0000");
      for (const h of job.tracker_hosts || []) bump(trackers, h);
      bump(issues, "");
      for (const i of job.tracker_issues || []) bump(issues, i);
    }
    if (shown(job)) list.push(job);
  }
  const {key, dir} = sortBy[tab];
  const value = SORT_KEYS[key];
  // ties in the name's order, then the id's (a stable order whatever the key)
  const byName = SORT_KEYS.name;
  const keyed = list.map((j) => [value(j), key === "name" ? "" : byName(j), j.id, j]);
  keyed.sort((a, b) => (a[0] < b[0] ? -dir : a[0] > b[0] ? dir
    : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] < b[2] ? -1 : 1));
  view = keyed.map((k) => k[3]);
  const ids = new Set(view.map((j) => j.id));
  for (const id of selected) if (!ids.has(id)) selected.delete(id);
  $("count-active").textContent = unfinished;
  $("count-history").textContent = finished;
  $("view-count").textContent = view.length.toLocaleString();
  $("view-total").textContent = (tab === "history" ? finished : unfinished).toLocaleString();
  sideList($("filters-status"), "status", STATUS.map(([key, label]) => [key, label, statuses.get(key)]));
  sideList($("filters-category"), "category", named(categories, "All", "Uncategorized", (c) => c));
  sideList($("filters-tag"), "tag", named(tags, "All", "Untagged", (t) => `#${t}`));
  sideList($("filters-tracker"), "tracker", named(trackers, "All", "Trackerless", (h) => h));
  sideList($("filters-issue"), "issue", ISSUES.map(([key, label]) => [key, label, issues.get(key)]));
  const empty = $("empty");
  empty.hidden = view.length > 0;
  const any = tab === "history" ? finished : unfinished;
  empty.textContent = any ? "No job matches the filters."
    : tab === "history" ? "No finished jobs." : "Nothing here yet. Paste a magnet link above to start.";
  $("clear-history").hidden = tab !== "history" || finished === 0;
  for (const th of document.querySelectorAll(".jobs-table th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
}

// A sidebar list's entries [value, label, count]: "All", the "none" entry, then the names in order.
function named(counts, all, none, label) {
  const names = [...counts.keys()].filter((k) => k && k !== "\u0000").sort();
  return [["", all, counts.get("")], ["\u0000", none, counts.get("\u0000")],
          ...names.map((k) => [k, label(k), counts.get(k)])];
}

// A sidebar list, redrawn only when its entries or counts differ; the one chosen stays listed
// (with 0) even when no job has it any more, so that it can be left.
function sideList(list, filter, entries) {
  const current = filters[filter];
  if (current && !entries.some(([v]) => v === current)) entries.push([current, current, 0]);
  const sig = entries.map(([v, t, n]) => `${v}\t${t}\t${n}`).join("\n") + `\n${current}`;
  if (list.dataset.sig === sig) return;
  list.dataset.sig = sig;
  list.replaceChildren(...entries.map(([value, label, n]) => el("li", {},
    el("button", {class: "filter", "data-filter": filter, "data-value": value,
                  "aria-pressed": String(value === current), title: label},
       el("span", {class: "filter-name", text: label}), el("span", {class: "count", text: (n || 0).toLocaleString()})))));
}

function onFilter(ev) {
  const b = ev.target.closest("button[data-filter]");
  if (!b) return;
  filters[b.dataset.filter] = b.dataset.value;
  if (window.matchMedia("(max-width: 640px)").matches) showSidebar(false);  // (a drawer: closed once chosen)
  refilter();
}

function showSidebar(on) {
  $("sidebar").classList.toggle("closed", !on);
  $("sidebar-toggle").setAttribute("aria-expanded", String(on));
}

// One frame: the shown list if it is stale, then the rows of the scrolled window.
function paint() {
  frame = 0;
  if (viewStale) rebuild();
  const scroller = $("jobs-scroll");
  const body = $("jobs");
  const head = $("jobs-table").tHead.offsetHeight;
  const top = Math.max(0, scroller.scrollTop - head);
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const count = Math.ceil(scroller.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
  const last = Math.min(view.length, first + count);
  // spacer rows keep the scrollbar true to the whole list
  let before = body.querySelector("tr.spacer.before"), after = body.querySelector("tr.spacer.after");
  if (!before) {
    const span = String(columns.length + 4);
    before = el("tr", {class: "spacer before", "aria-hidden": "true"}, el("td", {colspan: span}));
    after = el("tr", {class: "spacer after", "aria-hidden": "true"}, el("td", {colspan: span}));
    body.replaceChildren(before, after);
  }
  before.style.height = `${first * ROW_HEIGHT}px`;
  after.style.height = `${(view.length - last) * ROW_HEIGHT}px`;
  before.hidden = first === 0;
  after.hidden = last === view.length;
  // Rows are kept by their place in the window and refilled: no row moves under the pointer.
  const rows = [];
  for (let n = before.nextElementSibling; n !== after; n = n.nextElementSibling) rows.push(n);
  while (rows.length < last - first) {
    const row = rowTemplate().cloneNode(true);
    after.before(row);
    rows.push(row);
  }
  while (rows.length > last - first) rows.pop().remove();
  // (the list keeps the versions it was sorted with: a row shows the newest)
  for (let i = first; i < last; i++) drawRow(rows[i - first], jobs.get(view[i].id) || view[i], i);
  const all = $("select-all");
  all.checked = view.length > 0 && selected.size === view.length;
  all.indeterminate = selected.size > 0 && selected.size < view.length;
  $("bulk").hidden = selected.size === 0;
  $("bulk-count").textContent = selected.size.toLocaleString();
}

function drawRow(node, job, index) {
  const open = details.has(job.id);
  const sel = selected.has(job.id);
  node.dataset.index = index;
  const cur = index === current;
  if (node._job === job && node._sel === sel && node._open === open && node._cur === cur) return;
  node._job = job; node._sel = sel; node._open = open; node._cur = cur;
  node.dataset.jobId = job.id;
  node.className = `job ${job.state}${sel ? " selected" : ""}${open ? " open" : ""}${cur ? " current" : ""}`;
  node.querySelector("input[data-select]").checked = sel;
  node.querySelector(".expand").setAttribute("aria-expanded", String(open));
  const name = node.querySelector(".name");
  name.textContent = job.name || job.info_hash;
  name.title = job.name || job.info_hash;
  for (const td of node.querySelectorAll("td[data-col]")) COLUMN.get(td.dataset.col).draw(td, job);
  node.querySelector(".line2").replaceChildren(secondLine(job));
  const finished = FINISHED.has(job.state);
  node.querySelector('[data-action="pause"]').hidden = finished || job.state === "paused";
  node.querySelector('[data-action="resume"]').hidden = job.state !== "paused";
  node.querySelector('[data-action="cancel"]').hidden = finished;
}

function shareLimits(j) {
  const f = featuresOf(j), parts = [];
  if (f.ratio_limit != null) parts.push(f.ratio_limit < 0 ? "ratio ∞" : `ratio ${f.ratio_limit}`);
  if (f.seeding_time_limit != null) parts.push(f.seeding_time_limit < 0 ? "time ∞" : duration(f.seeding_time_limit));
  if (f.idle_seeding_limit != null) parts.push(f.idle_seeding_limit < 0 ? "idle ∞" : `idle ${duration(f.idle_seeding_limit)}`);
  return parts.join(", ");
}

// ---- the columns: chosen in the Columns menu, kept by the browser -------------------------

let template = null;  // the row template for the columns shown (made again when they change)

function rowTemplate() {
  if (!template) {
    template = $("job-template").content.firstElementChild.cloneNode(true);
    const actions = template.querySelector(".c-actions");
    for (const key of columns) {
      const c = COLUMN.get(key);
      actions.before(el("td", {class: `${c.cls}${key === "state" ? "" : " hide-narrow"}`, "data-col": key}));
    }
  }
  return template;
}

function setColumns(keys) {
  columns = COLUMNS.map((c) => c.key).filter((k) => keys.includes(k));
  localStorage.setItem("torrent-engine-columns", JSON.stringify(columns));
  template = null;
  const head = $("jobs-head");
  for (const th of head.querySelectorAll("th[data-col]")) th.remove();
  const actions = head.querySelector(".c-actions");
  for (const key of columns) {
    const c = COLUMN.get(key);
    actions.before(el("th", {class: `${c.cls}${key === "state" ? "" : " hide-narrow"}`, "data-sort": key, "data-col": key,
                             style: `width: ${widthOf(c)}px`},
      el("button", {class: "sort", "data-sort": key, ...(c.title ? {title: c.title} : {})}, c.label)));
  }
  const least = NAME_WIDTH + FIXED_WIDTH + columns.reduce((sum, key) => sum + widthOf(COLUMN.get(key)), 0);
  $("jobs-table").style.setProperty("--least-width", `${least}px`);
  for (const box of $("columns-list").querySelectorAll("input")) box.checked = columns.includes(box.value);
  $("jobs").replaceChildren();  // (rows and spacers made again for these columns)
  changed();
}

function loadColumns() {
  let keys = null;
  try { keys = JSON.parse(localStorage.getItem("torrent-engine-columns")); } catch (e) { keys = null; }
  if (!Array.isArray(keys)) keys = COLUMNS.filter((c) => c.shown).map((c) => c.key);
  $("columns-list").append(...COLUMNS.map((c) => el("label", {class: "check"},
    el("input", {type: "checkbox", value: c.key}), c.title && c.label.length < 3 ? `${c.label} ${c.title}` : c.label)));
  setColumns(keys);
}

function shortWhen(t) {  // 2026-05-04 17:03, local time (the same width on every row)
  if (!t) return "";
  const d = new Date(t * 1000), two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

// Under the name: an error, or why the job is stuck, or what else there is to know.
function secondLine(job) {
  const message = job.error || (job.result && job.result.error);
  if (message) return el("span", {class: "error-line", text: message, title: message});
  if (job.stall) {
    const since = job.stall.reason === "not_moved" ? "Not moved since" : "Stalled since";
    const text = `${since} ${when(job.stall.since)}: ${job.stall.message}`;
    return el("span", {class: "stall-line", text, title: job.stall.reason});
  }
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
      parts.push(`${job.peers || 0} ${job.peers === 1 ? "peer" : "peers"}`);
    }
    if (job.state === "downloading") parts.push(`ETA ${duration(job.eta)}`);
  }
  const text = parts.join(" · ");
  return el("span", {class: "meta", text, title: text});
}

function onRowClick(ev) {
  const row = ev.target.closest("tr.job");
  if (!row || !row.dataset.jobId) return;
  const id = row.dataset.jobId;
  const box = ev.target.closest("input[data-select]");
  if (box) { tick(Number(row.dataset.index), box.checked, ev.shiftKey); return; }
  const b = ev.target.closest("button");
  if (b && b.dataset.action) { onAction(id, b.dataset.action); return; }
  if (b || ev.target.closest("a, input")) return;
  current = Number(row.dataset.index);  // a click elsewhere on the row opens its details
  if (!details.has(id)) openDetails(id); else schedule();
}

// A double-click starts or stops the job (qBittorrent's default action).
function onRowDoubleClick(ev) {
  const row = ev.target.closest("tr.job");
  if (!row || !row.dataset.jobId || ev.target.closest("button, a, input")) return;
  const job = jobs.get(row.dataset.jobId);
  if (job && !FINISHED.has(job.state)) onAction(job.id, job.state === "paused" ? "resume" : "pause");
}

// ---- the right-click menu and the keyboard ----------------------------------------------

let menuIds = [];  // the jobs the open menu acts on

// The jobs a menu opened on `id`'s row acts on: the selection when the row is in it (as
// qBittorrent), else that row alone (which becomes the selection).
function menuTargets(id) {
  if (!selected.has(id)) { selected.clear(); selected.add(id); schedule(); }
  return view.filter((j) => selected.has(j.id)).map((j) => j.id);
}

function openMenu(ids, x, y) {
  menuIds = ids;
  const all = (test) => ids.length > 0 && ids.every((id) => { const j = jobs.get(id); return j && test(j); });
  const menu = $("context-menu");
  const checks = {force_start: all((j) => featuresOf(j).force_start), first_last_piece: all((j) => featuresOf(j).first_last_piece),
                  auto_managed: all((j) => featuresOf(j).auto_managed),
                  sequential: all((j) => (j.options || {}).sequential)};
  for (const b of menu.querySelectorAll("button[data-menu]")) {
    const key = b.dataset.menu;
    if (key in checks) { b.setAttribute("role", "menuitemcheckbox"); b.setAttribute("aria-checked", String(checks[key])); }
  }
  menu.querySelector('[data-menu="rename"]').hidden = ids.length !== 1;
  // (automatic management saves outside a user's folder: an admin's, a user is refused it)
  menu.querySelector('[data-menu="auto_managed"]').hidden = myRole !== null && myRole !== "admin";
  menu.querySelector('[data-menu="resume"]').hidden = !ids.some((id) => (jobs.get(id) || {}).state === "paused");
  menu.querySelector('[data-menu="pause"]').hidden = !ids.some((id) => { const j = jobs.get(id); return j && !FINISHED.has(j.state) && j.state !== "paused"; });
  menu.hidden = false;
  const w = menu.offsetWidth, h = menu.offsetHeight;
  menu.style.left = `${Math.max(0, Math.min(x, window.innerWidth - w - 4))}px`;
  menu.style.top = `${Math.max(0, Math.min(y, window.innerHeight - h - 4))}px`;
  menu.querySelector("button:not([hidden])").focus();
}

function closeMenu() {
  if ($("context-menu").hidden) return;
  $("context-menu").hidden = true;
  menuIds = [];
}

function onContextMenu(ev) {
  const row = ev.target.closest("tr.job");
  if (!row || !row.dataset.jobId) return;
  ev.preventDefault();
  current = Number(row.dataset.index);
  openMenu(menuTargets(row.dataset.jobId), ev.clientX, ev.clientY);
}

// A PATCH body given to every job picked, in one request (POST /api/jobs/bulk, "update": the
// server changes them many at a time, where a request a job took seconds for thousands); what it
// refuses is said with its reason (the first, and how many).
async function patchEach(ids, body, what) {
  if (!ids.length) return;
  try {
    const answer = await api("POST", "/api/jobs/bulk", {action: "update", ids, changes: body});
    for (const job of answer.jobs) upsert(job);
    if (answer.failed.length) {
      const first = answer.failed[0];
      showError(`${what}: ${answer.failed.length} of ${ids.length} refused (${first.error})`);
    }
  } catch (e) { showError(`${what}: ${e.message}`); }
}

// `call` for each job in turn (its answer, the job, kept); the refusals said together.
async function eachJob(ids, call, what) {
  const refused = [];
  for (const id of ids) {
    try { upsert(await call(id)); } catch (e) { refused.push(e.message); }
  }
  if (refused.length) showError(`${what}: ${refused.length} of ${ids.length} refused (${refused[0]})`);
}

// Share limits (as qBittorrent's dialog): each limit the global one, none, or a value (the
// ratio, minutes for the times), and the action at the limit; the first job picked's shown, Set
// gives them to every job picked. A value that is no number ≥ 0 is said in the dialog, which stays.
let shareIds = [];
// the limits the dialog sets: [the feature, its label, the seconds of its unit (0: a ratio)]
const SHARE_LIMITS = [["ratio_limit", "Ratio", 0], ["seeding_time_limit", "Seeding time", 60],
                      ["idle_seeding_limit", "Inactive seeding time", 60]];

function buildShareLimits() {  // (once: a row each, its mode and its value)
  $("share-limits").replaceChildren(...SHARE_LIMITS.map(([key, label, unit]) => {
    const mode = el("select", {"data-mode": "", "aria-label": `${label.toLowerCase()} limit`},
      el("option", {value: "default", text: "the global limit"}), el("option", {value: "none", text: "none"}),
      el("option", {value: "set", text: unit ? "at most, minutes" : "at most"}));
    const value = el("input", {"data-value": "", type: "number", min: "0", step: unit ? "1" : "0.01",
                               "aria-label": `${label.toLowerCase()} at most`});
    mode.addEventListener("change", () => { value.hidden = mode.value !== "set"; });
    return el("div", {class: "share-limit row", "data-limit": key},
      el("label", {class: "field"}, `${label} `, mode), value);
  }));
}

function shareRow(key) {
  return $("share-limits").querySelector(`[data-limit="${key}"]`);
}

function openShare(targets) {
  shareIds = targets.map((j) => j.id);
  const f = featuresOf(targets[0]);
  for (const [key, , unit] of SHARE_LIMITS) {
    const v = f[key], row = shareRow(key);
    const mode = v === null || v === undefined ? "default" : v < 0 ? "none" : "set";
    row.querySelector("[data-mode]").value = mode;
    const input = row.querySelector("[data-value]");
    input.value = mode !== "set" ? "" : String(unit ? Math.round(v / unit) : v);
    input.hidden = mode !== "set";
  }
  $("share-action").value = f.share_limit_action || "";
  $("share-what").textContent = targets.length === 1 ? (targets[0].name || targets[0].info_hash)
    : `${targets.length.toLocaleString()} jobs`;
  $("share-error").hidden = true;
  $("share-dialog").returnValue = "";
  $("share-dialog").showModal();
}

function readShare() {
  const body = {};
  for (const [key, label, unit] of SHARE_LIMITS) {
    const row = shareRow(key), mode = row.querySelector("[data-mode]").value;
    if (mode === "default") body[key] = null;
    else if (mode === "none") body[key] = -1;
    else {
      const text = row.querySelector("[data-value]").value.trim(), n = Number(text);
      if (text === "" || !Number.isFinite(n) || n < 0) {
        throw new Error(`${label}: "${text}" is no number ≥ 0${unit ? " of minutes" : ""}`);
      }
      body[key] = unit ? Math.round(n * unit) : n;
    }
  }
  body.share_limit_action = $("share-action").value || null;
  return body;
}

// The jobs moved in the queue together, keeping their order among themselves (as qBittorrent's
// topPrio and the others): to the top, the last first; up, the first first; and so on.
async function queueEach(targets, move) {
  const order = targets.filter((j) => j.queue_position > 0).sort((a, b) => a.queue_position - b.queue_position);
  if (move === "top" || move === "down") order.reverse();
  const refused = [];
  for (const j of order) {
    try { await api("POST", `/api/jobs/${j.id}/queue`, {move}); } catch (e) { refused.push(e.message); }
  }
  if (order.length < targets.length) refused.push("a finished job has no place in the queue");
  if (refused.length) showError(`queue: ${refused.length} of ${targets.length} refused (${refused[0]})`);
}

function magnetOf(job) {
  const hash = job.info_hash || "";
  const xt = hash.length === 64 ? `urn:btmh:1220${hash}` : `urn:btih:${hash}`;
  return `magnet:?xt=${xt}${job.name ? `&dn=${encodeURIComponent(job.name)}` : ""}`;
}

// What the API answers at `path` saved from the browser as the file `name` (Error: the API's reason)
async function saveFrom(path, name) {
  const res = await fetch(path, {headers: {Authorization: `Bearer ${token}`}, cache: "no-store"});
  if (!res.ok) {
    let reason = `${res.status} ${res.statusText}`;
    try { reason = (await res.json()).error || reason; } catch (e) { /* not JSON */ }
    throw new Error(reason);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Each job's .torrent saved from the browser (qBittorrent's Export .torrent); one whose metainfo
// is not known (a magnet before its metadata) says why
async function exportTorrents(targets) {
  for (const j of targets) {
    const name = j.name || j.info_hash;
    try { await saveFrom(`/api/jobs/${encodeURIComponent(j.id)}/torrent/file`, `${name}.torrent`); }
    catch (e) { showError(`export ${name}: ${e.message}`); }
  }
}

async function copy(textToCopy) {
  try { await navigator.clipboard.writeText(textToCopy); return; } catch (e) { /* no clipboard API here */ }
  const area = el("textarea", {class: "offscreen", "aria-hidden": "true"});
  area.value = textToCopy;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

// A question with a text answer (and choices to pick from): the answer, or null if cancelled.
// (folders: "dirs" to offer the download folder's folders as the answer is typed: paths.js)
function ask(title, label, value, choicesList, hint, folders = "") {
  const dialog = $("prompt-dialog");
  if (folders) $("prompt-input").dataset.folders = folders; else delete $("prompt-input").dataset.folders;
  $("prompt-title").textContent = title;
  $("prompt-label").textContent = label;
  $("prompt-input").value = value;
  $("prompt-hint").textContent = hint || "";
  $("prompt-choices").replaceChildren(...choicesList.map((c) => el("option", {value: c})));
  dialog.returnValue = "";
  dialog.showModal();
  $("prompt-input").select();
  return new Promise((resolve) => dialog.addEventListener("close", () =>
    resolve(dialog.returnValue === "ok" ? $("prompt-input").value.trim() : null), {once: true}));
}

async function onMenu(action) {
  const ids = menuIds;
  closeMenu();
  if (!ids.length) return;
  const targets = ids.map((id) => jobs.get(id)).filter(Boolean);
  const one = targets.length === 1 ? targets[0] : null;
  const on = (b) => b.getAttribute("aria-checked") !== "true";
  const item = $("context-menu").querySelector(`[data-menu="${action}"]`);
  if (["pause", "resume", "recheck", "reannounce"].includes(action)) return bulk(action, ids);
  if (["force_start", "first_last_piece", "auto_managed"].includes(action)) return patchEach(ids, {[action]: on(item)}, item.textContent);
  if (action === "sequential") return patchEach(ids, {sequential: on(item)}, item.textContent);
  if (action === "details") return openDetails(ids[0]);
  if (action === "export") return exportTorrents(targets);
  if (action === "delete") return askDelete(ids, one ? (one.name || one.info_hash) : `${ids.length.toLocaleString()} jobs`);
  if (action.startsWith("copy_")) {
    const pick = {copy_name: (j) => j.name || j.info_hash, copy_hash: (j) => j.info_hash, copy_magnet: magnetOf}[action];
    return copy(targets.map(pick).join("\n")).catch((e) => showError(`copy: ${e.message}`));
  }
  if (action.startsWith("queue_")) return queueEach(targets, action.slice(6));
  if (action === "share_limits") return openShare(targets);
  if (action === "rename") {
    if (!one) return;
    const answer = await ask("Rename", "The name shown for the job", one.name || "", [],
                             "Its files keep their names (the Content tab's Rename… renames those).");
    if (answer) await patchEach(ids, {rename: answer}, "rename");
    return;
  }
  if (action === "move") {
    const answer = await ask("Set location", "Save path (relative to the download root, or inside it)",
                             one ? (one.options || {}).save_path || "" : "", [],
                             "The files move there and are verified again.", "dirs");
    if (answer) await eachJob(ids, (id) => api("POST", `/api/jobs/${id}/move`, {save_path: answer}), "set location");
    return;
  }
  if (action === "download_limit" || action === "upload_limit") {
    const now = one ? (one.options || {})[action] || 0 : 0;
    const label = action === "download_limit" ? "Download" : "Upload";
    const answer = await ask(`${label} rate limit`, `${label} limit in KiB/s (0: none)`, String(Math.round(now / 1024)), [],
                             "The job's own limit, beside the global ones.");
    if (answer === null) return;
    const kib = Number(answer);
    if (!/^\d+(\.\d+)?$/.test(answer) || !Number.isFinite(kib)) return showError(`${label} limit: "${answer}" is no number of KiB/s`);
    return patchEach(ids, {[action]: Math.round(kib * 1024)}, `${label.toLowerCase()} limit`);
  }
  if (action === "category") {
    let names = [];
    try { names = (await api("GET", "/api/categories")).categories.map((c) => c.name); } catch (e) { showError(e.message); }
    const answer = await ask("Category", "Category (empty: none)", one ? featuresOf(one).category || "" : "", names,
                             "A category must exist (Settings, or an add that names it).");
    if (answer !== null) await patchEach(ids, {category: answer || null}, "category");
  } else if (action === "tags") {
    const known = new Set();
    for (const j of jobs.values()) for (const t of featuresOf(j).tags || []) known.add(t);
    const answer = await ask("Tags", "Tags, separated by commas", one ? (featuresOf(one).tags || []).join(", ") : "",
                             [...known].sort(), "The jobs get exactly these tags.");
    if (answer !== null) await patchEach(ids, {tags: answer.split(",").map((t) => t.trim()).filter(Boolean)}, "tags");
  }
}

function onMenuKey(ev) {
  const items = [...$("context-menu").querySelectorAll("button:not([hidden])")];
  const at = items.indexOf(document.activeElement);
  if (ev.key === "Escape") { ev.preventDefault(); closeMenu(); $("jobs-scroll").focus(); }
  else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    items[(at + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
  }
}

// The keyboard on the list: arrows move the current row, Enter opens it, Delete asks about the
// selection (or the current row), Ctrl-A selects every job shown, "/" goes to the search, the
// menu key (or Shift-F10) opens the menu. Not while typing in a field or a dialog is open.
function onKey(ev) {
  if (document.querySelector("dialog[open]") || !$("context-menu").hidden) return;
  const t = ev.target;
  if (t.closest && t.closest("input, textarea, select, [contenteditable]")) {
    if (ev.key === "Escape" && t.id === "search") t.blur();
    return;
  }
  if ($("app").hidden) return;
  // (in the details, keys are their controls' own: Enter on a button presses it; Escape closes)
  if (t.closest && t.closest("#details") && ev.key !== "Escape") return;
  const move = (to) => {
    current = Math.max(0, Math.min(view.length - 1, to));
    const scroller = $("jobs-scroll"), head = $("jobs-table").tHead.offsetHeight;
    const top = current * ROW_HEIGHT, bottom = top + ROW_HEIGHT + head;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (bottom > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = bottom - scroller.clientHeight;
    schedule();
  };
  const job = current >= 0 && current < view.length ? view[current] : null;
  if (ev.key === "/") { ev.preventDefault(); $("search").focus(); }
  else if (ev.key === "ArrowDown") { ev.preventDefault(); move(current + 1); }
  else if (ev.key === "ArrowUp") { ev.preventDefault(); move(current < 0 ? 0 : current - 1); }
  else if (ev.key === "Home") { ev.preventDefault(); move(0); }
  else if (ev.key === "End") { ev.preventDefault(); move(view.length - 1); }
  else if (ev.key === "Enter" && job) { ev.preventDefault(); openDetails(job.id); }
  else if (ev.key === " " && job) { ev.preventDefault(); tick(current, !selected.has(job.id), ev.shiftKey); }
  else if ((ev.key === "a" || ev.key === "A") && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); selectAll(true); }
  else if (ev.key === "Escape") { if (details.size) closeDetails(); else selectAll(false); }
  else if (ev.key === "Delete" || ev.key === "Backspace") {
    const ids = selected.size ? view.filter((j) => selected.has(j.id)).map((j) => j.id) : job ? [job.id] : [];
    if (!ids.length) return;
    ev.preventDefault();
    askDelete(ids, ids.length === 1 ? (jobs.get(ids[0]).name || ids[0]) : `${ids.length.toLocaleString()} jobs`);
  } else if ((ev.key === "ContextMenu" || (ev.key === "F10" && ev.shiftKey)) && job) {
    ev.preventDefault();
    const row = document.querySelector(`#jobs tr.job[data-index="${current}"]`);
    const r = row ? row.getBoundingClientRect() : {left: 100, bottom: 100};
    openMenu(menuTargets(job.id), r.left + 40, r.bottom);
  }
}

// A row's box ticked or unticked; with shift, every row from the last one ticked to this one.
function tick(index, on, range) {
  const from = range && lastClicked >= 0 ? Math.min(lastClicked, index) : index;
  const to = range && lastClicked >= 0 ? Math.max(lastClicked, index) : index;
  for (let i = from; i <= to && i < view.length; i++) {
    if (on) selected.add(view[i].id); else selected.delete(view[i].id);
  }
  lastClicked = index;
  schedule();
}

function selectAll(on) {
  selected.clear();
  if (on) for (const job of view) selected.add(job.id);
  schedule();
}

function sortOn(key) {
  const s = sortBy[tab];
  if (s.key === key) s.dir = -s.dir;
  else { s.key = key; s.dir = ["name", "state", "added", "category", "tags", "save_path", "queue"].includes(key) ? 1 : -1; }
  refilter();
}

// The list's filter or order changed: back to its top (a range of ticks no longer means a range).
function refilter() {
  lastClicked = -1;
  current = -1;
  $("jobs-scroll").scrollTop = 0;
  changed();
}

function onAction(id, action) {
  const job = jobs.get(id);
  if (action === "pause") act(api("POST", `/api/jobs/${id}/pause`).then(upsert));
  else if (action === "resume") act(api("POST", `/api/jobs/${id}/resume`).then(upsert));
  else if (action === "cancel") {
    askDelete([id], `${job ? (job.name || job.info_hash) : id}`);
  } else if (action === "details") {
    if (details.has(id)) closeDetails(); else openDetails(id);
  }
}

// ---- bulk actions -----------------------------------------------------------------------

let pendingIds = [];  // the jobs the delete dialog asks about

function askDelete(ids, name) {
  pendingIds = ids;
  const finished = tab === "history";
  $("cancel-verb").textContent = finished ? "Remove" : "Cancel";
  $("cancel-name").textContent = name;
  $("cancel-what").textContent = finished ? "The jobs leave the history."
    : ids.length === 1 ? "The download stops; the job moves to the history."
    : "The downloads stop; the jobs move to the history.";
  $("cancel-confirm").textContent = finished ? "Remove" : ids.length === 1 ? "Cancel job" : "Cancel jobs";
  $("cancel-delete").checked = false;
  $("cancel-dialog").showModal();
}

// One request for the whole selection: the server acts on each job and says which it could not.
async function bulk(action, ids, deleteFiles = false) {
  if (!ids.length) return;
  const busy = $("bulk-busy");
  busy.hidden = false;
  busy.textContent = `${action}: ${ids.length.toLocaleString()} jobs…`;
  for (const b of document.querySelectorAll("[data-bulk]")) b.disabled = true;
  try {
    const answer = await api("POST", "/api/jobs/bulk", {action, ids, delete_files: deleteFiles});
    for (const job of answer.jobs) upsert(job);
    for (const id of answer.removed || []) { jobs.delete(id); selected.delete(id); }
    if (answer.removed && answer.removed.length) changed();
    if (answer.failed.length) {
      const first = answer.failed[0];
      showError(`${action}: ${answer.failed.length} of ${ids.length} jobs refused (${first.id}: ${first.error})`);
    }
  } catch (e) { showError(e.message); }
  finally {
    busy.hidden = true;
    for (const b of document.querySelectorAll("[data-bulk]")) b.disabled = false;
  }
}

function onBulk(action) {
  const ids = view.filter((j) => selected.has(j.id)).map((j) => j.id);
  if (action === "delete") askDelete(ids, `${ids.length.toLocaleString()} ${ids.length === 1 ? "job" : "jobs"}`);
  else bulk(action, ids);
}

// ---- details: details.js (General, Trackers, Peers, HTTP sources, Content, Speed) ------

// ---- adding -----------------------------------------------------------------------------

function addOptions() {
  const opts = {};
  const save = $("add-save-path").value.trim();
  if (save) opts.save_path = save;
  const peers = $("add-peers").value.split(/[\s,]+/).filter(Boolean);
  if (peers.length) opts.peers = peers;
  opts.paused = $("add-paused").checked;
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

// .torrent files chosen by the card's button: the add dialog, with them and the card's options
function addFile() {
  const files = [...$("add-file").files];
  $("add-file").value = "";
  if (files.length) act(openAdd(files));
}

// Files dragged over the page: a drop zone; dropped .torrent files open the add dialog.
function setupDrop() {
  let depth = 0;
  const zone = $("drop-zone");
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (ev) => { if (hasFiles(ev) && token) { depth++; zone.hidden = false; } });
  document.addEventListener("dragleave", () => { if (depth && --depth === 0) zone.hidden = true; });
  document.addEventListener("dragover", (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  document.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth = 0;
    zone.hidden = true;
    const files = [...ev.dataTransfer.files].filter((f) => /\.torrent$/i.test(f.name) || f.type === "application/x-bittorrent");
    if (!files.length) { showError("Only .torrent files can be dropped here."); return; }
    if (!$("app").hidden) act(openAdd(files));
  });
}

// ---- tabs, history, login ---------------------------------------------------------------

function switchTab(name) {
  tab = name;
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("selected", b.dataset.tab === name);
  filters.status = "";  // (the statuses differ from one tab to the other)
  selected.clear();
  const openId = $("details").dataset.jobId;  // (the details of a job the tab does not list close)
  if (openId && !(jobs.has(openId) && onTab(jobs.get(openId)))) closeDetails();
  refilter();
}

function logout() {
  sessionStorage.removeItem("torrent-engine-token");
  token = null;
  $("app").hidden = true;
  $("statusbar").hidden = true;
  clearInterval(statusTimer);
  $("login").hidden = false;
  setConn("down", "signed out");
}

let statusTimer = null;

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("statusbar").hidden = false;
  act(refreshStatus());
  clearInterval(statusTimer);  // (the free space and the limits set elsewhere, every 30 s)
  statusTimer = setInterval(() => refreshStatus().catch(() => {}), 30000);
  followEvents();
  loadHistory().catch(() => {});
  api("GET", "/api/me").then((me) => {  // (the log, the feeds and the creator are an admin's: the others are not offered them)
    myRole = me.role;
    $("log-open").hidden = me.role !== "admin";
    $("feeds-open").hidden = me.role !== "admin";
    $("create-open").hidden = me.role !== "admin";
    $("daemon-stop").hidden = me.role !== "admin";  // (stopping the daemon: an admin's)
  }).catch(() => {});
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
  $("settings-open").addEventListener("click", () => act(openSettings()));
  $("settings-form").addEventListener("submit", saveSettings);
  $("settings-close").addEventListener("click", () => $("settings-dialog").close());
  const stopAsk = (asking) => { $("daemon-stop-ask").hidden = !asking; $("daemon-stop").hidden = asking; };
  $("daemon-stop").addEventListener("click", () => stopAsk(true));
  $("daemon-stop-no").addEventListener("click", () => stopAsk(false));
  $("daemon-stop-yes").addEventListener("click", () => {
    $("daemon-stop-ask").hidden = true;
    api("POST", "/api/shutdown").then(() => {
      $("settings-status").textContent = "The daemon is stopping: every job is saved. Start it again on its machine.";
    }).catch((e) => { $("settings-status").textContent = e.message; $("daemon-stop").hidden = false; });
  });
  $("add-file").addEventListener("change", addFile);
  buildShareLimits();
  $("share-form").addEventListener("submit", (ev) => {
    if (!ev.submitter || ev.submitter.value !== "ok") return;
    let body;
    try { body = readShare(); } catch (e) {
      ev.preventDefault();
      $("share-error").textContent = e.message;
      $("share-error").hidden = false;
      return;
    }
    act(patchEach(shareIds, body, "share limits"));
  });
  $("add-open").addEventListener("click", () => act(openAdd()));
  $("ad-files").addEventListener("change", () => { act(takeFiles([...$("ad-files").files])); $("ad-files").value = ""; });
  $("add-dialog-form").addEventListener("submit", (ev) => act(submitAdd(ev)));
  $("ad-cancel").addEventListener("click", () => $("add-dialog").close());
  setupDrop();
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => switchTab(b.dataset.tab));
  $("clear-history").addEventListener("click", () =>
    act(api("DELETE", "/api/jobs?finished=true").then(() => {
      for (const [id, j] of jobs) if (FINISHED.has(j.state)) jobs.delete(id);
      changed();
    })));
  $("cancel-dialog").addEventListener("close", () => {
    const ids = pendingIds;
    pendingIds = [];
    if ($("cancel-dialog").returnValue !== "cancel" || !ids.length) return;
    const del = $("cancel-delete").checked;
    if (tab === "history") bulk("forget", ids, del);
    else if (ids.length === 1) act(api("DELETE", `/api/jobs/${ids[0]}?delete_files=${del}`).then(upsert));
    else bulk("cancel", ids, del);
  });
  // the table
  $("sb-alt").addEventListener("click", () => act(toggleAlt()));
  $("jobs").addEventListener("click", onRowClick);
  $("jobs").addEventListener("dblclick", onRowDoubleClick);
  $("jobs").addEventListener("contextmenu", onContextMenu);
  $("context-menu").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-menu]");
    if (b) act(onMenu(b.dataset.menu));
  });
  $("context-menu").addEventListener("keydown", onMenuKey);
  document.addEventListener("keydown", onKey);
  document.addEventListener("mousedown", (ev) => { if (!$("context-menu").contains(ev.target)) closeMenu(); });
  window.addEventListener("blur", closeMenu);
  $("jobs-scroll").addEventListener("scroll", schedule, {passive: true});
  window.addEventListener("resize", schedule);
  $("jobs-head").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.sort");
    if (b) sortOn(b.dataset.sort);
  });
  loadColumns();
  document.addEventListener("click", (ev) => {  // (the Columns menu closes on a click elsewhere)
    if ($("columns").open && !$("columns").contains(ev.target)) $("columns").open = false;
  });
  $("columns").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { $("columns").open = false; $("columns").querySelector("summary").focus(); }
  });
  $("columns-list").addEventListener("change", () => setColumns(
    [...$("columns-list").querySelectorAll("input:checked")].map((box) => box.value)));
  $("select-all").addEventListener("change", (ev) => selectAll(ev.target.checked));
  $("search").addEventListener("input", (ev) => { filters.search = ev.target.value.trim().toLowerCase(); refilter(); });
  $("sidebar").addEventListener("click", onFilter);
  $("sidebar-close").addEventListener("click", () => showSidebar(false));
  $("sidebar").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && window.matchMedia("(max-width: 640px)").matches) {
      showSidebar(false);
      $("sidebar-toggle").focus();
    }
  });
  // the filters: beside the list on a wide window (and kept so), a drawer on a phone (closed)
  const narrow = window.matchMedia("(max-width: 640px)").matches;
  showSidebar(!narrow && localStorage.getItem("torrent-engine-sidebar") !== "closed");
  $("sidebar-toggle").addEventListener("click", () => {
    const on = $("sidebar").classList.contains("closed");
    showSidebar(on);
    if (!window.matchMedia("(max-width: 640px)").matches) localStorage.setItem("torrent-engine-sidebar", on ? "open" : "closed");
    schedule();
  });
  for (const b of document.querySelectorAll("[data-bulk]")) b.addEventListener("click", () => onBulk(b.dataset.bulk));
  $("bulk-clear").addEventListener("click", () => selectAll(false));
  setupDetails();  // (details.js)
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("login-token").value.trim();
    sessionStorage.setItem("torrent-engine-token", token);
    start();
  });
  $("user-login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(userLogin());
  });
  if (token) start(); else logout();
});

// A user's name and password give a session token (POST /api/login), sent as the API token is.
async function userLogin() {
  const res = await fetch("/api/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({name: $("login-name").value.trim(), password: $("login-password").value}),
  });
  $("login-password").value = "";
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    $("login-error").textContent = body.error || `sign-in refused (${res.status})`;
    $("login-error").hidden = false;
    return;
  }
  $("login-error").hidden = true;
  token = body.token;
  sessionStorage.setItem("torrent-engine-token", token);
  start();
}
