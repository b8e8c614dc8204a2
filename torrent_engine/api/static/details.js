// A job's details, under the table (a click on its row opens them), as qBittorrent's: General
// (hashes, save path, pieces with their map, availability, times, ratio, limits, comment,
// creator), Trackers (add, edit, remove), Peers (ban), HTTP sources (add, remove), Content (the
// files as a tree: priorities, rename) and Speed (the job's rates over the last minutes).
// Each tab keeps its elements while the job is open: a refresh (every 2 s, and on each event of
// the job) redraws the numbers, never a field being filled in; what the server refuses is said
// beside the control that asked, and the form keeps what was typed.
// Loaded after app.js, whose helpers ($, el, api, bytes, rate, duration, when, showError,
// schedule) and maps (jobs, details, streamTokens) it uses.
"use strict";

const DETAIL_TABS = ["general", "trackers", "peers", "http", "content", "speed"];
let lastSub = "general";            // the tab the next details open on (the last one chosen)
const SPEED_SPAN = 600;             // seconds of rates the speed graph keeps and shows at most
const speeds = new Map();           // job id -> [{t, down, up}], for the jobs opened in this page
// the priorities offered, as qBittorrent's; ours are libtorrent's 0..7, of which 1..5 show as
// Normal (as the qBittorrent dialect says them) and Normal is set as 4, the default
const PRIORITY_CHOICES = [[0, "Do not download"], [4, "Normal"], [6, "High"], [7, "Maximum"]];
const NORMAL = 4;
const prioLevel = (p) => (p <= 0 ? 0 : p >= 6 ? p : NORMAL);
const TRACKER_STATUS = {working: "Working", failed: "Not working", unknown: "Not contacted yet"};
const TRACKER_FAILURE = {refused: "Tracker error", skipped: "Not asked"};  // (how an announce failed)
function trackerStatus(t) {  // (an announce waiting for its answer: "Updating…", as qBittorrent's)
  if (t.updating) return "Updating…";
  return (t.status === "failed" && TRACKER_FAILURE[t.failure]) || TRACKER_STATUS[t.status] || t.status;
}
function nextAnnounce(t) {  // the local time of the tracker's next announce (the server gives none unless due)
  return t.next_announce_at ? new Date(t.next_announce_at * 1000).toLocaleTimeString() : "";
}
// a peer's flags, qBittorrent's letters: how it is connected and where it was heard of
const PEER_FLAGS = [["utp", "P", "µTP"], ["incoming", "I", "incoming connection"], ["tracker", "T", "from a tracker"],
                    ["dht", "H", "from the DHT"], ["pex", "X", "from PEX"], ["lsd", "L", "from LSD"],
                    ["magnet", "M", "from the magnet link"], ["user", "U", "given by the user"]];

// ---- opening, refreshing, the tabs ----------------------------------------------------------

function openDetails(id) {
  closeDetails();
  const open = {
    sub: lastSub, asked: 0, shown: 0, job: null,
    timer: setInterval(() => refreshDetails(id), 2000),
    sampler: setInterval(() => sampleSpeed(id), 1000),
    pending: new Map(),      // file index -> selected, sent and not answered yet
    pendingPrio: new Map(),  // file index -> priority, sent and not answered yet
    views: {},               // tab -> its element, made once while the job is open
    facts: null, pieces: null, seeds: null,  // GET .../torrent, .../pieces, .../webseeds
    collapsed: new Set(),    // the folders of the content folded
    picked: new Set(),       // the content's rows picked (paths), for a priority or a rename
    anchor: null,            // the last row picked (shift-click: a range)
    editing: null,           // the tracker URL being edited (the table stays as it is meanwhile)
    banAsk: null,            // the peer whose ban is being confirmed
    errors: new Map(),       // a control's key -> the server's reason it refused
  };
  details.set(id, open);
  const panel = $("details");
  panel.dataset.jobId = id;
  const job = jobs.get(id);
  $("details-name").textContent = job ? (job.name || job.info_hash) : id;
  panel.querySelector(".subbody").replaceChildren();
  markSub(open.sub);
  panel.hidden = false;
  sampleSpeed(id);
  schedule();
  refreshDetails(id);
}

function closeDetails() {
  const panel = $("details");
  const focused = panel.contains(document.activeElement);  // (hidden, the focus would fall to the body)
  for (const open of details.values()) { clearInterval(open.timer); clearInterval(open.sampler); }
  details.clear();
  panel.hidden = true;
  delete panel.dataset.jobId;
  if (focused) $("jobs-scroll").focus();  // (the keyboard goes on in the list)
  schedule();
}

function markSub(sub) {
  for (const b of $("details").querySelectorAll(".subtab")) {
    b.classList.toggle("selected", b.dataset.sub === sub);
    b.setAttribute("aria-selected", String(b.dataset.sub === sub));
    b.tabIndex = b.dataset.sub === sub ? 0 : -1;
  }
}

// The job in detail, and what the tab shown needs besides: the torrent's facts (once), the
// piece map (General), the web seeds (HTTP sources). A failed extra leaves what was shown.
async function refreshDetails(id) {
  const open = details.get(id);
  if (!open) return;
  const n = ++open.asked;
  const quiet = (promise) => promise.catch(() => null);
  const sub = open.sub;
  const [job, facts, pieces, seeds] = await Promise.all([
    // (the Trackers tab asks for a scrape: the server does it at most every few minutes, in the background)
    quiet(api("GET", sub === "trackers" ? `/api/jobs/${id}?scrape=true` : `/api/jobs/${id}`)),
    sub === "general" && !(open.facts && open.facts.has_metadata) ? quiet(api("GET", `/api/jobs/${id}/torrent`)) : null,
    sub === "general" ? quiet(api("GET", `/api/jobs/${id}/pieces`)) : null,
    sub === "http" ? quiet(api("GET", `/api/jobs/${id}/webseeds`)) : null,
  ]);
  if (!job) return;
  if (facts) open.facts = facts;
  if (pieces) open.pieces = pieces;
  if (seeds) open.seeds = seeds.urls;
  if (!streamTokens.has(id) && (job.files || []).length) {
    try { streamTokens.set(id, (await api("GET", `/api/jobs/${id}/stream-token`)).token); } catch (e) { /* no links */ }
  }
  showDetails(id, job, n);
}

// Show ``job`` (the answer to request number ``n``) in the open details of job ``id``, unless a
// newer answer is shown already.
function showDetails(id, job, n) {
  const open = details.get(id);
  const node = $("details");
  if (!open || node.dataset.jobId !== id || n <= open.shown) return;
  open.shown = n;
  open.job = job;
  $("details-name").textContent = job.name || job.info_hash;
  drawSub(id, open);
}

function drawSub(id, open) {
  markSub(open.sub);
  const body = $("details").querySelector(".subbody");
  const tab = DETAIL_VIEWS[open.sub];
  const view = open.views[open.sub] || (open.views[open.sub] = tab.make(id, open));
  if (body.firstChild !== view) body.replaceChildren(view);
  if (open.job) tab.draw(view, open.job, open);
}

function chooseSub(sub) {
  const id = $("details").dataset.jobId;
  const open = id && details.get(id);
  if (!open || !DETAIL_TABS.includes(sub)) return;
  open.sub = lastSub = sub;
  drawSub(id, open);  // (at once with what is held; the refresh brings the rest)
  refreshDetails(id);
}

// A change's answer (the job in detail) is newer than whatever a refresh asked before it came.
function showAnswer(id, job) {
  const open = details.get(id);
  if (open) showDetails(id, job, ++open.asked);
  upsert(job);
}

// ---- small parts -----------------------------------------------------------------------------

function detailsTable(headers) {
  const tbody = el("tbody");
  const head = el("tr", {}, ...headers.map(([h, cls, title]) => el("th", {class: cls || "", text: h, ...(title ? {title} : {})})));
  return {table: el("table", {class: "details-table"}, el("thead", {}, head), tbody), tbody};
}

function errorSpan(text, key) {
  return el("span", {class: "field-error", role: "alert", "data-error": key, text: text || ""});
}

// A form of URLs, one a line: its textarea, button and the server's reason it refused them.
function urlForm(label, button, key, onSubmit) {
  const area = el("textarea", {rows: "2", spellcheck: "false", autocomplete: "off", "data-form": key,
                               placeholder: "https://…"});
  const error = errorSpan("", key);
  const submit = el("button", {type: "submit", class: "ghost", text: button});
  const form = el("form", {class: "url-form", "data-form": key},
    el("label", {class: "field"}, el("span", {text: label}), area), el("div", {class: "row"}, submit, error));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const urls = area.value.split("\n").map((u) => u.trim()).filter(Boolean);
    error.textContent = "";
    area.removeAttribute("aria-invalid");
    if (!urls.length) { error.textContent = "Write at least one URL."; return; }
    submit.disabled = true;
    try {
      await onSubmit(urls);
      area.value = "";  // (kept as typed when the server refused it)
    } catch (e) {
      error.textContent = e.message;
      area.setAttribute("aria-invalid", "true");
    } finally { submit.disabled = false; }
  });
  return form;
}

const percent = (x) => `${Math.floor((x || 0) * 1000) / 10} %`;
const countText = (n) => (n == null || n < 0 ? "—" : String(n));

// ---- General ---------------------------------------------------------------------------------

function bitsOf(b64) {
  const text = atob(b64 || "");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

// The pieces as columns of a canvas: had (the accent, fainter as fewer of a column's pieces are
// had), being downloaded (amber), missing (the line colour).
function drawPieceMap(canvas, pieces) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(100, canvas.clientWidth || 600), h = 18;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const css = getComputedStyle(document.documentElement);
  ctx.fillStyle = css.getPropertyValue("--line").trim() || "#e3e8ef";
  ctx.fillRect(0, 0, w, h);
  const n = pieces && pieces.num_pieces ? pieces.num_pieces : 0;
  let had = 0;
  if (n) {
    const have = bitsOf(pieces.have), busy = bitsOf(pieces.downloading);
    const bit = (bytes, i) => (bytes[i >> 3] >> (7 - (i & 7))) & 1;
    const cols = Math.min(n, Math.floor(w)), colW = w / cols;
    const accent = css.getPropertyValue("--accent").trim() || "#2563eb";
    const warn = css.getPropertyValue("--warn").trim() || "#d97706";
    for (let c = 0; c < cols; c++) {
      const from = Math.floor((c * n) / cols), to = Math.max(from + 1, Math.floor(((c + 1) * n) / cols));
      let got = 0, getting = 0;
      for (let i = from; i < to; i++) { got += bit(have, i); getting += bit(busy, i); }
      had += got;
      if (!got && !getting) continue;
      ctx.globalAlpha = getting ? 1 : 0.25 + 0.75 * (got / (to - from));
      ctx.fillStyle = getting ? warn : accent;
      ctx.fillRect(c * colW, 0, colW + 0.5, h);
    }
    ctx.globalAlpha = 1;
  }
  canvas.dataset.pieces = String(n);
  canvas.dataset.have = String(had);
  canvas.setAttribute("aria-label", n ? `piece map: ${had.toLocaleString()} of ${n.toLocaleString()} pieces had`
    : "piece map: the pieces are known once the metadata is in");
}

const DETAIL_VIEWS = {};

DETAIL_VIEWS.general = {
  make() {
    const canvas = el("canvas", {class: "piece-map", role: "img", height: "18"});
    const legend = el("div", {class: "piece-legend muted"},
      el("span", {}, el("i", {class: "have"}), "had"), el("span", {}, el("i", {class: "busy"}), "downloading"),
      el("span", {}, el("i", {class: "missing"}), "missing"), el("span", {class: "piece-count"}));
    return el("div", {class: "general"}, el("div", {class: "piece-box"}, canvas, legend), el("dl", {class: "kv general-kv"}));
  },
  draw(view, job, open) {
    const facts = open.facts || {};
    const pieces = open.pieces;
    drawPieceMap(view.querySelector("canvas"), pieces);
    const n = pieces && pieces.num_pieces;
    view.querySelector(".piece-count").textContent = n ? `${view.querySelector("canvas").dataset.have} of ${n.toLocaleString()} pieces` : "";
    const o = job.options || {}, f = job.features || {};
    const rows = [];
    const add = (k, v, title) => { if (v !== undefined && v !== null && v !== "") rows.push([k, String(v), title]); };
    add("Info-hash v1", facts.info_hash_v1 || (job.info_hash && job.info_hash.length === 40 ? job.info_hash : "") || "—");
    add("Info-hash v2", facts.info_hash_v2 || (job.info_hash && job.info_hash.length === 64 ? job.info_hash : "") || "—");
    add("Save path", o.save_path);
    if (o.download_path) add("Downloading in", o.download_path);
    add("Pieces", facts.num_pieces ? `${facts.num_pieces.toLocaleString()} × ${bytes(facts.piece_length)}`
      : job.num_pieces ? `${job.num_pieces.toLocaleString()}` : "not known before the metadata");
    add("Availability", pieces && pieces.availability != null ? pieces.availability.toFixed(3)
      : job.progress >= 1 ? "— (every piece had)" : "—", "distributed copies among the connected peers and us");
    add("Total size", facts.total_length != null ? bytes(facts.total_length) : job.total_size ? bytes(job.total_size) : "");
    add("Added on", when(job.created_at));
    add("Completed on", job.completed_at ? when(job.completed_at) : "—");
    add("Last seen complete", job.seen_complete_at ? when(job.seen_complete_at) : "never",
        "when a connected peer last had every piece (now while one is connected): whether the swarm holds a whole copy");
    add("Time active", duration(Math.max(0, (job.updated_at || 0) - (job.created_at || 0))), "from the add to the last change");
    add("Seeding time", duration(job.seeding_time || 0));
    const thisRun = (all, run) => bytes(all) + (run !== undefined && run !== all ? ` (${bytes(run)} this run)` : "");
    add("Downloaded", thisRun(job.downloaded, job.run_downloaded)); add("Uploaded", thisRun(job.uploaded, job.run_uploaded));
    if (job.dedup_bytes) {
      add("Taken from files held", bytes(job.dedup_bytes),
          "bytes of its files placed at its add from files the daemon held whole (another torrent's, an indexed folder's), verified by its check, not downloaded");
    }
    add("Wasted", bytes((job.wasted || 0) + (job.corrupt || 0)) + (job.corrupt ? ` (${bytes(job.corrupt)} failed the hash check)` : ""),
        "bytes received and not needed (endgame duplicates), or in pieces that failed their hash check");
    add("Share ratio", (job.ratio || 0).toFixed(3));
    add("Connections", `${job.peers || 0} (${job.seeds || 0} seeds)`);
    const speed = (v) => (v ? rate(v) : "none");
    add("Rate limits", `↓ ${speed(o.download_limit)} · ↑ ${speed(o.upload_limit)}`);
    add("Connections at most", o.max_peers ? String(o.max_peers) : "the default");
    const share = (v, unit) => (v == null ? "the default" : v < 0 ? "none" : unit(v));
    add("Share limits", `ratio ${share(f.ratio_limit, String)} · seeding ${share(f.seeding_time_limit, duration)}` +
        ` · idle ${share(f.idle_seeding_limit, duration)}`);
    add("Private", facts.private == null ? "" : facts.private ? "yes (no DHT, PEX or LSD)" : "no");
    add("Created by", facts.created_by || "—");
    add("Created on", facts.creation_date ? when(facts.creation_date) : "—");
    add("Comment", f.comment != null ? f.comment : facts.comment || "—");
    if (job.error) add("Error", job.error);
    if (job.stall) {
      add(job.stall.reason === "not_moved" ? "Not moved since" : "Stalled since",
          `${when(job.stall.since)}: ${job.stall.message}`);
    }
    const kv = view.querySelector("dl");
    const sig = JSON.stringify(rows);
    if (kv.dataset.sig === sig) return;
    kv.dataset.sig = sig;
    kv.replaceChildren(...rows.flatMap(([k, v, title]) => [el("dt", {text: k, ...(title ? {title} : {})}),
                                                          el("dd", {text: v, "data-field": k})]));
  },
};

// ---- Trackers --------------------------------------------------------------------------------

// The job's tiers as the server holds them, changed by ``edit``, and sent back: one request.
async function editTiers(id, edit) {
  const {tiers} = await api("GET", `/api/jobs/${id}/trackers`);
  showAnswer(id, await api("PUT", `/api/jobs/${id}/trackers`, {tiers: edit(tiers).filter((t) => t.length)}));
}

DETAIL_VIEWS.trackers = {
  make(id, open) {
    const {table, tbody} = detailsTable([["Tier", "num"], ["URL", ""], ["Status", ""], ["Seeds", "num"], ["Peers", "num"],
      ["Leechers", "num"], ["Downloaded", "num", "times the torrent was downloaded whole, as the tracker's last scrape said"],
      ["Next announce", "hide-narrow", "when the tracker is announced to next, as scheduled"],
      ["Message", "hide-narrow"], ["", ""]]);
    tbody.addEventListener("click", (ev) => onTrackerClick(id, open, ev));
    const form = urlForm("Add trackers, one URL a line (each in a tier of its own)", "Add trackers", "tracker-add",
      (urls) => editTiers(id, (tiers) => [...tiers, ...urls.map((u) => [u])]));
    return el("div", {class: "trackers"}, el("p", {class: "empty", hidden: ""}, "No trackers: the peers come from the DHT, PEX, LSD or those given."),
              table, form);
  },
  draw(view, job, open) {
    if (open.editing) return;  // (an edit open: the rows stay as they are until it ends)
    const trackers = job.trackers || [];
    view.querySelector(".empty").hidden = trackers.length > 0;
    view.querySelector("table").hidden = !trackers.length;
    const sig = JSON.stringify([trackers, [...open.errors]]);
    const tbody = view.querySelector("tbody");
    if (tbody.dataset.sig === sig) return;
    tbody.dataset.sig = sig;
    tbody.replaceChildren(...trackers.map((t) => el("tr", {"data-url": t.url},
      el("td", {class: "num", text: String(t.tier)}), el("td", {class: "path tracker-url", text: t.url}),
      el("td", {class: `tracker-status ${t.status}`, text: trackerStatus(t)}),
      el("td", {class: "num", text: countText(t.seeds)}), el("td", {class: "num", text: countText(t.peers)}),
      el("td", {class: "num", text: countText(t.leechers)}),
      el("td", {class: "num tracker-downloaded", text: countText(t.downloaded)}),
      el("td", {class: "hide-narrow tracker-next", text: nextAnnounce(t)}),
      el("td", {class: "hide-narrow tracker-message",
                text: [t.message, t.status === "working" ? t.warning : "",
                       t.scrape_error ? `scrape failed: ${t.scrape_error}` : ""]
                  .filter(Boolean).join("; ")}),
      el("td", {class: "row-actions"},
        el("button", {class: "ghost", "data-tracker": "reannounce", text: "Reannounce",
                      title: "announce to this tracker now"}),
        el("button", {class: "ghost", "data-tracker": "edit", text: "Edit"}),
        el("button", {class: "ghost danger-text", "data-tracker": "remove", text: "Remove"}),
        errorSpan(open.errors.get(`tracker:${t.url}`), `tracker:${t.url}`)))));
  },
};

function onTrackerClick(id, open, ev) {
  const b = ev.target.closest("button[data-tracker]");
  const row = ev.target.closest("tr[data-url]");
  if (!b || !row) return;
  const url = row.dataset.url, key = `tracker:${url}`;
  const fail = (e) => { open.errors.set(key, e.message); drawSub(id, open); };
  if (b.dataset.tracker === "reannounce") {
    open.errors.delete(key);
    api("POST", `/api/jobs/${id}/reannounce`, {trackers: [url]}).then(() => drawSub(id, open)).catch(fail);
  } else if (b.dataset.tracker === "remove") {
    open.errors.delete(key);
    b.disabled = true;
    editTiers(id, (tiers) => tiers.map((t) => t.filter((u) => u !== url))).catch(fail);
  } else if (b.dataset.tracker === "edit") {
    if (open.editing) return;
    open.editing = url;
    const input = el("input", {type: "text", value: url, "aria-label": "the tracker's new URL", spellcheck: "false",
                               "data-form": "tracker-edit"});
    const error = errorSpan("", key);
    const save = el("button", {type: "submit", class: "ghost", text: "Save"});
    const cancel = el("button", {type: "button", class: "ghost", text: "Cancel"});
    const form = el("form", {class: "edit-form row"}, input, save, cancel, error);
    const end = () => { open.editing = null; delete row.closest("tbody").dataset.sig; drawSub(id, open); };
    cancel.addEventListener("click", end);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const now = input.value.trim();
      if (now === url) { end(); return; }
      save.disabled = true;
      try {
        await editTiers(id, (tiers) => tiers.map((t) => t.map((u) => (u === url ? now : u))));
        open.errors.delete(key);
        end();
      } catch (err) {  // (the form stays open with what was typed)
        error.textContent = err.message;
        input.setAttribute("aria-invalid", "true");
      } finally { save.disabled = false; }
    });
    row.querySelector(".tracker-url").replaceChildren(form);
    input.focus();
  }
}

// ---- Peers -----------------------------------------------------------------------------------

function peerFlags(p) {
  const have = new Set([p.transport, ...(p.sources || [])]);
  const flags = PEER_FLAGS.filter(([key]) => have.has(key));
  return [flags.map(([, letter]) => letter).join(" "), flags.map(([, , words]) => words).join(", ")];
}

DETAIL_VIEWS.peers = {
  make(id, open) {
    const {table, tbody} = detailsTable([["Address", ""], ["Client", "hide-narrow"], ["Flags", ""], ["Progress", "num"],
      ["↓", "num"], ["↑", "num"], ["Downloaded", "num hide-narrow"], ["Uploaded", "num hide-narrow"],
      ["Relevance", "num hide-narrow"], ["Files", "hide-narrow"], ["", ""]]);
    tbody.addEventListener("click", (ev) => onPeerClick(id, open, ev));
    return el("div", {class: "peers"}, el("p", {class: "peers-said muted", role: "status"}),
              el("p", {class: "empty", hidden: ""}, "No peers connected."), table);
  },
  draw(view, job, open) {
    const peers = job.peer_list || [];
    view.querySelector(".empty").hidden = peers.length > 0;
    view.querySelector("table").hidden = !peers.length;
    const tbody = view.querySelector("tbody");
    const sig = JSON.stringify([peers, open.banAsk, [...open.errors]]);
    if (tbody.dataset.sig === sig) return;
    tbody.dataset.sig = sig;
    tbody.replaceChildren(...peers.map((p) => {
      const [flags, words] = peerFlags(p);
      const key = `peer:${p.address}`;
      const ask = open.banAsk === p.address;
      const actions = ask
        ? [el("span", {text: "Ban this address for good? "}), el("button", {class: "danger", "data-peer": "ban-yes", text: "Ban"}),
           el("button", {class: "ghost", "data-peer": "ban-no", text: "Keep"})]
        : [el("button", {class: "ghost danger-text", "data-peer": "ban", text: "Ban…", title: "refuse this address from now on"})];
      return el("tr", {"data-address": p.address}, el("td", {class: "path", text: p.address}),
        el("td", {class: "hide-narrow", "data-peer-client": "", text: p.client || "", title: peerIdClient(p.peer_id)}),
        el("td", {text: flags, title: words}),
        el("td", {class: "num", text: percent(p.progress)}), el("td", {class: "num", text: rate(p.download_rate)}),
        el("td", {class: "num", text: rate(p.upload_rate)}),
        el("td", {class: "num hide-narrow", "data-peer-total": "downloaded", text: bytes(p.downloaded || 0)}),
        el("td", {class: "num hide-narrow", "data-peer-total": "uploaded", text: bytes(p.uploaded || 0)}),
        el("td", {class: "num hide-narrow", "data-peer-relevance": "", text: percent(p.relevance || 0),
                  title: "the share of the pieces this torrent lacks that the peer has"}),
        el("td", {class: "path hide-narrow", "data-peer-files": "", text: (p.files || []).join(", "),
                  title: (p.files || []).join("\n")}),
        el("td", {class: "row-actions"}, ...actions, errorSpan(open.errors.get(key), key)));
    }));
  },
};

// The first 8 bytes of a peer's id as text, as qBittorrent's "Peer ID Client" ("-qB5100-"), or
// "unknown" when one is not printable ASCII; "" when its id is not known
function peerIdClient(hex) {
  if (!hex || !/[^0]/.test(hex)) return "";
  const codes = (hex.slice(0, 16).match(/../g) || []).map((h) => parseInt(h, 16));
  return codes.every((c) => c >= 32 && c <= 126) ? `peer id ${String.fromCharCode(...codes)}` : "peer id unknown";
}

function onPeerClick(id, open, ev) {
  const b = ev.target.closest("button[data-peer]");
  const row = ev.target.closest("tr[data-address]");
  if (!b || !row) return;
  const address = row.dataset.address, key = `peer:${address}`;
  const redraw = () => drawSub(id, open);
  if (b.dataset.peer === "ban") { open.banAsk = address; open.errors.delete(key); redraw(); }
  else if (b.dataset.peer === "ban-no") { open.banAsk = null; redraw(); }
  else if (b.dataset.peer === "ban-yes") {
    b.disabled = true;
    api("POST", "/api/peers/ban", {peers: [address]})
      .then(() => {
        open.banAsk = null;
        const view = open.views.peers;
        if (view) view.querySelector(".peers-said").textContent = `Banned ${address}: dropped, and refused from now on.`;
        refreshDetails(id);
      })
      .catch((e) => { open.banAsk = null; open.errors.set(key, e.message); })
      .finally(redraw);
  }
}

// ---- HTTP sources ----------------------------------------------------------------------------

async function setSeeds(id, open, urls) {
  showAnswer(id, await api("PUT", `/api/jobs/${id}/webseeds`, {urls}));
  open.seeds = urls;
  drawSub(id, open);
}

DETAIL_VIEWS.http = {
  make(id, open) {
    const {table, tbody} = detailsTable([["URL", ""], ["", ""]]);
    tbody.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-seed]");
      const row = ev.target.closest("tr[data-url]");
      if (!b || !row || !open.seeds) return;
      const url = row.dataset.url, key = `seed:${url}`;
      b.disabled = true;
      open.errors.delete(key);
      setSeeds(id, open, open.seeds.filter((u) => u !== url))
        .catch((e) => { open.errors.set(key, e.message); drawSub(id, open); });
    });
    const form = urlForm("Add HTTP sources (BEP 19 web seeds), one URL a line", "Add sources", "seed-add",
      async (urls) => {
        const {urls: now} = await api("GET", `/api/jobs/${id}/webseeds`);
        await setSeeds(id, open, [...now, ...urls.filter((u) => !now.includes(u))]);
      });
    return el("div", {class: "http-sources"}, el("p", {class: "empty", hidden: ""}, "No HTTP sources."), table, form);
  },
  draw(view, job, open) {
    const seeds = open.seeds;
    view.querySelector(".empty").hidden = !seeds || seeds.length > 0;
    view.querySelector("table").hidden = !seeds || !seeds.length;
    const tbody = view.querySelector("tbody");
    const sig = JSON.stringify([seeds, [...open.errors]]);
    if (!seeds || tbody.dataset.sig === sig) return;
    tbody.dataset.sig = sig;
    tbody.replaceChildren(...seeds.map((u) => el("tr", {"data-url": u}, el("td", {class: "path", text: u}),
      el("td", {class: "row-actions"}, el("button", {class: "ghost danger-text", "data-seed": "remove", text: "Remove"}),
        errorSpan(open.errors.get(`seed:${u}`), `seed:${u}`)))));
  },
};

// ---- Content: the files as a tree -----------------------------------------------------------

// The files as folders and files: [{path, name, depth, folder, files: [file, ...]}] in the
// order shown (a folder before what it holds, folders and files in the metainfo's order).
function contentTree(files) {
  const nodes = [], folders = new Map();
  for (const f of files) {
    const parts = f.path.split("/");
    for (let d = 1; d < parts.length; d++) {
      const path = parts.slice(0, d).join("/");
      let folder = folders.get(path);
      if (!folder) {
        folder = {path, name: parts[d - 1], depth: d - 1, folder: true, files: []};
        folders.set(path, folder);
        nodes.push(folder);
      }
      folder.files.push(f);
    }
    nodes.push({path: f.path, name: parts[parts.length - 1], depth: parts.length - 1, folder: false, files: [f]});
  }
  return nodes;
}

function prioOf(open, f) { return prioLevel(open.pendingPrio.has(f.index) ? open.pendingPrio.get(f.index) : f.priority); }

function prioSelect(value, label, mixed = "Mixed") {
  const select = el("select", {"aria-label": label, class: "prio"});
  const choices = value === "mixed" ? [["mixed", mixed], ...PRIORITY_CHOICES] : PRIORITY_CHOICES;
  for (const [v, text] of choices) select.append(el("option", {value: String(v), text}));
  select.value = String(value);
  return select;
}

// A file's download box: the choice waiting for the server while it is sent, else the server's.
function fileBox(box, f, finished, pending) {
  const waiting = pending.has(f.index);
  box.checked = waiting ? pending.get(f.index) : f.selected;
  box.disabled = finished || waiting;
  box.title = waiting ? "saving…" : "download this file";
  box.dataset.fileIndex = f.index;
  return box;
}

// Priorities for some files, in one request: the boxes and choices wait (disabled) for the answer.
function setPriorities(id, open, priorities, errorKey) {
  for (const [index, p] of Object.entries(priorities)) {
    open.pendingPrio.set(Number(index), p);
    open.pending.set(Number(index), p > 0);
  }
  open.errors.delete(errorKey);
  drawSub(id, open);
  const done = () => {
    for (const [index, p] of Object.entries(priorities)) {
      if (open.pendingPrio.get(Number(index)) === p) { open.pendingPrio.delete(Number(index)); open.pending.delete(Number(index)); }
    }
  };
  return api("PATCH", `/api/jobs/${id}`, {file_priorities: priorities})
    .then((job) => { done(); showAnswer(id, job); })
    .catch((e) => { done(); open.errors.set(errorKey, e.message); drawSub(id, open); refreshDetails(id); });
}

DETAIL_VIEWS.content = {
  make(id, open) {
    const {table, tbody} = detailsTable([["", "c-fold"], ["", "c-box"], ["Name", ""], ["Size", "num"], ["Progress", "num"],
      ["", "hide-narrow"], ["Priority", ""], ["", ""]]);
    table.classList.add("content-tree");
    const bar = el("div", {class: "content-bar row"},
      el("span", {class: "picked-count muted", text: "Click rows to pick them (Ctrl, Shift: several)"}),
      prioSelect("mixed", "the priority of the rows picked", "Priority…"), el("button", {class: "ghost", "data-content": "rename", text: "Rename…", disabled: ""}),
      errorSpan("", "content"));
    bar.querySelector("select").dataset.content = "priority";
    bar.querySelector("select").disabled = true;
    const renameBox = el("form", {class: "rename-form row", hidden: ""},
      el("label", {class: "field"}, el("span", {text: "New name"}),
         el("input", {type: "text", "data-form": "rename", spellcheck: "false", autocomplete: "off"})),
      el("button", {type: "submit", class: "ghost", text: "Rename"}), el("button", {type: "button", class: "ghost", "data-content": "rename-cancel", text: "Cancel"}),
      errorSpan("", "rename"));
    const view = el("div", {class: "content"}, el("p", {class: "empty", hidden: ""}, "The file list arrives with the metadata."),
                    bar, renameBox, table);
    bar.addEventListener("change", (ev) => {
      const select = ev.target.closest("select[data-content=priority]");
      if (!select || select.value === "mixed" || !open.job) return;
      const p = Number(select.value), priorities = {};
      for (const node of contentTree(open.job.files || [])) {
        if (open.picked.has(node.path)) for (const f of node.files) priorities[f.index] = p;
      }
      if (Object.keys(priorities).length) setPriorities(id, open, priorities, "content");
    });
    bar.addEventListener("click", (ev) => {
      if (!ev.target.closest("button[data-content=rename]") || open.picked.size !== 1) return;
      const [path] = open.picked;
      renameBox.hidden = false;
      renameBox.dataset.path = path;
      renameBox.dataset.kind = (open.job.files || []).some((f) => f.path === path) ? "file" : "folder";
      const input = renameBox.querySelector("input");
      input.value = path.split("/").pop();
      renameBox.querySelector("[data-error]").textContent = "";
      input.focus();
      input.select();
    });
    renameBox.querySelector("[data-content=rename-cancel]").addEventListener("click", () => { renameBox.hidden = true; });
    renameBox.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = renameBox.querySelector("input"), error = renameBox.querySelector("[data-error]");
      const old = renameBox.dataset.path, name = input.value.trim();
      const parent = old.split("/").slice(0, -1).join("/");
      error.textContent = "";
      input.removeAttribute("aria-invalid");
      const submit = renameBox.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        const job = await api("POST", `/api/jobs/${id}/rename`,
          {old_path: old, new_path: parent ? `${parent}/${name}` : name, kind: renameBox.dataset.kind});
        renameBox.hidden = true;
        open.picked.clear();
        showAnswer(id, job);
      } catch (e) {  // (the name typed stays, with the server's reason beside it)
        error.textContent = e.message;
        input.setAttribute("aria-invalid", "true");
      } finally { submit.disabled = false; }
    });
    tbody.addEventListener("click", (ev) => onContentClick(id, open, ev));
    tbody.addEventListener("change", (ev) => onContentChange(id, open, ev));
    return view;
  },
  draw(view, job, open) {
    const files = job.files || [];
    view.querySelector(".empty").hidden = files.length > 0;
    for (const part of view.querySelectorAll(".content-bar, table")) part.hidden = !files.length;
    const finished = FINISHED.has(job.state);
    const nodes = contentTree(files);
    const hidden = (node) => [...open.collapsed].some((c) => node.path.startsWith(`${c}/`));
    const shownNodes = nodes.filter((node) => !hidden(node));
    const tbody = view.querySelector("tbody");
    const token = streamTokens.get(job.id);
    const canStream = Boolean(token) && !["failed", "cancelled"].includes(job.state);
    // The same rows (paths, folds, picks, links): updated in place, so that a box being clicked
    // stays the element it is; else drawn anew.
    const shape = JSON.stringify([shownNodes.map((n) => n.path), [...open.collapsed], [...open.picked], canStream]);
    if (tbody.dataset.shape !== shape) {
      tbody.dataset.shape = shape;
      tbody.replaceChildren(...shownNodes.map((node) => contentRow(job, node, open, token, canStream)));
    }
    const rows = tbody.children;
    shownNodes.forEach((node, i) => fillContentRow(rows[i], node, open, finished));
    // the bar: what is picked, and what can be done with it
    const picked = nodes.filter((n) => open.picked.has(n.path));
    const bar = view.querySelector(".content-bar");
    bar.querySelector(".picked-count").textContent = picked.length
      ? `${picked.length} picked` : "Click rows to pick them (Ctrl, Shift: several)";
    const select = bar.querySelector("select");
    if (document.activeElement !== select) {
      const prios = new Set(picked.flatMap((n) => n.files.map((f) => prioOf(open, f))));
      const value = prios.size === 1 ? [...prios][0] : "mixed";
      select.replaceWith(Object.assign(prioSelect(value, "the priority of the rows picked", picked.length ? "Mixed" : "Priority…"),
                                       {disabled: !picked.length || finished}));
      bar.querySelector("select").dataset.content = "priority";
    }
    bar.querySelector("[data-content=rename]").disabled = picked.length !== 1 || finished;
    bar.querySelector("[data-error]").textContent = open.errors.get("content") || "";
  },
};

function contentRow(job, node, open, token, canStream) {
  const fold = node.folder
    ? el("button", {class: "fold ghost", "data-fold": node.path, "aria-expanded": String(!open.collapsed.has(node.path)),
                    "aria-label": `${open.collapsed.has(node.path) ? "unfold" : "fold"} ${node.name}`,
                    text: open.collapsed.has(node.path) ? "▸" : "▾"})
    : "";
  const box = el("input", {type: "checkbox", "aria-label": `download ${node.path}`});
  if (node.folder) box.dataset.folder = node.path;
  const f = node.files[0];
  const url = !node.folder && canStream
    ? `/api/jobs/${encodeURIComponent(job.id)}/files/${f.index}/stream?token=${encodeURIComponent(token || "")}` : null;
  const link = url ? el("a", {class: "stream", href: url, target: "_blank", rel: "noopener",
                              title: "play or save this file while it downloads", text: "stream"}) : "";
  const select = prioSelect(0, `priority of ${node.path}`);
  if (node.folder) select.dataset.prioFolder = node.path; else select.dataset.prioIndex = String(f.index);
  const key = node.folder ? `folder:${node.path}` : `file:${f.index}`;
  const foldCell = el("td", {class: "c-fold"}, fold);
  foldCell.style.paddingLeft = `${6 + node.depth * 16}px`;  // (CSSOM: the CSP refuses style attributes)
  return el("tr", {class: `${node.folder ? "tree-folder" : "tree-file"}${open.picked.has(node.path) ? " picked" : ""}`,
                   "data-path": node.path, "aria-selected": String(open.picked.has(node.path))},
    foldCell, el("td", {class: "c-box"}, box),
    el("td", {class: "path", "data-path": node.path, title: node.path, text: node.folder ? `${node.name}/` : node.name}),
    el("td", {class: "num size"}), el("td", {class: "num done"}),
    el("td", {class: "hide-narrow"}, el("div", {class: "mini"}, el("div"))),
    el("td", {class: "c-prio"}, select, errorSpan("", key)), el("td", {}, link));
}

function fillContentRow(row, node, open, finished) {
  const size = node.files.reduce((s, f) => s + f.size, 0);
  const done = node.files.reduce((s, f) => s + f.size * (f.progress || 0), 0);
  const progress = size ? done / size : node.files.every((f) => f.progress >= 1) ? 1 : 0;
  row.querySelector(".size").textContent = bytes(size);
  row.querySelector(".done").textContent = percent(progress);
  row.querySelector(".mini div").style.width = `${progress * 100}%`;
  const box = row.querySelector("input[type=checkbox]");
  const prios = new Set(node.files.map((f) => prioOf(open, f)));
  const waiting = node.files.some((f) => open.pendingPrio.has(f.index) || open.pending.has(f.index));
  if (node.folder) {
    const on = node.files.filter((f) => (open.pending.has(f.index) ? open.pending.get(f.index) : f.selected)).length;
    box.checked = on === node.files.length;
    box.indeterminate = on > 0 && on < node.files.length;
    box.disabled = finished || waiting;
  } else {
    fileBox(box, node.files[0], finished, open.pending);
  }
  const select = row.querySelector("select.prio");
  if (document.activeElement !== select) {
    const value = prios.size === 1 ? [...prios][0] : "mixed";
    if (select.value !== String(value)) {
      const fresh = prioSelect(value, select.getAttribute("aria-label"));
      Object.assign(fresh.dataset, select.dataset);
      select.replaceWith(fresh);
    }
  }
  row.querySelector("select.prio").disabled = finished || waiting;
  const key = node.folder ? `folder:${node.path}` : `file:${node.files[0].index}`;
  row.querySelector("[data-error]").textContent = open.errors.get(key) || "";
}

function onContentClick(id, open, ev) {
  const fold = ev.target.closest("button[data-fold]");
  if (fold) {
    const path = fold.dataset.fold;
    if (open.collapsed.has(path)) open.collapsed.delete(path); else open.collapsed.add(path);
    drawSub(id, open);
    return;
  }
  if (ev.target.closest("input, select, a, button, option")) return;
  const row = ev.target.closest("tr[data-path]");
  if (!row) return;
  const path = row.dataset.path;
  if (ev.shiftKey && open.anchor) {  // a range of the rows shown
    const paths = [...row.parentNode.children].map((r) => r.dataset.path);
    const a = paths.indexOf(open.anchor), b = paths.indexOf(path);
    if (a >= 0 && b >= 0) for (let i = Math.min(a, b); i <= Math.max(a, b); i++) open.picked.add(paths[i]);
  } else if (ev.ctrlKey || ev.metaKey) {
    if (open.picked.has(path)) open.picked.delete(path); else open.picked.add(path);
    open.anchor = path;
  } else {
    const only = open.picked.size === 1 && open.picked.has(path);
    open.picked.clear();
    if (!only) open.picked.add(path);
    open.anchor = path;
  }
  drawSub(id, open);
}

function onContentChange(id, open, ev) {
  const t = ev.target;
  if (!open.job) return;
  const files = open.job.files || [];
  const under = (path) => files.filter((f) => f.path.startsWith(`${path}/`));
  if (t.matches("input[data-file-index]")) {
    const index = Number(t.dataset.fileIndex);
    setPriorities(id, open, {[index]: t.checked ? NORMAL : 0}, `file:${index}`);
  } else if (t.matches("input[data-folder]")) {
    setPriorities(id, open, Object.fromEntries(under(t.dataset.folder).map((f) => [f.index, t.checked ? NORMAL : 0])),
                  `folder:${t.dataset.folder}`);
  } else if (t.matches("select[data-prio-index]") && t.value !== "mixed") {
    const index = Number(t.dataset.prioIndex);
    setPriorities(id, open, {[index]: Number(t.value)}, `file:${index}`);
    t.blur();
  } else if (t.matches("select[data-prio-folder]") && t.value !== "mixed") {
    setPriorities(id, open, Object.fromEntries(under(t.dataset.prioFolder).map((f) => [f.index, Number(t.value)])),
                  `folder:${t.dataset.prioFolder}`);
    t.blur();
  }
}

// ---- Speed: the job's rates over the last minutes --------------------------------------------

// A sample a second of the rates the live events keep in the job list, for the job open.
function sampleSpeed(id) {
  const job = jobs.get(id);
  if (!job) return;
  const now = Date.now() / 1000;
  const list = speeds.get(id) || [];
  speeds.set(id, list);
  const on = job.state === "downloading" || job.state === "seeding";
  list.push({t: now, down: on ? job.download_rate || 0 : 0, up: on ? job.upload_rate || 0 : 0});
  while (list.length && now - list[0].t > SPEED_SPAN) list.shift();
  const open = details.get(id);
  if (open && open.sub === "speed" && open.views.speed) DETAIL_VIEWS.speed.draw(open.views.speed, open.job || job, open);
}

function drawSpeed(canvas, samples) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(200, canvas.clientWidth || 600), h = 160, pad = 4;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const now = Date.now() / 1000;
  const span = Math.min(SPEED_SPAN, Math.max(60, samples.length ? now - samples[0].t : 0));
  const top = Math.max(1, ...samples.map((s) => Math.max(s.down, s.up)));
  ctx.strokeStyle = css.getPropertyValue("--line").trim() || "#e3e8ef";
  ctx.lineWidth = 1;
  for (const y of [0.25, 0.5, 0.75]) {
    ctx.beginPath(); ctx.moveTo(0, pad + y * (h - 2 * pad)); ctx.lineTo(w, pad + y * (h - 2 * pad)); ctx.stroke();
  }
  const line = (value, colour) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    samples.forEach((s, i) => {
      const x = w - ((now - s.t) / span) * w, y = h - pad - (value(s) / top) * (h - 2 * pad);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  };
  line((s) => s.down, css.getPropertyValue("--accent").trim() || "#2563eb");
  line((s) => s.up, css.getPropertyValue("--ok").trim() || "#16a34a");
  ctx.fillStyle = css.getPropertyValue("--muted").trim() || "#667085";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(rate(top), 4, 14);
  canvas.dataset.samples = String(samples.length);
  return span;
}

DETAIL_VIEWS.speed = {
  make() {
    return el("div", {class: "speed"},
      el("div", {class: "chart-head"}, el("span", {class: "speed-span"}),
        el("span", {class: "legend"}, el("i", {class: "down"}), "down ", el("i", {class: "up"}), "up"),
        el("span", {class: "speed-now muted"})),
      el("canvas", {class: "speed-graph", role: "img", height: "160"}));
  },
  draw(view, job) {
    const samples = speeds.get(job.id) || [];
    const canvas = view.querySelector("canvas");
    const span = drawSpeed(canvas, samples);
    const last = samples[samples.length - 1];
    view.querySelector(".speed-span").textContent = `Rates, last ${Math.max(1, Math.round(span / 60))} min`;
    view.querySelector(".speed-now").textContent = last ? `now ↓ ${rate(last.down)} ↑ ${rate(last.up)}` : "";
    canvas.setAttribute("aria-label", `the job's download and upload rates over the last ${Math.round(span / 60)} minutes`);
  },
};

// ---- wiring ----------------------------------------------------------------------------------

function setupDetails() {
  $("details-close").addEventListener("click", closeDetails);
  const tabs = $("details").querySelector(".subtabs");
  tabs.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-sub]");
    if (b) chooseSub(b.dataset.sub);
  });
  tabs.addEventListener("keydown", (ev) => {  // (a tab list: the arrows move between the tabs)
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    const id = $("details").dataset.jobId, open = id && details.get(id);
    if (!open) return;
    ev.preventDefault();
    const next = DETAIL_TABS[(DETAIL_TABS.indexOf(open.sub) + (ev.key === "ArrowRight" ? 1 : DETAIL_TABS.length - 1)) % DETAIL_TABS.length];
    chooseSub(next);
    tabs.querySelector(`[data-sub="${next}"]`).focus();
  });
}
