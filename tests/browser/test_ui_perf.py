"""10 000 jobs in the web UI, driven in headless Chromium with the Performance API probes of
ui_perf.py: the list is drawn with every job counted, a filter and a sort give the right rows,
and scrolling draws only the rows in view. What a user sees is asserted; the times go to
bench/bench_ui.py and bench/RESULTS.md (no timing assert here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_ui import chromium, in_thread
from tests.browser.ui_perf import N, run_steps, ten_thousand
from tests.integration.api_helpers import running_api

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_ten_thousand_jobs_are_drawn_filtered_sorted_and_scrolled_with_the_steps_timed(
        tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        await ten_thousand(api.service)
        with chromium(1400, 900) as driver:
            figures = await in_thread(lambda: run_steps(driver, api.url))
    seen = figures.seen
    assert seen["first count"] == N and seen["rows at first"] < 200, seen
    assert seen["filtered count"] == N // 10 and all(name.endswith("0") for name in seen["filtered names"])
    assert seen["unfiltered count"] == N
    assert (seen["first ascending"], seen["first descending"]) == ("job-00000", f"job-{N - 1:05d}")
    assert seen["rows in the middle"] < 200 and seen["most rows while scrolling"] < 200, seen
    assert seen["last name"] == "job-00000"  # (scrolled to the end of the descending list)
    assert figures.first_paint > 0 and len(figures.frame_gaps) == 120  # (each step measured)
