"""The web UI at 10 000 jobs, timed in the browser with the Performance API: the first paint of
the list, a filter click, a sort click and scrolling (virtualised rows). Shared by
tests/browser/test_ui_perf.py (which asserts what a user sees, never a time) and
bench/bench_ui.py (which prints the times)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.integration.api_helpers import TOKEN
from torrent_engine.jobs import AddOptions, JobFeatures, JobService

N = 10_000


def magnet(i: int) -> str:
    return f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i:05d}"


async def ten_thousand(service: JobService, n: int = N) -> float:
    """``n`` paused magnet jobs, each tenth in the category "linux" with the tag "iso" (two
    batched adds); the seconds it took."""
    started = time.perf_counter()
    await service.create_category("linux")
    await service.add_many([magnet(i) for i in range(n) if i % 10], AddOptions(paused=True))
    await service.add_many([magnet(i) for i in range(n) if i % 10 == 0], AddOptions(
        paused=True, features=JobFeatures(category="linux", tags=("iso",))))
    return time.perf_counter() - started


# Installed before the page's own scripts: long tasks and paints observed, and the time (from
# the navigation's start) of the first frame that shows the whole list's count and its rows.
PROBE = """
window.__perf = {longtasks: [], paints: {}, listShown: null};
try {
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) __perf.longtasks.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
  new PerformanceObserver((l) => { for (const e of l.getEntries()) __perf.paints[e.name] = e.startTime; })
    .observe({type: "paint", buffered: true});
} catch (e) { /* (an engine without them) */ }
// where the first paint's time goes: the event stream asked for and answering (its headers), and
// the snapshot's JSON (the one big parse) received and parsed
__perf.marks = {};
const realFetch = window.fetch;
window.fetch = function (path, opts) {
  const events = String(path).startsWith("/api/events") && !("eventsAsked" in __perf.marks);
  if (events) __perf.marks.eventsAsked = performance.now();
  const answer = realFetch.apply(this, arguments);
  if (events) answer.then(() => { __perf.marks.eventsAnswered = performance.now(); }, () => {});
  return answer;
};
const realParse = JSON.parse;
JSON.parse = function (text) {
  const big = typeof text === "string" && text.length > 1000000 && !("snapshotParsed" in __perf.marks);
  if (big) { __perf.marks.snapshotReceived = performance.now(); __perf.marks.snapshotBytes = text.length; }
  const out = realParse.apply(this, arguments);
  if (big) __perf.marks.snapshotParsed = performance.now();
  return out;
};
(function watch() {
  const count = document.getElementById("view-count");
  if (count && count.textContent.replace(/\\D/g, "") === "%d" && document.querySelector("#jobs tr.job")) {
    setTimeout(() => { __perf.listShown = performance.now(); }, 0);  // (after that frame's paint)
    return;
  }
  requestAnimationFrame(watch);
})();
"""

# arguments: a function's source run to act (a click, a scroll), a predicate's source that is
# true once the page shows the result; answers the milliseconds from the act to the end of the
# frame that drew it (a DOM change, then the task after that frame's rendering)
TIMED = """
const done = arguments[arguments.length - 1];
const act = new Function(arguments[0]), ready = new Function(arguments[1]);
const t0 = performance.now();
let finished = false;
const finish = () => {
  if (finished || !ready()) return;
  finished = true;
  observer.disconnect();
  setTimeout(() => done(performance.now() - t0), 0);
};
const observer = new MutationObserver(finish);
observer.observe(document.getElementById("app"), {childList: true, subtree: true, characterData: true,
                                                   attributes: true});
act();
finish();
setTimeout(() => { if (!finished) { finished = true; observer.disconnect(); done(-1); } }, 20000);
"""

# a scroll of the whole list, one step a frame: the frames' intervals (ms) and the rows in the DOM
SCROLL_RUN = """
const done = arguments[arguments.length - 1];
const steps = arguments[0];
const box = document.getElementById("jobs-scroll");
const stride = Math.floor((box.scrollHeight - box.clientHeight) / steps);
const gaps = [];
let last = null, i = 0, most = 0;
box.scrollTop = 0;
function step(now) {
  if (last !== null) gaps.push(now - last);
  last = now;
  most = Math.max(most, document.querySelectorAll("#jobs tr").length);
  if (i++ >= steps) { done({gaps, most}); return; }
  box.scrollTop = i * stride;
  requestAnimationFrame(step);
}
requestAnimationFrame(step);
"""


@dataclass
class Figures:
    """What the steps measured (ms), and what the page showed after each (for the test)."""

    first_paint: float = 0.0  # navigation start to the list drawn with every job counted
    first_contentful_paint: float = 0.0
    filter_ms: list[float] = field(default_factory=list)  # category linux, then all again
    sort_ms: list[float] = field(default_factory=list)  # name ascending, then descending
    jump_ms: float = 0.0  # scrollTop to the middle: its rows drawn
    frame_gaps: list[float] = field(default_factory=list)  # a scroll of the whole list, a step a frame
    longtasks: list[tuple[float, float]] = field(default_factory=list)
    # ms from the navigation: eventsAsked, eventsAnswered (headers), snapshotReceived (its last
    # byte: the JSON parsed), snapshotParsed; snapshotBytes (characters)
    marks: dict[str, float] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)


def install_probe(driver: Any, n: int = N) -> None:
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE % n})


def timed(driver: Any, act: str, ready: str) -> float:
    driver.set_script_timeout(60)
    ms = float(driver.execute_async_script(TIMED, act, ready))
    assert ms >= 0, f"the page never showed the result of: {act}"
    return ms


def count_text(driver: Any) -> int:
    return int("".join(c for c in driver.execute_script(
        "return document.getElementById('view-count').textContent") if c.isdigit()) or 0)


def rows_in_dom(driver: Any) -> int:
    return int(driver.execute_script("return document.querySelectorAll('#jobs tr').length"))


def names(driver: Any) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('#jobs tr.job .name')].map((e) => e.textContent)"))


def run_steps(driver: Any, url: str, n: int = N) -> Figures:
    """Open the list, filter, sort and scroll it, timing each step."""
    from selenium.webdriver.support.ui import WebDriverWait

    out = Figures()
    install_probe(driver, n)
    driver.get("about:blank")  # (a page load of its own: the same URL again would only change its #)
    driver.get(f"{url}/#token={TOKEN}")
    WebDriverWait(driver, 120, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.__perf && window.__perf.listShown"))
    perf = driver.execute_script("return window.__perf")
    out.first_paint = float(perf["listShown"])
    out.first_contentful_paint = float(perf["paints"].get("first-contentful-paint", 0.0))
    out.marks = {str(k): float(v) for k, v in perf["marks"].items()}
    out.seen["first count"] = count_text(driver)
    out.seen["rows at first"] = rows_in_dom(driver)
    click = "document.querySelector(`#sidebar button[data-filter='category'][data-value='%s']`).click()"
    shows = "return document.getElementById('view-count').textContent.replace(/\\D/g, '') === '%d'"
    out.filter_ms.append(timed(driver, click % "linux", shows % (n // 10)))
    out.seen["filtered names"] = names(driver)
    out.seen["filtered count"] = count_text(driver)
    out.filter_ms.append(timed(driver, click % "", shows % n))
    out.seen["unfiltered count"] = count_text(driver)
    sort = "document.querySelector('button.sort[data-sort=\"name\"]').click()"
    first = "const e = document.querySelector('#jobs tr.job .name'); return !!e && e.textContent === '%s'"
    out.sort_ms.append(timed(driver, sort, first % "job-00000"))
    out.seen["first ascending"] = names(driver)[0]
    out.sort_ms.append(timed(driver, sort, first % f"job-{n - 1:05d}"))
    out.seen["first descending"] = names(driver)[0]
    middle = n // 2
    out.jump_ms = timed(
        driver,
        "const b = document.getElementById('jobs-scroll');"
        " b.scrollTop = (b.scrollHeight - b.clientHeight) / 2",
        f"return !!document.querySelector('#jobs tr.job[data-index=\"{middle}\"]')"
        f" || !!document.querySelector('#jobs tr.job[data-index=\"{middle - 5}\"]')")
    out.seen["rows in the middle"] = rows_in_dom(driver)
    run = driver.execute_async_script(SCROLL_RUN, 120)
    out.frame_gaps = [float(g) for g in run["gaps"]]
    out.seen["most rows while scrolling"] = int(run["most"])
    out.seen["last name"] = names(driver)[-1]
    out.longtasks = [(float(a), float(b)) for a, b in driver.execute_script("return window.__perf.longtasks")]
    return out
