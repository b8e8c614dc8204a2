"use strict";
// Paths completed from the download folder (GET /api/folders), as qBittorrent's WebUI completes
// them: an input that takes a path asks for it with its data-folders attribute ("dirs", or
// "files" for files too). Typing in it (or focusing it) lists the folder its text names up to
// the last "/" (the download folder, a user's own, when there is none), the names beginning with
// the rest, into the input's datalist: a folder's with a "/" after it, so that picking one goes on
// into it. An input whose data-folders-free names an element shows there the space free where
// the path leads. A viewer, who picks no path, is refused once and not asked again.

const FOLDER_WAIT = 150;  // ms after the last key before asking
const FOLDER_LIMIT = 50;  // names offered at once
let foldersRefused = false;
const folderTimers = new WeakMap();
const folderAsks = new WeakMap();  // the latest ask's number for each input: a late answer is dropped

function folderList(input) {
  if (input.list) return input.list;
  const list = el("datalist", {id: `${input.id}-folders`});
  input.after(list);
  input.setAttribute("list", list.id);
  return list;
}

async function suggestFolders(input) {
  const kind = input.dataset.folders;
  if (!kind || foldersRefused) return;
  const text = input.value.trimStart();
  const cut = text.lastIndexOf("/") + 1;
  const dir = text.slice(0, cut), prefix = text.slice(cut);
  const query = new URLSearchParams({path: dir, prefix, limit: String(FOLDER_LIMIT)});
  if (kind === "files") query.set("files", "true");
  const asked = (folderAsks.get(input) || 0) + 1;
  folderAsks.set(input, asked);
  let listing = null;
  try { listing = await api("GET", `/api/folders?${query}`); } catch (e) {
    if (e.status === 403) foldersRefused = true;  // (anything else: a folder not there yet, nothing offered)
  }
  if (folderAsks.get(input) !== asked || input.dataset.folders !== kind) return;
  folderList(input).replaceChildren(...(listing ? listing.entries : []).map((entry) =>
    el("option", {value: dir + entry.name + (entry.type === "dir" ? "/" : "")})));
  const free = input.dataset.foldersFree ? $(input.dataset.foldersFree) : null;
  if (free) free.textContent = listing && listing.free_bytes >= 0 ? `${bytes(listing.free_bytes)} free` : "";
}

function folderSoon(input, wait) {
  if (!input.dataset || !input.dataset.folders) return;
  clearTimeout(folderTimers.get(input));
  folderTimers.set(input, setTimeout(() => suggestFolders(input), wait));
}

document.addEventListener("input", (ev) => folderSoon(ev.target, FOLDER_WAIT));
document.addEventListener("focusin", (ev) => folderSoon(ev.target, 0));
