// The add dialog (index.html's #add-dialog): several links and .torrent files at once (also
// dropped on the page), with the options of qBittorrent's dialog, and the files to download of
// each torrent chosen before anything is written: a .torrent's files read here from the file
// itself; a magnet's once its metadata has come from its peers (POST /api/metadata: fetched by
// the daemon without a job, then added as the .torrent it answers, with the files chosen). A
// refused add keeps the form as it was. Uses app.js's helpers ($, el, api, bytes, upsert ...).
"use strict";

// One entry per torrent of the dialog: {key, kind: "file" | "magnet", what (its file name or
// link), name, bytes (a file's), torrent (a fetched magnet's .torrent, base64), peers (a magnet's
// x.pe), files: [{index, path, length, pad}] | null, state: "read" | "fetching" | "fetched" |
// "failed", note (why there are no files), held (index -> the file the daemon holds whole that
// its add would take, as POST /api/dedup/match answers: an admin's; none asked otherwise)}
let addItems = [];
const LOOKUP_EVERY = 1000;       // ms between two asks for a magnet's metadata
const LOOKUP_FOR = 300;          // asks at most (the daemon gives up on a fetch after 300 s)
let linksTimer = null;

// The bencoded value at the start of `bytes` (a Uint8Array): numbers, Uint8Array strings, arrays,
// Maps with string keys. Error: what is wrong and at which byte.
function bdecode(bytes) {
  const text = new TextDecoder();
  let i = 0, depth = 0;
  const until = (byte) => {
    const j = bytes.indexOf(byte, i);
    if (j < 0) throw new Error(`not a .torrent: unterminated value at byte ${i}`);
    return j;
  };
  function value() {
    if (i >= bytes.length) throw new Error(`not a .torrent: it ends at byte ${i}`);
    if (++depth > 64) throw new Error(`not a .torrent: nested too deep at byte ${i}`);
    const c = bytes[i];
    let out;
    if (c === 0x69) { const j = until(0x65); out = Number(text.decode(bytes.subarray(i + 1, j))); i = j + 1; }
    else if (c === 0x6c) { i++; out = []; while (bytes[i] !== 0x65) { out.push(value()); if (i >= bytes.length) throw new Error("not a .torrent: a list never ends"); } i++; }
    else if (c === 0x64) {
      i++; out = new Map();
      while (bytes[i] !== 0x65) {
        const key = value();
        if (!(key instanceof Uint8Array)) throw new Error(`not a .torrent: a key that is no string at byte ${i}`);
        out.set(text.decode(key), value());
        if (i >= bytes.length) throw new Error("not a .torrent: a dictionary never ends");
      }
      i++;
    } else if (c >= 0x30 && c <= 0x39) {
      const j = until(0x3a), n = Number(text.decode(bytes.subarray(i, j)));
      if (!Number.isSafeInteger(n) || j + 1 + n > bytes.length) throw new Error(`not a .torrent: a string past the end at byte ${i}`);
      out = bytes.subarray(j + 1, j + 1 + n); i = j + 1 + n;
    } else throw new Error(`not a .torrent: unexpected byte ${c} at ${i}`);
    depth--;
    return out;
  }
  return value();
}

// A .torrent's files as the job lists them (the metainfo's order: v1's list, or v2's tree).
function torrentFiles(bytes) {
  const root = bdecode(bytes);
  const info = root instanceof Map ? root.get("info") : null;
  if (!(info instanceof Map)) throw new Error("not a .torrent: no info dictionary");
  const str = (v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : "");
  const name = str(info.get("name"));
  if (Array.isArray(info.get("files"))) {
    return info.get("files").map((f, index) => ({
      index, path: [name, ...(f.get("path") || []).map(str)].join("/"), length: f.get("length") || 0,
      pad: str(f.get("attr")).includes("p")}));
  }
  if (info.has("length")) return [{index: 0, path: name, length: info.get("length"), pad: false}];
  const out = [];
  const walk = (tree, prefix) => {
    for (const [key, sub] of tree) {
      if (key === "" && sub instanceof Map) out.push({index: out.length, path: prefix.join("/"), length: sub.get("length") || 0, pad: false});
      else if (sub instanceof Map) walk(sub, [...prefix, key]);
    }
  };
  if (info.get("file tree") instanceof Map) walk(info.get("file tree"), [name]);
  return out;
}


const isHash = (l) => /^[0-9a-f]{40}$/i.test(l) || /^[0-9a-f]{64}$/i.test(l);
const asSource = (l) => (/^[0-9a-f]{40}$/i.test(l) ? `magnet:?xt=urn:btih:${l}`  // (a bare info-hash)
  : /^[0-9a-f]{64}$/i.test(l) ? `magnet:?xt=urn:btmh:1220${l}` : l);
const isMagnet = (l) => isHash(l) || /^magnet:\?/i.test(l);
const linkLines = () => $("ad-links").value.split("\n").map((l) => l.trim()).filter(Boolean);

function magnetName(link) {
  const q = new URLSearchParams(link.slice(link.indexOf("?") + 1));
  return q.get("dn") || link.slice(0, 60);
}

async function openAdd(files = []) {
  const dialog = $("add-dialog");
  if (!dialog.open) {
    $("ad-errors").replaceChildren();
    $("ad-save-path").value = $("add-save-path").value;
    $("ad-paused").checked = $("add-paused").checked;
    $("ad-sequential").checked = $("add-sequential").checked;
    if (!$("ad-links").value.trim()) $("ad-links").value = $("add-source").value.trim();
    dialog.showModal();
    suggestFolders($("ad-save-path"));  // (the space free there, shown at once)
    api("GET", "/api/categories").then((answer) => $("ad-categories").replaceChildren(
      ...answer.categories.map((c) => el("option", {value: c.name})))).catch(() => {});
    takeLinks();
  }
  if (files.length) await takeFiles(files);
}

// .torrent files chosen or dropped: added to those of the dialog (one of the same name replaced)
async function takeFiles(files) {
  const read = await Promise.all(files.map(async (file) => {
    const data = new Uint8Array(await file.arrayBuffer());
    const item = {key: `file:${file.name}`, kind: "file", what: file.name, name: file.name, bytes: data};
    try {
      item.files = torrentFiles(data);
      item.state = "read";
      item.name = (item.files.find((f) => !f.pad) || {path: file.name}).path.split("/")[0];  // (the torrent's name)
    }
    catch (e) { item.files = null; item.state = "failed"; item.note = e.message; }
    return item;
  }));
  const keys = new Set(read.map((i) => i.key));
  addItems = [...addItems.filter((i) => !keys.has(i.key)), ...read];
  drawAddItems();
  for (const item of read) if (item.files) lookHeld(item, base64(item.bytes));
}

// Which of a torrent's files the daemon holds whole already (another torrent's, an indexed
// folder's): its add takes them from there, verified by its check (dedup). Marked on the files;
// nothing when the daemon says no (not an admin, dedup off) or the item left the dialog.
async function lookHeld(item, source) {
  if (myRole !== null && myRole !== "admin") return;  // (an admin's: a user is refused)
  let answer;
  try { answer = await api("POST", "/api/dedup/match", {source}); } catch (e) { return; }
  if (answer.mode === "off" || !addItems.includes(item)) return;
  item.held = new Map(answer.files.filter((f) => f.held).map((f) => [f.index, f.held]));
  if (item.held.size) drawAddItems();
}

// The magnets of the links box: each one new is looked up (its metadata fetched by the daemon);
// one no longer there is dropped (its look-up ends)
function takeLinks() {
  const links = linkLines().filter(isMagnet);
  const keys = new Set(links.map((l) => `magnet:${l}`));
  const had = new Set(addItems.map((i) => i.key));
  addItems = addItems.filter((i) => i.kind !== "magnet" || keys.has(i.key));
  for (const l of links) {
    const key = `magnet:${l}`;
    if (had.has(key) || addItems.some((i) => i.key === key)) continue;
    const link = asSource(l);
    const q = new URLSearchParams(link.slice(link.indexOf("?") + 1));
    const item = {key, kind: "magnet", what: l, name: magnetName(link), link, peers: q.getAll("x.pe"),
                  files: null, state: "fetching", note: "fetching its files from its peers…"};
    addItems.push(item);
    lookUp(item);
  }
  drawAddItems();
}

async function lookUp(item) {
  for (let i = 0; i < LOOKUP_FOR; i++) {
    if (!addItems.includes(item) || !$("add-dialog").open) return;  // (gone from the dialog)
    let answer;
    try { answer = await api("POST", "/api/metadata", {source: item.link}); }
    catch (e) {
      item.state = "failed";
      item.note = `its files cannot be listed (${e.message}): they are chosen in its details once added`;
      drawAddItems();
      return;
    }
    if (answer.state === "fetched") {
      Object.assign(item, {state: "fetched", name: answer.name, files: answer.files, torrent: answer.torrent});
      if (addItems.includes(item)) drawAddItems();
      if (answer.torrent) lookHeld(item, answer.torrent);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, LOOKUP_EVERY));
  }
  item.state = "failed";
  item.note = "no peer had its files: they are chosen in its details once added";
  drawAddItems();
}

// Each torrent's files: a tree of folders and files, each with a box (a folder's box: all under
// it); a magnet still fetched says so. Boxes already ticked or not stay so when it is drawn again.
function drawAddItems() {
  const box = $("ad-trees");
  const before = new Map();
  for (const input of box.querySelectorAll("input[data-index]")) {
    before.set(`${input.closest("[data-key]").dataset.key}\u0000${input.dataset.index}`, input.checked);
  }
  const shown = addItems.filter((i) => i.kind === "magnet" || i.files || i.note);
  $("ad-content").hidden = !shown.length;
  $("ad-file-names").textContent = addItems.filter((i) => i.kind === "file").map(
    (i) => i.what + (i.state === "failed" ? ` (${i.note})` : "")).join(", ") || "or drop them on the page";
  box.replaceChildren(...shown.map((item, n) => {
    const id = `ad-item-${n}`;
    const head = el("div", {class: "row item-head"}, el("b", {id, class: "item-name", text: item.name}),
                    el("span", {class: "muted item-size", "aria-live": "polite"}));
    const section = el("section", {class: `add-item ${item.state}`, "data-key": item.key, "aria-labelledby": id}, head);
    if (!item.files) {
      section.append(el("p", {class: "muted note", text: item.note || ""}));
      return section;
    }
    head.append(el("span", {class: "spacer"}),
                el("button", {type: "button", class: "ghost", "data-all": "1", "aria-label": `all the files of ${item.name}`, text: "All"}),
                el("button", {type: "button", class: "ghost", "data-all": "0", "aria-label": `none of the files of ${item.name}`, text: "None"}));
    const list = el("ul", {class: "file-tree"});
    const folders = new Set();
    for (const f of item.files) {
      if (f.pad) continue;  // (BEP 47 padding: never a file to choose)
      const parts = f.path.split("/");
      for (let d = 1; d < parts.length; d++) {
        const dir = parts.slice(0, d).join("/");
        if (folders.has(dir)) continue;
        folders.add(dir);
        list.append(el("li", {class: "folder", style: `padding-left: ${8 + 16 * (d - 1)}px`},
          el("input", {type: "checkbox", "data-folder": `${dir}/`, "aria-label": `the folder ${dir}`}),
          el("span", {class: "fname", text: `${parts[d - 1]}/`})));
      }
      const ticked = before.get(`${item.key}\u0000${f.index}`);
      const input = el("input", {type: "checkbox", "data-index": String(f.index), "data-path": f.path, "aria-label": f.path});
      input.checked = ticked === undefined ? true : ticked;
      const held = item.held && item.held.get(f.index);
      const mark = held ? [el("span", {class: "held", "data-held": held.path,
        title: `held already: taken from ${held.path} (found by ${held.by}) and verified by its check, not downloaded`,
        text: "held"})] : [];
      list.append(el("li", {style: `padding-left: ${8 + 16 * (parts.length - 1)}px`}, input,
        el("span", {class: "fname", text: parts[parts.length - 1]}), ...mark, el("span", {class: "size", text: bytes(f.length)})));
    }
    section.append(list);
    return section;
  }));
  for (const section of box.querySelectorAll(".add-item")) itemSize(section);
}

// A torrent's boxes after one changed: its folders' boxes (all, some or none under them) and its
// count and size chosen
function itemSize(section) {
  const item = addItems.find((i) => i.key === section.dataset.key);
  if (!item || !item.files) return;
  const files = [...section.querySelectorAll("input[data-index]")];
  for (const folder of section.querySelectorAll("input[data-folder]")) {
    const under = files.filter((b) => b.dataset.path.startsWith(folder.dataset.folder));
    const on = under.filter((b) => b.checked).length;
    folder.checked = on === under.length;
    folder.indeterminate = on > 0 && on < under.length;
  }
  const chosen = new Set(files.filter((b) => b.checked).map((b) => Number(b.dataset.index)));
  const total = item.files.filter((f) => chosen.has(f.index)).reduce((n, f) => n + f.length, 0);
  const held = item.held ? item.files.filter((f) => chosen.has(f.index) && item.held.has(f.index))
    .reduce((n, f) => n + f.length, 0) : 0;
  section.querySelector(".item-size").textContent = `${chosen.size} of ${files.length} files, ${bytes(total)}` +
    (held ? ` (${bytes(held)} held already)` : "");
}

function onTreeChange(ev) {
  const section = ev.target.closest(".add-item");
  if (!section) return;
  if (ev.target.dataset.folder !== undefined) {
    for (const b of section.querySelectorAll("input[data-index]")) {
      if (b.dataset.path.startsWith(ev.target.dataset.folder)) b.checked = ev.target.checked;
    }
  }
  itemSize(section);
}

function onTreeClick(ev) {
  const b = ev.target.closest("button[data-all]");
  if (!b) return;
  const section = b.closest(".add-item");
  for (const box of section.querySelectorAll("input[data-index]")) box.checked = b.dataset.all === "1";
  itemSize(section);
}

// The indices chosen of an item (null: all of them, as an add without `files` takes them)
function chosenOf(item) {
  const section = [...$("ad-trees").querySelectorAll(".add-item")].find((s) => s.dataset.key === item.key);
  if (!item.files || !section) return null;
  const boxes = [...section.querySelectorAll("input[data-index]")];
  const chosen = boxes.filter((b) => b.checked).map((b) => Number(b.dataset.index));
  return chosen.length === boxes.length ? null : chosen;
}

function base64(bytesIn) {
  let out = "";
  for (let i = 0; i < bytesIn.length; i += 0x8000) out += String.fromCharCode(...bytesIn.subarray(i, i + 0x8000));
  return btoa(out);
}

async function submitAdd(ev) {
  ev.preventDefault();
  const errors = $("ad-errors");
  errors.replaceChildren();
  const opts = {};
  const save = $("ad-save-path").value.trim();
  if (save) opts.save_path = save;
  const category = $("ad-category").value.trim();
  if (category) opts.category = category;
  const tags = $("ad-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) opts.tags = tags;
  if ($("ad-layout").value !== "original") opts.content_layout = $("ad-layout").value;
  if ($("ad-stop").value) opts.stop_condition = $("ad-stop").value;
  opts.paused = $("ad-paused").checked;
  if ($("ad-sequential").checked) opts.sequential = true;
  if ($("ad-skip-check").checked) opts.seed_mode = true;
  takeLinks();
  const byKey = new Map(addItems.map((i) => [i.key, i]));
  const sources = [];
  for (const l of linkLines()) {
    const item = byKey.get(`magnet:${l}`);
    const body = item && item.torrent ? {source: item.torrent} : {source: asSource(l)};
    if (item && item.torrent && item.peers.length) body.peers = item.peers;
    sources.push({what: l, body, item});
  }
  for (const item of addItems.filter((i) => i.kind === "file")) sources.push({what: item.name, body: {source: base64(item.bytes)}, item});
  if (!sources.length) { errors.append(el("div", {class: "error", role: "alert", text: "Paste a link or choose a .torrent file."})); return; }
  for (const s of sources) {
    if (!s.item || !s.item.files) continue;
    const chosen = chosenOf(s.item);
    if (chosen && !chosen.length) {
      errors.append(el("div", {class: "error", role: "alert", text: `${s.item.name}: choose at least one file to download.`}));
      return;
    }
    if (chosen) s.body.files = chosen;
  }
  $("ad-submit").disabled = true;
  const left = [];
  try {
    for (const s of sources) {
      try {
        upsert(await api("POST", "/api/jobs", {...s.body, ...opts}));
      } catch (e) {
        left.push(s);
        errors.append(el("div", {class: "error", role: "alert", text: `${s.what.slice(0, 80)}: ${e.message}`}));
      }
    }
  } finally { $("ad-submit").disabled = false; }
  // what was added leaves the form; what was refused stays (its files as chosen), to mend and add again
  const kept = new Set(left.map((s) => s.item).filter(Boolean));
  $("ad-links").value = left.filter((s) => !s.item || s.item.kind === "magnet").map((s) => s.what).join("\n");
  addItems = addItems.filter((i) => kept.has(i));
  if (left.length) { drawAddItems(); return; }
  drawAddItems();
  $("add-dialog").close();
  $("add-source").value = "";
  if (tab !== "active") switchTab("active");
}

document.addEventListener("DOMContentLoaded", () => {
  $("ad-trees").addEventListener("change", onTreeChange);
  $("ad-trees").addEventListener("click", onTreeClick);
  $("ad-links").addEventListener("input", () => { clearTimeout(linksTimer); linksTimer = setTimeout(takeLinks, 600); });
  $("add-dialog").addEventListener("close", () => { addItems = []; drawAddItems(); });
});
