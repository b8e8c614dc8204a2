"use strict";
// The statistics (GET /api/stats when opened, then each service.stats event while it is open), as
// qBittorrent's web UI shows its Statistics window: every run's totals and this run's, the
// connected peers, the DHT, the tracker announces waiting for a slot and the request latency.

function statsRows(stats) {
  const t = stats.transfer;
  const moved = (c, p) => [
    [`${p}-downloaded`, "Downloaded", bytes(c.downloaded)], [`${p}-uploaded`, "Uploaded", bytes(c.uploaded)],
    [`${p}-ratio`, "Share ratio", shareRatio(c)],
    [`${p}-wasted`, "Wasted (not needed, or failed the hash check)", bytes(c.wasted)],
    [`${p}-added`, "Torrents added", c.added.toLocaleString()],
    [`${p}-active`, "Time running", duration(c.seconds_active)]];
  return [
    ["Every run of the daemon"], ...moved(t.all_time, "all"),
    ["all-starts", "Starts", t.all_time.session_count.toLocaleString()],
    ["This run"], ...moved(t.session, "run"),
    ["Now"], ["peers", "Connected peers", (stats.peers || 0).toLocaleString()],
    ["dht", "DHT nodes", (stats.dht_nodes || 0).toLocaleString()],
    ["announces", "Tracker announces waiting for a slot", (stats.queued_announces || 0).toLocaleString()],
    ["latency", "Request latency (a piece a peer asked for, read from disk)",
      `${((stats.request_latency || 0) / 1000).toFixed(1)} ms`]];
}

function showStats(stats) {
  const rows = statsRows(stats).map(([key, label, value]) => (label === undefined
    ? el("tr", {class: "stats-head"}, el("th", {colspan: "2", scope: "colgroup", text: key}))
    : el("tr", {}, el("th", {scope: "row", text: label}), el("td", {"data-stat": key, text: value}))));
  $("stats-rows").replaceChildren(...rows);
}

function statsUpdate(stats) {  // (a service.stats event: drawn again while the window is open)
  if ($("stats-dialog").open && stats.transfer) showStats(stats);
}

async function openStats() {
  $("stats-dialog").showModal();
  showStats(await api("GET", "/api/stats"));
}

document.addEventListener("DOMContentLoaded", () => {
  $("stats-open").addEventListener("click", () => act(openStats()));
  $("stats-close").addEventListener("click", () => $("stats-dialog").close());
});
