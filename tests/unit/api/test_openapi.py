"""The OpenAPI document against the route table: every route of our API described, every
description naming a route, and the document a valid OpenAPI 3.1 one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest.mock import MagicMock

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.conftest import require_module
from torrent_engine.api import create_app
from torrent_engine.api.app import parse_peer, parse_source
from torrent_engine.api.openapi import (
    OPERATIONS,
    SCHEMAS,
    openapi_document,
    openapi_path,
    own_operations,
    undescribed,
    unrouted,
)
from torrent_engine.jobs.trackers import check_url
from torrent_engine.jobs.validate import check_category, check_tag
from torrent_engine.jobs.webseeds import check_web_seed


def app_routes() -> list[BaseRoute]:
    app = create_app(MagicMock(), token="t", events=MagicMock(), allowed_hosts=frozenset({"localhost"}))
    return list(app.routes)


async def _nothing(request: Any) -> Response:
    return Response()


def test_every_route_of_our_api_is_described_and_every_description_names_a_route() -> None:
    routes = app_routes()
    assert undescribed(routes) == []
    assert unrouted(routes) == []
    ops = own_operations(routes)
    assert ("GET", "/api/openapi.json") in ops and ("PATCH", "/api/categories/{name}") in ops
    # the compatibility dialects and the UI are not ours to describe here
    assert not [path for _, path in ops if path.startswith("/api/v2/") or not path.startswith("/api/")]


def test_a_new_route_without_a_description_is_caught() -> None:
    routes = [*app_routes(), Route("/api/jobs/{job_id}/peers", _nothing, methods=["GET", "POST"])]
    assert undescribed(routes) == [("GET", "/api/jobs/{job_id}/peers"), ("POST", "/api/jobs/{job_id}/peers")]
    assert ("GET", "/api/jobs/{job_id}/peers") not in {
        (m.upper(), p) for p, item in openapi_document(routes)["paths"].items() for m in item}


def test_a_description_whose_route_is_gone_is_caught() -> None:
    routes = [r for r in app_routes() if not (isinstance(r, Route) and r.path == "/api/queue")]
    assert unrouted(routes) == [("GET", "/api/queue")]
    assert "/api/queue" not in openapi_document(routes)["paths"]


def test_starlette_path_converters_become_plain_openapi_parameters() -> None:
    assert openapi_path("/api/categories/{name:path}") == "/api/categories/{name}"
    assert openapi_path("/api/jobs/{job_id}/move") == "/api/jobs/{job_id}/move"
    doc = openapi_document(app_routes())
    params = doc["paths"]["/api/categories/{name}"]["delete"]["parameters"]
    assert params[0] == {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                         "description": params[0]["description"]}


def _refs(value: object) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_the_document_is_valid_openapi_3_1_and_every_reference_resolves() -> None:
    doc = json.loads(json.dumps(openapi_document(app_routes())))  # plain JSON, as served
    assert doc["openapi"] == "3.1.0"
    for ref in _refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    used = {r.rsplit("/", 1)[1] for r in _refs(doc) if r.startswith("#/components/schemas/")}
    assert set(SCHEMAS) - used == set(), "schemas no operation uses"
    validator = require_module("openapi_spec_validator")
    validator.validate(doc)


@pytest.mark.parametrize("key", sorted(OPERATIONS))
def test_every_operation_answers_401_and_403_and_names_its_success(key: tuple[str, str]) -> None:
    op = OPERATIONS[key]
    codes = set(op["responses"])
    assert {"401", "403"} <= codes
    assert any(c.startswith("2") for c in codes)
    if "{" in key[1]:
        assert "404" in codes


def test_the_document_route_is_built_from_the_app_it_serves() -> None:
    app = Starlette(routes=[Route("/api/openapi.json", MagicMock(), methods=["GET"]),
                            Route("/api/health", _nothing, methods=["GET"])])
    doc = openapi_document(app.routes)
    assert sorted(doc["paths"]) == ["/api/health", "/api/openapi.json"]


def _by_path(*names: str) -> dict[str, Any]:
    node: Any = SCHEMAS
    for name in names:
        node = node[name]
    return dict(node)


# (a string schema of the document, the server's check of such a value): what the pattern
# allows the check takes (the document no looser than the server where it refuses)
_CHECKED: list[tuple[str, tuple[str, ...], Callable[[str], object]]] = [
    ("announce URL", ("TrackerTiers", "properties", "tiers", "items", "items"),
     lambda v: check_url(v, "tiers")),
    ("web seed URL", ("WebSeeds", "properties", "urls", "items"), lambda v: check_web_seed(v, "urls")),
    ("peer", ("AddJob", "properties", "peers", "items"), parse_peer),
    ("uploaded peers", ("AddJobUpload", "properties", "peers"),
     lambda v: [parse_peer(p) for p in v.replace(",", " ").split()]),
    ("tag", ("AddJob", "properties", "tags", "items"), check_tag),
    ("category", ("AddJob", "properties", "category"), check_category),
    ("magnet", ("AddJob", "properties", "source"),
     lambda v: parse_source(v, 1 << 20) if v.startswith("magnet:") else None),
]


@pytest.mark.parametrize(("what", "where", "check"), _CHECKED, ids=[c[0] for c in _CHECKED])
def test_a_value_the_documents_pattern_allows_the_server_takes(
        what: str, where: tuple[str, ...], check: Callable[[str], object]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = _by_path(*where)
    longest = schema.get("maxLength", 10_000)

    # (fullmatch: JSON Schema's "$" is ECMA-262's, which takes no newline before the end)
    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.from_regex(schema["pattern"], fullmatch=True).filter(lambda v: len(v) <= longest))
    def taken(value: str) -> None:
        check(value)  # (a refusal raises)

    taken()
