"""The JSON-RPC 2.0 framing and name table of Transmission 4.1 (api/compat/transmission_jsonrpc.py)."""

from __future__ import annotations

import pytest

from torrent_engine.api.compat.transmission_jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LEGACY,
    LEGACY_NAMES,
    CallError,
    failure,
    read_call,
    snake_case,
    table_to_snake,
    to_legacy,
    to_snake,
)


def test_each_old_name_has_one_new_name() -> None:
    assert snake_case("percentDone") == "percent_done" and snake_case("isUTP") == "is_utp"
    assert snake_case("peer-limit-global") == "peer_limit_global"
    assert snake_case("cache-size-mb") == "cache_size_mib"  # (renamed by 4.1, not by the rule)
    assert len(LEGACY) == len(LEGACY_NAMES)  # no two old names meet on one new name
    assert all(LEGACY[snake_case(old)] == old for old in LEGACY_NAMES)


def test_params_and_answers_are_renamed_both_ways() -> None:
    method, params = to_legacy("torrent_get", {"ids": "recently_active",
                                               "fields": ["hash_string", "download_dir", "percent_done"]})
    assert method == "torrent-get"
    assert params == {"ids": "recently-active", "fields": ["hashString", "downloadDir", "percentDone"]}
    assert to_legacy("session_get", {"fields": ["download_dir"]})[1] == {"fields": ["download-dir"]}
    assert to_legacy("session_set", {"encryption": "allowed"})[1] == {"encryption": "tolerated"}
    assert to_snake({"peersFrom": {"fromDht": 1}, "wanted": [1, 0], "encryption": "tolerated"}) == \
        {"peers_from": {"from_dht": 1}, "wanted": [True, False], "encryption": "allowed"}
    assert table_to_snake([["id", "wanted"], [1, [0, 1]]]) == [["id", "wanted"], [1, [False, True]]]


@pytest.mark.parametrize(("request_", "code"), [
    (5, INVALID_REQUEST),
    ({"method": "session_get", "id": 1}, INVALID_REQUEST),
    ({"jsonrpc": "2.0", "method": None, "id": 1}, INVALID_REQUEST),
    ({"jsonrpc": "2.0", "method": "session_get", "id": [1]}, INVALID_REQUEST),
    ({"jsonrpc": "2.0", "method": "session_get", "id": True}, INVALID_REQUEST),
    ({"jsonrpc": "2.0", "method": "session_get", "params": [1, 2], "id": 1}, INVALID_PARAMS),
])
def test_a_bad_request_is_named_by_its_standard_code(request_: object, code: int) -> None:
    with pytest.raises(CallError) as caught:
        read_call(request_)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_a_request_without_id_is_a_notification() -> None:
    assert read_call({"jsonrpc": "2.0", "method": "torrent_stop"}).notification
    call = read_call({"jsonrpc": "2.0", "method": "torrent_stop", "id": None})
    assert not call.notification and call.id is None


def test_an_error_object_carries_the_standard_message_and_transmissions_data() -> None:
    assert failure(7, INVALID_PARAMS, "ids must be …") == {
        "jsonrpc": "2.0", "id": 7,
        "error": {"code": -32602, "message": "Invalid params", "data": {"error_string": "ids must be …"}}}
    assert failure(None, INVALID_REQUEST)["error"] == {"code": -32600, "message": "Invalid Request"}
