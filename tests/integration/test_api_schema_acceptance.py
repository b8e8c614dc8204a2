"""What the OpenAPI document allows, the server accepts: requests generated from the document's
own schemas for adding a job, changing one and setting its trackers are taken (2xx), or refused
for the state they meet (404, 409: a category not created, a magnet's metadata not come) — not
refused as bad input (400), which would mean the document allows more than the server takes
(schemathesis' "schema-valid request rejected", issue 48)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import loopback_only, running_api

pytestmark = pytest.mark.anyio

CASES = 50  # generated requests per operation
REFUSED_AT_MOST = 0.1  # the share of them refused as bad input that is let pass
MAGNET = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=accepted"
OPERATIONS = [("POST", "/api/jobs"), ("PATCH", "/api/jobs/{job_id}"), ("PUT", "/api/jobs/{job_id}/trackers")]
STATE = {404, 409}  # (refusals that say what the request met, not what it was)


def generated(operation: Any, path_parameters: dict[str, str]) -> list[Any]:
    """``CASES`` positive cases of ``operation`` (JSON bodies), the same each run."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    cases: list[Any] = []

    @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    # (JSON alone: a multipart upload's "torrent" is a .torrent, which the document cannot describe)
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE,
                                      path_parameters=path_parameters)
           .filter(lambda case: case.media_type in (None, "application/json")))
    def draw(case: Any) -> None:
        cases.append(case)

    draw()
    return cases


async def test_requests_the_document_allows_are_not_refused_as_bad_input(tmp_path: Path) -> None:
    schemathesis = require_module("schemathesis")
    from hypothesis import strategies as st

    # "torrent-source": what no pattern says (that base64 holds a .torrent): magnets, any info-hash
    magnets = st.builds(lambda h, n: f"magnet:?xt=urn:btih:{h}" + (f"&dn={quote(n)}" if n else ""),
                        st.text("0123456789abcdef", min_size=40, max_size=40), st.text(max_size=20))
    schemathesis.openapi.format("torrent-source", magnets)
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", json={"source": MAGNET, "paused": True})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        document = (await c.get("/api/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(document)
        port = httpx.URL(api.server.url).port
        assert port is not None
        report = []
        for method, path in OPERATIONS:
            operation = schema[path][method]
            statuses: Counter[int] = Counter()
            refused = []
            for case in generated(operation, {"job_id": job_id} if "{job_id}" in path else {}):
                loopback_only(case, port)
                body = case.body if isinstance(case.body, dict) else None  # (none: a PATCH may send none)
                r = await c.request(method, case.formatted_path, json=body)
                statuses[r.status_code] += 1
                assert r.status_code < 500, (case.body, r.text)
                if not (200 <= r.status_code < 300 or r.status_code in STATE):
                    refused.append(f"  {r.status_code} {r.json().get('error')!r} for {case.body!r}"[:400])
            assert sum(statuses.values()) == CASES
            if len(refused) > REFUSED_AT_MOST * CASES:
                report.append(f"{method} {path}: {len(refused)} of {CASES} refused {dict(statuses)}\n"
                              + "\n".join(refused))
        assert not report, "\n\n".join(report)


async def test_a_whole_number_written_with_a_fraction_is_the_integer_it_is(tmp_path: Path) -> None:
    # JSON Schema's "integer" allows 675.0, and so does the document: a client writing every
    # number as a double (or a generator from the document) is not refused for it
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", content=b'{"source": "%s", "paused": true, "download_limit": 675.0, '
                         b'"max_peers": 2e1}' % MAGNET.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text
        assert r.json()["options"]["download_limit"] == 675 and r.json()["options"]["max_peers"] == 20
        r = await c.patch(f"/api/jobs/{r.json()['id']}", content=b'{"upload_limit": 1.5}',
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["field"] == "upload_limit"


async def test_setting_trackers_refuses_a_field_it_does_not_know(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        job_id = (await c.post("/api/jobs", json={"source": MAGNET, "paused": True})).json()["id"]
        r = await c.put(f"/api/jobs/{job_id}/trackers", json={"tiers": [], "tier": [["udp://t.example:1"]]})
        assert r.status_code == 400 and r.json()["field"] == "tier", r.text
        r = await c.put(f"/api/jobs/{job_id}/trackers", json={"tiers": []})
        assert r.status_code == 200, r.text
