"use strict";
// The feeds the daemon reads and the download rules that add their articles' torrents
// (/api/feeds, /api/feeds/rules: an admin's), as qBittorrent's RSS view: the feeds with their
// unread articles, a feed's articles (one downloaded by a click: its torrent added, the article
// read), and the rules, each shown with the articles it takes now. While the dialog is open the
// feeds are asked again every FEEDS_POLL ms (a feed being read shows its articles as they come);
// the page is drawn again only when what it shows changed.

const FEEDS_POLL = 3000;
let feedsTimer = null;
let feedsShown = {folders: [], feeds: []};  // the last GET /api/feeds
let feedsDrawn = "";  // what the feeds' pane was drawn from (its JSON)
let feedOpen = "";  // the path of the feed shown
let rulesShown = [];  // the last GET /api/feeds/rules
let ruleOpen = null;  // the name of the rule in the form (null: a new one)
let feedsAsk = 0;  // the latest look's number: an earlier one's answer, come late, is dropped

function feedsSay(text) { $("feeds-status").textContent = text; }

async function loadFeeds() {
  const ask = ++feedsAsk;
  const listing = await api("GET", "/api/feeds");
  if (ask !== feedsAsk) return;
  feedsShown = listing;
  drawFeeds();
}

const SEP = "\\";  // (a feed's or folder's path: its names joined by a backslash)
const lastName = (path) => path.split(SEP).pop();
const parentOf = (path) => path.includes(SEP) ? path.slice(0, path.lastIndexOf(SEP)) : "";
const within = (path, folder) => path.startsWith(folder + SEP);

// The feeds and folders as a tree, in the order drawn: in each folder its folders, then its
// feeds, each by name; [{path, depth, folder}] (``folder``: the folders' paths).
function feedTree() {
  const folders = feedsShown.folders;
  const labels = new Map(feedsShown.feeds.map((f) => [f.path, f.title || lastName(f.path)]));
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, {sensitivity: "base"});
  const rows = [];
  const walk = (at, depth) => {
    const kids = (paths, folder) => paths.filter((p) => parentOf(p) === at)
      .map((p) => ({path: p, folder, name: folder ? lastName(p) : labels.get(p)})).sort(byName);
    for (const f of kids(folders, true)) { rows.push({...f, depth}); walk(f.path, depth + 1); }
    for (const f of kids(feedsShown.feeds.map((x) => x.path), false)) rows.push({...f, depth});
  };
  walk("", 0);
  return rows;
}

// The feeds at or below ``path`` (a feed: itself).
const feedsAt = (path) => feedsShown.feeds.filter((f) => f.path === path || within(f.path, path));
const isFolder = (path) => feedsShown.folders.includes(path);
// The folder a new feed or folder goes into: the one open, or the open feed's.
const folderHere = () => isFolder(feedOpen) ? feedOpen : parentOf(feedOpen);

function drawFeeds() {
  const feeds = feedsShown.feeds;
  const rows = feedTree();
  if (!rows.some((r) => r.path === feedOpen)) {
    const first = rows.find((r) => !r.folder) || rows[0];
    feedOpen = first ? first.path : "";
  }
  const drawn = JSON.stringify([feedOpen, feedsShown]);
  if (drawn === feedsDrawn) return;  // (a click on a row redrawn under it would be lost)
  feedsDrawn = drawn;
  $("feed-list").replaceChildren(...rows.map((row) => {
    const below = feedsAt(row.path);
    const unread = below.reduce((n, f) => n + f.unread, 0);
    const feed = row.folder ? null : below[0];
    const mark = feed && feed.error ? el("span", {class: "failed", text: "failed", title: feed.error})
      : el("span", {class: "unread", text: unread ? String(unread) : ""});
    const b = el("button", {type: "button", "data-path": row.path, class: row.folder ? "folder" : "",
      title: feed ? `${feed.path}\n${feed.url}` : `${row.path}: ${below.length} feeds`},
      el("span", {text: row.name}), mark);
    b.style.paddingLeft = `${0.75 + row.depth * 1.1}em`;
    if (row.path === feedOpen) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => { feedOpen = row.path; closeAsk("feed"); drawFeeds(); });
    return el("li", {}, b);
  }));
  const folder = isFolder(feedOpen);
  const feed = folder ? null : feeds.find((f) => f.path === feedOpen);
  for (const id of ["feed-refresh", "feed-read", "feed-remove"]) $(id).disabled = !feedOpen;
  drawMoves(rows);
  const here = folderHere();
  $("feeds-where").textContent = here ? `(new feeds and folders go into ${here})` : "";
  const shown = feedsAt(feedOpen);
  $("feed-name").textContent = !feedOpen ? "No feed yet: add one by its URL."
    : folder ? `${lastName(feedOpen)} (a folder of ${shown.length} feeds)`
      : (feed.title || feed.path) + (feed.loading ? " (being read…)" : "");
  $("feed-error").hidden = !(feed && feed.error);
  $("feed-error").textContent = feed && feed.error ? `Its last reading failed: ${feed.error}` : "";
  // (a folder's: every article of the feeds in it, newest first, each saying its feed)
  const articles = shown.flatMap((f) => f.articles.map((a) => [f, a]));
  if (folder) articles.sort(([, a], [, b]) => (b.date || 0) - (a.date || 0));
  $("feed-articles").replaceChildren(...articles.map(([f, a]) => articleRow(f, a, folder)));
  // (the counts beside its name: the status line keeps what the last action said, whatever a
  // poll draws after it)
  const unread = shown.reduce((n, f) => n + f.unread, 0);
  $("feed-counts").textContent = feedOpen ? `${articles.length} articles, ${unread} unread` : "";
}

// "Move to…": the top and every folder the open item may go into (not itself, nothing below
// it, not where it is).
function drawMoves(rows) {
  const move = $("feed-move");
  const from = parentOf(feedOpen);
  const to = [["", "the top"], ...rows.filter((r) => r.folder).map((r) => [r.path, r.path])]
    .filter(([p]) => feedOpen && p !== from && p !== feedOpen && !within(p, feedOpen));
  move.replaceChildren(el("option", {value: "", text: "Move to…"}),
    ...to.map(([p, label]) => el("option", {value: p === "" ? SEP : p, text: label})));
  move.value = "";
  move.disabled = !to.length;
}

function moveOpen() {
  const dest = $("feed-move").value;
  if (!dest || !feedOpen) return;
  const path = feedOpen;
  const to = (dest === SEP ? "" : dest + SEP) + lastName(path);
  return feedsDo(async () => {
    await api("PATCH", "/api/feeds", {path, to});
    feedOpen = to;
    await loadFeeds();
    feedsSay(`${lastName(path)} moved to ${dest === SEP ? "the top" : dest}.`);
  }).finally(() => { $("feed-move").value = ""; });
}

function addFolder(ev) {
  ev.preventDefault();
  return feedsDo(async () => {
    const name = $("folder-name").value.trim();
    const here = folderHere();
    const path = here ? here + SEP + name : name;
    await api("POST", "/api/feeds/folders", {path});
    $("folder-name").value = "";
    feedOpen = path;
    await loadFeeds();
    feedsSay(`Folder ${path} made.`);
  });
}

function articleRow(feed, article, withFeed = false) {
  // (a feed's link is the feed's to say: followed only when it is http(s), never a script)
  let title = /^https?:\/\//i.test(article.link)
    ? el("a", {class: "title", href: article.link, target: "_blank", rel: "noopener noreferrer", text: article.title})
    : el("span", {class: "title", text: article.title});
  if (withFeed) title = el("span", {}, title, el("span", {class: "from", text: ` · ${feed.title || lastName(feed.path)}`}));
  const get = el("button", {type: "button", text: "Download", "data-article": article.id,
    title: article.torrent_url ? "add its torrent" : "the article names no torrent"});
  get.disabled = !article.torrent_url;
  get.addEventListener("click", () => download(feed, article, get));
  return el("li", {class: article.read ? "read" : "", "data-article": article.id},
    title, el("time", {text: article.date ? when(article.date) : ""}), get);
}

async function feedsDo(work) {
  try { await work(); } catch (e) { feedsSay(e.message); }
}

function download(feed, article, button) {
  button.disabled = true;
  return feedsDo(async () => {
    try {
      const job = await api("POST", "/api/jobs", {source: article.torrent_url});
      upsert(job);
      await api("POST", "/api/feeds/read", {path: feed.path, article: article.id});
      await loadFeeds();
      feedsSay(`Added "${job.name || article.title}".`);
    } finally { button.disabled = false; }
  });
}

function addFeed(ev) {
  ev.preventDefault();
  return feedsDo(async () => {
    const url = $("feed-url").value.trim();
    const here = folderHere();  // (its name its URL, in the folder open, as qBittorrent's)
    const feed = await api("POST", "/api/feeds", here ? {url, path: here + SEP + url.replaceAll(SEP, "/")} : {url});
    $("feed-url").value = "";
    feedOpen = feed.path;
    await api("POST", "/api/feeds/refresh", {path: feed.path});  // (read now, whatever the settings)
    await loadFeeds();
    feedsSay(`Reading ${feed.url}…`);
  });
}

function onOpenFeed(what, asked = () => feedOpen) {
  return () => feedsDo(async () => {
    const path = asked();
    if (what === "refresh") await api("POST", "/api/feeds/refresh", {path});
    else if (what === "read") await api("POST", "/api/feeds/read", {path});
    else await api("DELETE", `/api/feeds?path=${encodeURIComponent(path)}`);
    await loadFeeds();
    feedsSay(what === "refresh" ? `Reading ${path}…` : what === "read" ? `${path}: all read.` : `${path} removed.`);
  });
}

// A removal asks first, in a row of its own beside the button: what goes, and the two answers
// (the one that keeps it focused). ``confirmRow(kind)``: the row's elements.
function confirmRow(kind) {
  return {row: $(`${kind}-confirm`), text: $(`${kind}-confirm-text`), keep: $(`${kind}-confirm-keep`)};
}

function askBeforeRemoving(kind, text) {
  const c = confirmRow(kind);
  c.text.textContent = text;
  c.row.hidden = false;
  c.keep.focus();
}

function closeAsk(kind) { confirmRow(kind).row.hidden = true; }

let feedAsked = "";  // the feed whose removal is being asked about

function askRemoveFeed() {
  if (!feedOpen) return;
  feedAsked = feedOpen;
  if (isFolder(feedOpen)) {
    const n = feedsAt(feedOpen).length;
    askBeforeRemoving("feed", `Remove the folder "${lastName(feedOpen)}" and the ${n} feed${n === 1 ? "" : "s"} in it?`);
    return;
  }
  const feed = feedsShown.feeds.find((f) => f.path === feedOpen);
  askBeforeRemoving("feed", `Remove the feed ${feed && feed.title ? `"${feed.title}"` : feedOpen} and its articles?`);
}

// ---- the rules ----------------------------------------------------------------------------

async function loadRules() {
  rulesShown = (await api("GET", "/api/feeds/rules")).rules;
  if (ruleOpen !== null && !rulesShown.some((r) => r.name === ruleOpen)) ruleOpen = null;
  $("rule-list").replaceChildren(...rulesShown.map((rule) => {
    const b = el("button", {type: "button", "data-rule": rule.name},
      el("span", {text: rule.name}), el("span", {class: "muted", text: rule.enabled ? "" : "off"}));
    if (rule.name === ruleOpen) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => feedsDo(() => openRule(rule.name)));
    return el("li", {}, b);
  }));
}

async function openRule(name) {
  ruleOpen = name;
  await loadRules();
  const rule = rulesShown.find((r) => r.name === name) || null;
  $("rule-name").value = rule ? rule.name : "";
  $("rule-enabled").checked = rule ? rule.enabled : true;
  $("rule-must").value = rule ? rule.must_contain : "";
  $("rule-must-not").value = rule ? rule.must_not_contain : "";
  $("rule-regex").checked = !!(rule && rule.use_regex);
  $("rule-episodes").value = rule ? rule.episode_filter : "";
  $("rule-smart").checked = !!(rule && rule.smart_filter);
  $("rule-category").value = rule ? rule.category : "";
  $("rule-save-path").value = rule ? rule.save_path : "";
  $("rule-paused").value = rule && rule.add_paused !== null ? String(rule.add_paused) : "";
  $("rule-tags").value = rule ? rule.tags.join(", ") : "";
  $("rule-layout").value = rule && rule.content_layout !== null ? rule.content_layout : "";
  $("rule-priority").value = rule ? String(rule.priority) : "0";
  $("rule-ignore-days").value = rule ? String(rule.ignore_days) : "0";
  $("rule-delete").disabled = !rule;
  $("rule-error").hidden = true;
  closeAsk("rule");
  // the feeds it may read: those there, and any it names that is not (kept when saved)
  const reads = new Set(rule ? rule.feeds : []);
  const known = feedsShown.feeds.map((f) => [f.url, f.title || f.path]);
  const urls = new Set(known.map(([url]) => url));
  const boxes = [...known, ...[...reads].filter((u) => !urls.has(u)).map((u) => [u, u])].map(([url, label]) => {
    const box = el("input", {type: "checkbox", "data-url": url});
    box.checked = reads.has(url);
    return el("label", {class: "check", title: url}, box, el("span", {text: label}));
  });
  $("rule-feeds").replaceChildren(el("legend", {text: "The feeds it reads"}), ...boxes);
  await showMatches(rule);
}

async function showMatches(rule) {
  const box = $("rule-matches");
  if (!rule) { box.replaceChildren(el("li", {class: "muted", text: "(saved rules are shown here)"})); return; }
  const matches = (await api("GET", `/api/feeds/rules/matches?name=${encodeURIComponent(rule.name)}`)).matches;
  // (by the feed's name, its path's last: shown by its title)
  const names = new Map(feedsShown.feeds.map((f) => [f.path.split("\\").pop(), f.title || f.path]));
  const rows = Object.entries(matches).flatMap(([feed, titles]) =>
    titles.map((t) => el("li", {text: `${names.get(feed) || feed}: ${t}`})));
  box.replaceChildren(...(rows.length ? rows : [el("li", {class: "muted", text: "None of the articles read now."})]));
}

// A whole number the form holds (``what``: its label, said when it is none); an Error otherwise.
function wholeIn(id, what) {
  const text = $(id).value.trim();
  if (!/^-?[0-9]{1,9}$/.test(text)) throw new Error(`${what}: "${text}" is not a whole number.`);
  return Number(text);
}

function formRule() {
  const paused = $("rule-paused").value;
  const layout = $("rule-layout").value;
  const ignore = wholeIn("rule-ignore-days", "Days to ignore after a match");
  if (ignore < 0) throw new Error("Days to ignore after a match: cannot be fewer than 0.");
  return {
    priority: wholeIn("rule-priority", "Priority"), ignore_days: ignore,
    tags: [...new Set($("rule-tags").value.split(",").map((t) => t.trim()).filter((t) => t))],
    content_layout: layout === "" ? null : layout,
    name: $("rule-name").value.trim(), enabled: $("rule-enabled").checked,
    must_contain: $("rule-must").value, must_not_contain: $("rule-must-not").value,
    use_regex: $("rule-regex").checked, episode_filter: $("rule-episodes").value.trim(),
    smart_filter: $("rule-smart").checked, category: $("rule-category").value.trim(),
    save_path: $("rule-save-path").value.trim(), add_paused: paused === "" ? null : paused === "true",
    feeds: [...$("rule-feeds").querySelectorAll("input[data-url]")].filter((b) => b.checked).map((b) => b.dataset.url),
  };
}

async function saveRule(ev) {
  ev.preventDefault();
  const said = $("rule-error");
  said.hidden = true;
  try {
    const rule = formRule();
    const before = rulesShown.find((r) => r.name === ruleOpen);
    // (what the form does not show is kept: a rule is replaced whole; what it remembers, by the server)
    const kept = {...(before || {})};
    delete kept.last_match;
    delete kept.previously_matched;
    if (before && rule.name !== before.name) {
      await api("POST", "/api/feeds/rules/rename", {name: before.name, to: rule.name});
      ruleOpen = rule.name;
    }
    const saved = await api("PUT", "/api/feeds/rules", {...kept, ...rule});
    await openRule(saved.name);
    feedsSay(`Rule "${saved.name}" saved.`);
  } catch (e) {
    said.textContent = e.message;
    said.hidden = false;
  }
}

function askDeleteRule() {
  if (ruleOpen !== null) askBeforeRemoving("rule", `Delete the rule "${ruleOpen}"?`);
}

function deleteRule() {
  closeAsk("rule");
  return feedsDo(async () => {
    if (ruleOpen === null) return;
    const name = ruleOpen;
    await api("DELETE", `/api/feeds/rules?name=${encodeURIComponent(name)}`);
    await openRule(null);
    feedsSay(`Rule "${name}" deleted.`);
  });
}

// ---- the dialog ---------------------------------------------------------------------------

function feedsTab(rules) {
  $("feeds-tab-feeds").setAttribute("aria-selected", String(!rules));
  $("feeds-tab-rules").setAttribute("aria-selected", String(rules));
  $("feeds-pane").hidden = rules;
  $("rules-pane").hidden = !rules;
  feedsSay("");
  if (rules) feedsDo(() => openRule(ruleOpen));
  else { feedsDrawn = ""; drawFeeds(); }
}

async function pollFeeds() {
  feedsTimer = null;
  if (!$("feeds-dialog").open) return;
  try { await loadFeeds(); } catch (e) { feedsSay(e.message); }
  if ($("feeds-dialog").open) feedsTimer = setTimeout(pollFeeds, FEEDS_POLL);
}

function openFeeds() {
  feedsDrawn = "";
  feedsSay("Loading…");
  $("feeds-dialog").showModal();
  feedsTab(false);
  if (feedsTimer !== null) clearTimeout(feedsTimer);
  pollFeeds();
}

document.addEventListener("DOMContentLoaded", () => {
  $("feeds-open").addEventListener("click", openFeeds);
  $("feeds-close").addEventListener("click", () => $("feeds-dialog").close());
  $("feeds-dialog").addEventListener("close", () => { if (feedsTimer !== null) clearTimeout(feedsTimer); feedsTimer = null; });
  $("feeds-tab-feeds").addEventListener("click", () => feedsTab(false));
  $("feeds-tab-rules").addEventListener("click", () => feedsTab(true));
  $("feed-add").addEventListener("submit", addFeed);
  $("folder-add").addEventListener("submit", addFolder);
  $("feed-move").addEventListener("change", moveOpen);
  $("feed-refresh").addEventListener("click", onOpenFeed("refresh"));
  $("feed-read").addEventListener("click", onOpenFeed("read"));
  $("feed-remove").addEventListener("click", askRemoveFeed);
  const removeFeed = onOpenFeed("remove", () => feedAsked);
  $("feed-confirm-remove").addEventListener("click", () => { closeAsk("feed"); removeFeed(); });
  $("feed-confirm-keep").addEventListener("click", () => { closeAsk("feed"); $("feed-remove").focus(); });
  $("rule-form").addEventListener("submit", saveRule);
  $("rule-new").addEventListener("click", () => feedsDo(() => openRule(null)));
  $("rule-delete").addEventListener("click", askDeleteRule);
  $("rule-confirm-delete").addEventListener("click", deleteRule);
  $("rule-confirm-keep").addEventListener("click", () => { closeAsk("rule"); $("rule-delete").focus(); });
});
