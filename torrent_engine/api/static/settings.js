// The settings view (index.html's #settings-dialog): the daemon's run-time settings (GET and
// PATCH /api/settings) grouped as qBittorrent's preferences are (Downloads, Connection, Speed,
// BitTorrent, RSS, Web UI, Advanced), each with its label, input and unit; Save sends what changed
// alone, and a value the server refuses is shown by its field (the API's error names it), the
// form kept as typed. The Web UI group holds this browser's own choices (the theme). Uses
// app.js's helpers ($, el, api, bytes, statusLimits, logout).
"use strict";

// One entry per setting: another one is one more line here. kind: "bool" (a checkbox), "text",
// "number" (shown divided by `scale`; -1, "none", passes as it is), "time" (minutes after
// midnight as HH:MM), "choice" (`options`: [value, label]), "lines", "tiers" (lines, a blank line
// between two lists), "folders" (a text box) or "secret" (a password: hidden, sent as typed). A
// number is typed as text (inputmode: the phone's number pad): what was typed goes to the server
// as it is when it is no number, and the server names what is wrong with it.
const SETTINGS = [
  {group: "Downloads", fields: [
    {name: "incomplete_dir_enabled", label: "Keep incomplete downloads in another folder", kind: "bool"},
    {name: "incomplete_dir", label: "Incomplete folder", kind: "text", placeholder: "incomplete",
     hint: "inside the download folder; a job moves to its save path once complete"},
    {name: "partial_file_suffix", label: "Name incomplete files with the suffix", kind: "text", placeholder: "none",
     hint: "e.g. .!qB or .part, empty for none: each file takes its name once complete"},
    {name: "disk_reserve", label: "Leave free on the disk", kind: "number", scale: 1048576, unit: "MiB",
     hint: "0 = none: below, downloads stop until there is room again (as on a full disk, whatever this says)"},
    {name: "excluded_file_names_enabled", label: "Do not download files of these names", kind: "bool"},
    {name: "excluded_file_names", label: "File names", kind: "lines", placeholder: "*.nfo\nsample",
     hint: "one pattern a line (* any characters, ? one), any case; a folder's name excludes its files; "
       + "for new torrents that choose no files"},
    {name: "add_paused", label: "Add new torrents paused", kind: "bool",
     hint: "unless an add says: the add form's \"Start paused\" follows it"},
    {name: "stop_condition", label: "Stop new torrents", kind: "choice",
     options: [["none", "never"], ["metadata_received", "once their metadata is received"],
               ["files_checked", "once their files are checked"]],
     hint: "paused then, to choose their files or check them first; an add may say otherwise"},
    {name: "auto_managed_adds", label: "Manage new torrents automatically", kind: "bool",
     hint: "for adds through the qBittorrent API that do not say (autoTMM): saved where their category says"},
    {name: "relocate_on_category_change", label: "Move a managed torrent whose category changes", kind: "bool",
     hint: "off: it stays, managed by hand from then on"},
    {name: "relocate_on_category_path_change", label: "Move the managed torrents of a category whose folder changes",
     kind: "bool", hint: "off: they stay, managed by hand from then on"},
    {name: "torrent_export_dir", label: "Copy .torrent files to", kind: "text", placeholder: "none",
     hint: "a folder inside the download folder, empty for none: a copy of each new torrent's"},
    {name: "finished_torrent_export_dir", label: "Copy .torrent files of finished downloads to", kind: "text",
     placeholder: "none", hint: "a folder inside the download folder, empty for none"},
    {name: "watch_enabled", label: "Add the torrents dropped in watched folders", kind: "bool"},
    {name: "watch_folders", label: "Watched folders", kind: "folders",
     placeholder: "/srv/watch\n/srv/watch-tv => tv",
     hint: "one a line: an absolute folder, or 'folder => save path'; a sub-folder's name is the category"},
    {name: "watch_interval", label: "Look every", kind: "number", unit: "s"},
    {name: "dedup", label: "Take the files held already", kind: "choice",
     options: [["reflink", "shared copy-on-write (reflink), else a copy"], ["hardlink", "hard link, else a copy"],
               ["copy", "copy"], ["off", "never: download every file"]],
     hint: "a new torrent's file held whole by a complete torrent or an indexed folder is taken, then checked"},
    {name: "dedup_folders", label: "Indexed folders", kind: "lines", placeholder: "/srv/media",
     hint: "one absolute folder a line: their files are held too, looked at every 15 minutes", status: "dedup"},
    {name: "watch_delete_added", label: "Delete a watched file once added", kind: "bool",
     hint: "else it is renamed .added"},
    {name: "run_on_added_enabled", label: "Run a program when a job is added", kind: "bool"},
    {name: "run_on_added", label: "Command line", kind: "text", placeholder: "/usr/local/bin/added %I \"%N\"",
     hint: "no shell: %N name, %L category, %G tags, %F content path, %R root path, %D save path, " +
           "%C files, %Z size, %T tracker, %I info-hash v1, %J v2, %K id"},
    {name: "run_on_completed_enabled", label: "Run a program when a job completes", kind: "bool"},
    {name: "run_on_completed", label: "Command line", kind: "text"},
    {name: "run_on_seeding_done_enabled", label: "Run a program when a job reaches its share limit", kind: "bool"},
    {name: "run_on_seeding_done", label: "Command line", kind: "text"},
    {name: "mail_enabled", label: "Send a mail when a download completes", kind: "bool"},
    {name: "mail_to", label: "To", kind: "text", placeholder: "me@example.org",
     hint: "addresses separated by commas"},
    {name: "mail_from", label: "From", kind: "text", placeholder: "torrents@example.org"},
    {name: "mail_server", label: "SMTP server", kind: "text", placeholder: "smtp.example.org:587",
     hint: "host, or host:port (465 with TLS, else 25)"},
    {name: "mail_ssl", label: "TLS from the start (else STARTTLS when the server offers it)", kind: "bool"},
    {name: "mail_auth_enabled", label: "Log in to the server", kind: "bool"},
    {name: "mail_username", label: "User name", kind: "text"},
    {name: "mail_password", label: "Password", kind: "secret"},
  ], extra: "mail"},
  {group: "Connection", fields: [
    {name: "transport", label: "Peer connection protocol", kind: "choice",
     options: [["any", "μTP and TCP, μTP first"], ["tcp_first", "TCP and μTP, TCP first"], ["tcp", "TCP"],
               ["utp", "μTP"]],
     hint: "for new connections; with both, the other is dialed too if the first has no link soon"},
    {name: "listen_port", label: "Listening port", kind: "number", placeholder: "6881",
     hint: "for incoming peers, TCP and uTP, kept across restarts; 0 = a free port, chosen now"},
    {name: "random_port", label: "Use a different port on each start", kind: "bool"},
    {name: "max_connections", label: "Connections at most", kind: "number", unit: "peers",
     hint: "over every torrent; -1 = no limit"},
    {name: "max_connections_per_torrent", label: "Connections per torrent", kind: "number", unit: "peers",
     hint: "-1 = no limit"},
    {name: "max_uploads", label: "Upload slots at most", kind: "number", unit: "peers",
     hint: "over every torrent; -1 = no limit"},
    {name: "max_uploads_per_torrent", label: "Upload slots per torrent", kind: "number", unit: "peers",
     hint: "-1 = no limit"},
    {name: "connection_speed", label: "Outgoing connections", kind: "number", unit: "a second",
     hint: "over every torrent, the torrents with the fewest peers first; -1 = no limit, 0 = none "
       + "(incoming peers only)"},
    {name: "block_privileged_ports", label: "Do not connect to peers on privileged ports", kind: "bool",
     hint: "ports below 1024: a swarm's addresses cannot make this daemon knock on other services"},
    {name: "multiple_connections_per_ip", label: "Allow several connections from one IP address", kind: "bool",
     hint: "off: one a torrent, so that one host cannot take many of its slots"},
    {name: "seeding_choker", label: "Seeding torrents upload to", kind: "choice",
     options: [["round_robin", "each peer in turn"], ["fastest_upload", "the fastest peers"],
               ["anti_leech", "peers that have just begun or nearly finished first"]]},
    {name: "announce_ip", label: "Address told to trackers", kind: "text", placeholder: "the one they see",
     hint: "an IP address, or a host name (HTTP trackers), that peers can reach this host at"},
    {name: "proxy_url", label: "Proxy", kind: "text", placeholder: "socks5://user:password@host:1080",
     hint: "socks5://, socks5h://, socks4://, socks4a:// or http:// (CONNECT); empty = none"},
    {name: "proxy_peer_connections", label: "Peers through the proxy", kind: "bool"},
    {name: "proxy_torrents_only", label: "Only torrents through the proxy (.torrent links go straight)", kind: "bool"},
    {name: "proxy_only", label: "Proxy only: send nothing outside it (no incoming peers, uTP, DHT, LSD, UDP trackers)",
     kind: "bool"},
    {name: "ip_filter_enabled", label: "Refuse the peers an IP filter list blocks", kind: "bool"},
    {name: "ip_filter_path", label: "List file", kind: "text", placeholder: "/srv/lists/ipfilter.dat",
     hint: "eMule .dat, PeerGuardian .p2p or CIDR lines, gzip or not"},
    {name: "ip_filter_url", label: "List URL", kind: "text", placeholder: "https://…/blocklist.gz",
     hint: "fetched daily"},
    {name: "ip_filter_trackers", label: "Apply the list to trackers too", kind: "bool"},
    {name: "banned_ips", label: "Banned addresses", kind: "lines", hint: "one a line: always refused"},
  ]},
  {group: "Speed", fields: [
    {name: "download_limit", label: "Download limit", kind: "number", scale: 1024, unit: "KiB/s", hint: "0 = none"},
    {name: "upload_limit", label: "Upload limit", kind: "number", scale: 1024, unit: "KiB/s", hint: "0 = none"},
    {name: "limit_lan_peers", label: "Apply the limits to peers on the local network", kind: "bool",
     hint: "off: peers on loopback, private or link-local addresses move at full speed (a torrent's own limit aside)"},
    {name: "alt_speed_enabled", label: "Use the alternative limits now", kind: "bool"},
    {name: "alt_download_limit", label: "Alternative download limit", kind: "number", scale: 1024, unit: "KiB/s",
     hint: "0 = none"},
    {name: "alt_upload_limit", label: "Alternative upload limit", kind: "number", scale: 1024, unit: "KiB/s",
     hint: "0 = none"},
    {name: "alt_schedule_enabled", label: "Use the alternative limits on a schedule", kind: "bool"},
    {name: "alt_schedule_from", label: "From", kind: "time", hint: "HH:MM, local time"},
    {name: "alt_schedule_to", label: "To", kind: "time", hint: "may be past midnight"},
    {name: "alt_schedule_days", label: "On", kind: "choice",
     options: [[127, "every day"], [62, "weekdays"], [65, "weekends"], [2, "Monday"], [4, "Tuesday"],
               [8, "Wednesday"], [16, "Thursday"], [32, "Friday"], [64, "Saturday"], [1, "Sunday"]]},
  ], extra: "groups"},
  {group: "BitTorrent", fields: [
    {name: "dht_enabled", label: "Find peers on the DHT (decentralised network)", kind: "bool"},
    {name: "pex_enabled", label: "Exchange peers with connected peers (PeX)", kind: "bool"},
    {name: "lsd_enabled", label: "Find peers on the local network (LSD)", kind: "bool"},
    {name: "encryption", label: "Encryption", kind: "choice",
     options: [["prefer", "prefer encryption"], ["require", "require encryption"], ["disable", "no encryption"]],
     hint: "for new connections; private torrents never use the DHT, PeX or LSD"},
    {name: "default_trackers_enabled", label: "Add these trackers to new torrents", kind: "bool"},
    {name: "default_trackers", label: "Trackers", kind: "tiers", placeholder: "udp://tracker.example:6969/announce",
     hint: "one a line, a blank line between tiers; after each torrent's own, never to a private torrent"},
    {name: "merge_trackers", label: "A torrent added again gives its trackers and web seeds to the one there",
     kind: "bool", hint: "those it lacks, after its own; never to a private torrent"},
    {name: "queueing", label: "Queue jobs", kind: "bool"},
    {name: "add_to_top_of_queue", label: "New jobs first in the queue", kind: "bool",
     hint: "unless their add says"},
    {name: "max_active_downloads", label: "Downloads at once", kind: "number", unit: "jobs", hint: "-1 = no maximum"},
    {name: "max_active_uploads", label: "Seeds at once", kind: "number", unit: "jobs", hint: "-1 = no maximum"},
    {name: "max_active_torrents", label: "Jobs at once", kind: "number", unit: "jobs", hint: "-1 = no maximum"},
    {name: "dont_count_slow_torrents", label: "Do not count slow jobs in these maxima", kind: "bool"},
    {name: "slow_torrent_download_rate", label: "Slow below a download rate of", kind: "number", scale: 1024,
     unit: "KiB/s"},
    {name: "slow_torrent_upload_rate", label: "and an upload rate of", kind: "number", scale: 1024, unit: "KiB/s"},
    {name: "slow_torrent_inactive_time", label: "for", kind: "number", unit: "s",
     hint: "a slow job runs on beside the others; a stalled download holds no slot"},
    {name: "ratio_limit", label: "Seed until the ratio", kind: "number", hint: "-1 = no limit"},
    {name: "seeding_time_limit", label: "Seed for at most", kind: "number", scale: 60, unit: "minutes",
     hint: "-1 = no limit"},
    {name: "idle_seeding_limit", label: "Seed while idle for at most", kind: "number", scale: 60, unit: "minutes",
     hint: "nothing sent or received meanwhile; -1 = no limit"},
    {name: "share_limit_action", label: "Then", kind: "choice",
     options: [["stop", "pause it"], ["remove", "remove it"], ["remove_with_files", "remove it and its files"],
               ["super_seed", "super-seed it (BEP 16)"]]},
  ]},
  {group: "RSS", fields: [
    {name: "rss_processing_enabled", label: "Read the feeds", kind: "bool",
     hint: "the feeds and the download rules are edited through the qBittorrent API's rss/*"},
    {name: "rss_refresh_interval", label: "Read each feed every", kind: "number", scale: 60, unit: "minutes"},
    {name: "rss_fetch_delay", label: "Between two fetches from one host", kind: "number", unit: "seconds",
     hint: "its feeds are fetched one at a time"},
    {name: "rss_max_articles_per_feed", label: "Articles a feed keeps", kind: "number", unit: "articles"},
    {name: "rss_auto_downloading_enabled", label: "Add the torrents the download rules take", kind: "bool"},
    {name: "rss_download_repack_proper_episodes", label: "The smart filter takes a REPACK or PROPER once",
     kind: "bool"},
    {name: "rss_smart_episode_filters", label: "Episode patterns", kind: "lines",
     hint: "regular expressions, one a line, whose groups name an episode (S01E05, 1x05, a date)"},
  ]},
  {group: "Web UI", local: true, fields: [
    {name: "ui_theme", label: "Theme", kind: "choice", local: true,
     options: [["system", "as the system"], ["light", "light"], ["dark", "dark"]],
     hint: "kept by this browser"},
  ]},
  {group: "Advanced", fields: [
    {name: "max_active_checking", label: "Torrents checked at once", kind: "number", unit: "jobs",
     hint: "hashing their data; -1 = no limit"},
    {name: "run_timeout", label: "Stop a program after", kind: "number", unit: "s"},
    {name: "torrent_file_size_limit", label: ".torrent file size limit", kind: "number", scale: 1048576, unit: "MiB",
     hint: "the largest .torrent added, uploaded, fetched or watched; 1 to 32"},
    {name: "bind_interface", label: "Network interface", kind: "text", placeholder: "wg0",
     hint: "every connection by this interface alone, nothing elsewhere while it is down; empty = any"},
    {name: "bind_address", label: "Its address", kind: "text", placeholder: "10.8.0.2",
     hint: "one of the interface's addresses; empty = any of them"},
    {name: "login_max_failures", label: "Refuse an address after", kind: "number", unit: "failed logins",
     hint: "each within the time below of the next, at any door; 0 = never refused"},
    {name: "login_ban_time", label: "for", kind: "number", unit: "s"},
    {name: "max_concurrent_http_announces", label: "HTTP tracker announces at once", kind: "number",
     unit: "announces", hint: "over every torrent; the others wait their turn"},
    {name: "stop_tracker_timeout", label: "Wait for trackers at a stop", kind: "number", unit: "s",
     hint: "their stopped announces, all at once; 0 = none sent"},
    {name: "recheck_on_completion", label: "Check a download's files again when it completes", kind: "bool",
     hint: "before it counts as complete; what is missing is downloaded"},
    {name: "resume_save_interval", label: "Save resume data every", kind: "number", unit: "s",
     hint: "of a running torrent, when it changed; 0 = only at a stop, a pause, a completion"},
    {name: "peer_turnover", label: "Peer turnover: drop", kind: "number", unit: "% of the peers",
     hint: "the worst, to try others, while a torrent is at the share of its limit below; 0 = never"},
    {name: "peer_turnover_cutoff", label: "at", kind: "number", unit: "% of its connection limit"},
    {name: "peer_turnover_interval", label: "every", kind: "number", unit: "s"},
    {name: "ssrf_mitigation", label: "Guard this host and network from tracker and web seed URLs", kind: "bool",
     hint: "trackers here asked only at /announce; no local web seed with a query, none redirected there"},
    {name: "reannounce_when_address_changed", label: "Announce to every tracker when our address changes",
     kind: "bool", hint: "as the gateway (port mapping) or the DHT's nodes see it"},
  ]},
];
let settingsShown = {};  // setting name -> the text (or checked state) shown for the server's value

function settingText(f, value) {
  if (f.kind === "lines") return (value || []).join("\n");
  if (f.kind === "tiers") return (value || []).map((tier) => tier.join("\n")).join("\n\n");
  if (f.kind === "time") {
    return `${String(Math.floor(value / 60)).padStart(2, "0")}:${String(value % 60).padStart(2, "0")}`;
  }
  if (f.kind === "folders") {  // {folder: save path or null}: one a line
    return Object.entries(value || {}).map(([folder, save]) => save ? `${folder} => ${save}` : folder).join("\n");
  }
  if (f.kind !== "number" || !f.scale || value === -1) return String(value);
  return String(Math.round((value / f.scale) * 1000) / 1000);
}

function settingValue(f, input) {  // what the input asks, as the API takes it
  if (f.kind === "bool") return input.checked;
  if (f.kind === "secret") return input.value;  // (spaces and all)
  if (f.kind === "choice" && typeof f.options[0][0] === "number") return Number(input.value);
  const text = input.value.trim();
  if (f.kind === "lines") return text.split("\n").map((line) => line.trim()).filter(Boolean);
  if (f.kind === "tiers") {
    return text.split(/\n\s*\n/).map((tier) => tier.split("\n").map((line) => line.trim()).filter(Boolean))
      .filter((tier) => tier.length);
  }
  if (f.kind === "time") {
    const m = /^(\d{1,2}):(\d{2})$/.exec(text);
    return m ? Number(m[1]) * 60 + Number(m[2]) : text;  // (the server says what is wrong with it)
  }
  if (f.kind === "folders") {
    const out = {};
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf("=>");
      if (at < 0) out[line.trim()] = null;
      else out[line.slice(0, at).trim()] = line.slice(at + 2).trim() || null;
    }
    return out;
  }
  if (f.kind !== "number") return text;
  const n = text === "" ? NaN : Number(text);
  if (!isFinite(n)) return text;  // (the server says what is wrong with it)
  return f.scale && n !== -1 ? Math.round(n * f.scale) : n;
}

// ---- this browser's own settings (the Web UI group) ------------------------------------------

const THEME_KEY = "torrent-engine-theme";
function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
const localValues = () => ({ui_theme: localStorage.getItem(THEME_KEY) || "system"});
function saveLocal(name, value) {
  if (name === "ui_theme") {
    if (value === "system") localStorage.removeItem(THEME_KEY); else localStorage.setItem(THEME_KEY, value);
    applyTheme(value);
  }
}
applyTheme(localStorage.getItem(THEME_KEY));

// ---- the form ----------------------------------------------------------------------------------

function settingInput(f, id, value) {
  let input;
  if (f.kind === "bool") {
    input = el("input", {id, type: "checkbox"});
    input.checked = Boolean(value);
    settingsShown[f.name] = input.checked;
  } else if (f.kind === "choice") {
    input = el("select", {id});
    const options = f.options.some(([v]) => v === value) ? f.options
      : [...f.options, [value, `as set elsewhere (${value})`]];
    for (const [v, label] of options) input.append(el("option", {value: v, text: label}));
    input.value = String(value);
    settingsShown[f.name] = input.value;
  } else {
    input = ["folders", "lines", "tiers"].includes(f.kind) ? el("textarea", {id, rows: "3", spellcheck: "false"})
      : f.kind === "secret" ? el("input", {id, type: "password", autocomplete: "new-password"})
      : el("input", {id, type: "text", autocomplete: "off", spellcheck: "false"});  // (a time too: what was typed is kept, the server names a bad one)
    if (f.kind === "number") input.inputMode = f.scale || f.name === "ratio_limit" ? "decimal" : "numeric";
    if (f.placeholder || f.kind === "time") input.placeholder = f.placeholder || "HH:MM";
    input.value = settingText(f, value);
    settingsShown[f.name] = input.value.trim();
  }
  input.dataset.setting = f.name;
  return input;
}

function drawSettings(values) {
  const box = $("settings-groups");
  box.replaceChildren();
  settingsShown = {};
  const all = {...values, ...localValues()};
  for (const g of SETTINGS) {
    const set = el("fieldset", {class: "settings-group", id: `settings-group-${g.group.replace(/\W/g, "").toLowerCase()}`},
                   el("legend", {text: g.group}));
    for (const f of g.fields) {
      if (!(f.name in all)) continue;  // (a daemon without that setting)
      const id = `setting-${f.name}`;
      const input = settingInput(f, id, all[f.name]);
      const error = el("span", {class: "field-error", id: `setting-error-${f.name}`, role: "alert"});
      const described = [error.id];
      const row = el("div", {class: `setting ${f.kind}`});
      if (f.kind === "bool") row.append(el("label", {class: "check", for: id}, input, ` ${f.label}`));
      else {
        const unit = el("span", {class: "muted unit", id: `setting-unit-${f.name}`, text: f.unit || ""});
        if (f.unit) described.unshift(unit.id);
        row.append(el("label", {for: id, text: f.label}), input, unit);
      }
      if (f.hint) {
        row.append(el("span", {class: "hint muted", id: `setting-hint-${f.name}`, text: f.hint}));
        described.splice(-1, 0, `setting-hint-${f.name}`);
      }
      if (f.status) {  // (what the daemon says of it now: drawDedupStatus)
        row.append(el("span", {class: "hint muted", id: `setting-status-${f.name}`, role: "status"}));
        described.splice(-1, 0, `setting-status-${f.name}`);
      }
      input.setAttribute("aria-describedby", described.join(" "));
      row.append(error);
      set.append(row);
    }
    if (g.note) set.append(el("p", {class: "muted note", text: g.note}));
    if (g.extra === "groups") set.append(el("div", {id: "settings-bandwidth-groups", class: "muted note"}));
    if (g.extra === "mail" && "mail_enabled" in all) set.append(mailTestRow());
    if (g.local) {
      const out = el("button", {type: "button", class: "ghost", id: "settings-sign-out", text: "Sign out of this browser"});
      out.addEventListener("click", () => { $("settings-dialog").close(); logout(); });
      set.append(el("div", {class: "setting"}, el("span", {class: "muted", text: "API token"}), out));
    }
    box.append(set);
  }
  api("GET", "/api/groups").then(drawBandwidthGroups).catch(() => {});
  api("GET", "/api/dedup").then(drawDedupStatus).catch(() => {});
}

// A test mail with the mail settings as saved (POST /api/settings/test-mail), and what became of it
function mailTestRow() {
  const status = el("span", {class: "hint muted", id: "settings-mail-test-status", role: "status"});
  const button = el("button", {type: "button", class: "ghost", id: "settings-mail-test", text: "Send a test mail"});
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Sending (with the settings as saved)…";
    try {
      const r = await api("POST", "/api/settings/test-mail");
      status.textContent = `Sent to ${r.to} through ${r.server}.`;
    } catch (e) {
      status.textContent = `Not sent: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return el("div", {class: "setting"}, el("span", {class: "muted", text: "Mail"}), button, status);
}

// What the deduplication holds now (GET /api/dedup), under the indexed folders
function drawDedupStatus(s) {
  const box = $("setting-status-dedup_folders");
  if (!box) return;
  const n = (x) => x.toLocaleString("en-US").replace(/,/g, "\u202f");
  const parts = [s.mode === "off" ? "Nothing is taken (off)."
    : `Held: the files of ${n(s.jobs)} complete torrent${s.jobs === 1 ? "" : "s"}`
      + (s.folders.length ? `, and ${n(s.files)} file${s.files === 1 ? "" : "s"} in the folders (${n(s.hashed)} hashed).` : ".")];
  if (s.walking) parts.push(s.hashing ? `Hashing ${n(s.hashing.done)} of ${n(s.hashing.total)} new or changed files…` : "Walking the folders…");
  else if (s.walked_at) parts.push(`Last looked at ${new Date(s.walked_at * 1000).toLocaleTimeString()}.`);
  if (s.truncated) parts.push("Stopped at 100 000 files: the rest is not indexed.");
  for (const f of s.folders) if (f.error) parts.push(`${f.folder}: ${f.error}.`);
  box.textContent = parts.join(" ");
}

// The bandwidth groups (their own API: /api/groups), listed under the speed limits
function drawBandwidthGroups(answer) {
  const box = $("settings-bandwidth-groups");
  if (!box) return;
  const groups = answer.groups || [];
  const limit = (n) => (n ? `${bytes(n)}/s` : "no limit");
  box.replaceChildren(el("p", {text: groups.length
    ? "Bandwidth groups (set through /api/groups, docs/api.md):" : "No bandwidth group (they are made through /api/groups: docs/api.md)."}));
  if (groups.length) {
    box.append(el("ul", {}, ...groups.map((g) => el("li", {text:
      `${g.name}: ↓ ${limit(g.download_limit)}, ↑ ${limit(g.upload_limit)}, weight ${g.weight}, ${(g.jobs || []).length} jobs`}))));
  }
}

async function openSettings() {
  $("settings-status").textContent = "";
  $("settings-groups").replaceChildren(el("p", {class: "muted", text: "Loading…"}));
  $("settings-dialog").showModal();
  try { drawSettings(await api("GET", "/api/settings")); }
  catch (e) { $("settings-status").textContent = e.message; }
}

async function saveSettings(ev) {
  ev.preventDefault();
  const changes = {};
  const local = {};
  for (const g of SETTINGS) {
    for (const f of g.fields) {
      const input = $(`setting-${f.name}`);
      if (!input) continue;
      $(`setting-error-${f.name}`).textContent = "";
      input.removeAttribute("aria-invalid");
      const now = f.kind === "bool" ? input.checked : input.value.trim();
      if (now === settingsShown[f.name]) continue;
      if (f.local) local[f.name] = input.value; else changes[f.name] = settingValue(f, input);
    }
  }
  for (const [name, value] of Object.entries(local)) { saveLocal(name, value); settingsShown[name] = value; }
  if (!Object.keys(changes).length) {
    $("settings-status").textContent = Object.keys(local).length ? "Saved." : "Nothing changed.";
    return;
  }
  $("settings-status").textContent = "Saving…";
  $("settings-save").disabled = true;
  try {
    const saved = await api("PATCH", "/api/settings", changes);  // (all of them, or none)
    drawSettings(saved);
    statusLimits(saved);
    $("settings-status").textContent = "Saved.";
  } catch (e) {
    const input = e.field ? $(`setting-${e.field}`) : null;
    if (input) {
      $(`setting-error-${e.field}`).textContent = e.message.replace(`${e.field}: `, "");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      $("settings-status").textContent = "Not saved: nothing changed (see the field marked).";
    } else {
      $("settings-status").textContent = `Not saved: ${e.message}`;
    }
  } finally { $("settings-save").disabled = false; }
}
