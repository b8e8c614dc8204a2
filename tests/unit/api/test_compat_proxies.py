"""The proxy in qBittorrent's preferences (4.5's numbers, 4.6's names) and Transmission's
proxy_url: one setting, each bad value refused naming the dialect's field."""

from __future__ import annotations

import pytest

from torrent_engine.api.compat.proxies import qbt_changes, qbt_preferences, tr_changes, tr_session
from torrent_engine.jobs import InvalidJobRequest
from torrent_engine.jobs.tuning.settings import ServiceSettings, updated

NONE = ServiceSettings()


def test_none_is_answered_with_qbittorrents_defaults() -> None:
    prefs = qbt_preferences(NONE)
    assert (prefs["proxy_type"], prefs["proxy_ip"], prefs["proxy_port"], prefs["proxy_auth_enabled"]) == (
        0, "0.0.0.0", 8080, False)
    assert tr_session(NONE) == {"proxy_url": ""}


@pytest.mark.parametrize(("prefs", "url"), [
    ({"proxy_type": 2, "proxy_ip": "127.0.0.1", "proxy_port": 1080}, "socks5h://127.0.0.1:1080"),
    ({"proxy_type": 4, "proxy_ip": "10.0.0.1", "proxy_port": 1080, "proxy_username": "u",
      "proxy_password": "p w", "proxy_hostname_lookup": False}, "socks5://u:p%20w@10.0.0.1:1080"),
    ({"proxy_type": 3, "proxy_ip": "10.0.0.1", "proxy_port": 3128, "proxy_username": "u",
      "proxy_password": "p"}, "http://u:p@10.0.0.1:3128"),
    ({"proxy_type": 5, "proxy_ip": "10.0.0.1", "proxy_port": 1080}, "socks4a://10.0.0.1:1080"),
    ({"proxy_type": "SOCKS5", "proxy_ip": "::1", "proxy_port": 1080, "proxy_auth_enabled": True,
      "proxy_username": "u", "proxy_password": "p"}, "socks5h://u:p@[::1]:1080"),
    ({"proxy_type": "HTTP", "proxy_ip": "10.0.0.1", "proxy_port": "8080"}, "http://10.0.0.1:8080"),
    ({"proxy_type": -1}, ""),
    ({"proxy_type": "None"}, ""),
])
def test_qbittorrent_types_both_forms(prefs: dict[str, object], url: str) -> None:
    changes = qbt_changes(prefs, NONE)
    assert changes["proxy_url"] == url
    settings = updated(NONE, changes)
    if url:
        again = qbt_preferences(settings)
        assert qbt_changes({k: again[k] for k in prefs if k in again}, settings)["proxy_url"] == url


def test_a_port_alone_keeps_the_rest_and_the_4_6_switches_map_to_ours() -> None:
    settings = updated(NONE, qbt_changes({"proxy_type": 4, "proxy_ip": "10.0.0.1", "proxy_port": 1080,
                                          "proxy_username": "u", "proxy_password": "p"}, NONE))
    assert qbt_changes({"proxy_port": 1081}, settings)["proxy_url"] == "socks5h://u:p@10.0.0.1:1081"
    assert qbt_changes({"proxy_misc": False, "proxy_peer_connections": False}, settings) == {
        "proxy_torrents_only": True, "proxy_peer_connections": False}


@pytest.mark.parametrize(("prefs", "field"), [
    ({"proxy_type": "SOCKS9"}, "proxy_type"),
    ({"proxy_type": 7}, "proxy_type"),
    ({"proxy_type": 2, "proxy_ip": "", "proxy_port": 1080}, "proxy_ip"),
    ({"proxy_type": 2, "proxy_ip": "10.0.0.1", "proxy_port": 70000}, "proxy_port"),
    ({"proxy_type": 2, "proxy_ip": "10.0.0.1", "proxy_port": 1080, "proxy_hostname_lookup": "yes"},
     "proxy_hostname_lookup"),
    ({"proxy_type": 2, "proxy_ip": "10.0.0.1", "proxy_port": 1080, "proxy_bittorrent": False},
     "proxy_bittorrent"),
])
def test_bad_qbittorrent_values_name_their_field(prefs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        qbt_changes(prefs, NONE)
    assert caught.value.field == field


def test_transmission_proxy_url_is_checked_by_the_setting_and_kept_encoded() -> None:
    settings = updated(NONE, tr_changes({"proxy_url": "SOCKS5://us%40er:pass@127.0.0.1:9050"}))
    assert tr_session(settings) == {"proxy_url": "socks5://us%40er:pass@127.0.0.1:9050"}
    assert updated(settings, tr_changes({"proxy_url": None})).proxy_url == ""
    with pytest.raises(InvalidJobRequest) as caught:
        updated(NONE, tr_changes({"proxy_url": "gopher://127.0.0.1:70"}))
    assert caught.value.field == "proxy_url" and "scheme 'gopher'" in caught.value.reason


def test_proxy_only_needs_a_proxy() -> None:
    with pytest.raises(InvalidJobRequest) as caught:
        updated(NONE, {"proxy_only": True})
    assert caught.value.field == "proxy_only"
    both = updated(NONE, {"proxy_url": "socks5h://127.0.0.1:1080", "proxy_only": True})
    with pytest.raises(InvalidJobRequest):
        updated(both, {"proxy_url": ""})
