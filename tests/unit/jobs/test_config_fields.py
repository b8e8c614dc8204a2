"""The settings that are ``Config`` fields the engine reads where it uses them (the address told
to trackers, how long a stop waits for its trackers, how often resume data is saved, whether a
completion waits for a check, HTTP announces at once, SSRF mitigation, peer turnover, a
reannounce when our address changes): checked
on the way in, and set on the Config only when changed (a library's own Config stays otherwise)."""

from __future__ import annotations

import math

import pytest

from torrent_engine.config import Config
from torrent_engine.errors import ConfigError
from torrent_engine.jobs.configure import CONFIG_FIELDS, apply_config_fields
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.jobs.tuning.settings import ServiceSettings, updated


@pytest.mark.parametrize(("name", "bad"), [
    ("stop_tracker_timeout", -1), ("stop_tracker_timeout", 300.5), ("stop_tracker_timeout", "5"),
    ("stop_tracker_timeout", True), ("stop_tracker_timeout", math.nan), ("stop_tracker_timeout", None),
    ("resume_save_interval", -0.5), ("resume_save_interval", math.inf), ("resume_save_interval", "60"),
    ("resume_save_interval", False), ("recheck_on_completion", 1), ("recheck_on_completion", "true"),
    ("max_concurrent_http_announces", 0), ("max_concurrent_http_announces", 65536),
    ("max_concurrent_http_announces", True), ("max_concurrent_http_announces", 1.5),
    ("max_concurrent_http_announces", "5"), ("ssrf_mitigation", 0), ("ssrf_mitigation", "false"),
    ("ssrf_mitigation", None), ("reannounce_when_address_changed", 1),
    ("reannounce_when_address_changed", "true"), ("peer_turnover", -1), ("peer_turnover", 101),
    ("peer_turnover", 4.5),
    ("peer_turnover", True), ("peer_turnover_cutoff", "90"), ("peer_turnover_cutoff", 101),
    ("peer_turnover_interval", 0), ("peer_turnover_interval", math.inf), ("peer_turnover_interval", "300"),
])
def test_a_bad_value_is_refused_naming_the_setting(name: str, bad: object) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        updated(ServiceSettings(), {name: bad})
    assert err.value.field == name
    assert any(word in str(err.value) for word in ("seconds", "true or false", "whole number", "percent"))


def test_zero_and_the_most_are_taken() -> None:
    s = updated(ServiceSettings(), {"stop_tracker_timeout": 0, "resume_save_interval": 0})
    assert s.stop_tracker_timeout == 0.0 and s.resume_save_interval == 0.0
    assert updated(s, {"stop_tracker_timeout": 300}).stop_tracker_timeout == 300.0


def test_the_config_takes_what_changed_and_keeps_its_own_otherwise() -> None:
    config = Config(stop_tracker_timeout=2.0, resume_save_interval=30.0, dht_enabled=False, lsd_enabled=False,
                    port_mapping=False)
    defaults = ServiceSettings()
    apply_config_fields(config, defaults, defaults)  # (a start with nothing changed)
    assert (config.stop_tracker_timeout, config.resume_save_interval) == (2.0, 30.0)
    changed = updated(defaults, {"stop_tracker_timeout": 0, "announce_ip": "203.0.113.9"})
    apply_config_fields(config, defaults, changed)
    assert (config.stop_tracker_timeout, config.resume_save_interval, config.announce_ip) == (0.0, 30.0,
                                                                                               "203.0.113.9")
    assert all(hasattr(config, name) for name in CONFIG_FIELDS)


def test_the_http_announce_limit_is_taken_where_asked() -> None:
    assert updated(ServiceSettings(), {"max_concurrent_http_announces": 1}).max_concurrent_http_announces == 1
    assert ServiceSettings().max_concurrent_http_announces == Config().max_concurrent_http_announces == 50
    for bad in (0, 65536):
        with pytest.raises(ConfigError) as err:
            Config(max_concurrent_http_announces=bad)
        assert err.value.field == "max_concurrent_http_announces"


def test_the_config_refuses_a_stop_timeout_out_of_range() -> None:
    for bad in (-1.0, 301.0):
        with pytest.raises(ConfigError) as err:
            Config(stop_tracker_timeout=bad)
        assert err.value.field == "stop_tracker_timeout"
    with pytest.raises(ConfigError):
        Config(resume_save_interval=-1.0)
    assert Config(resume_save_interval=0.0).resume_save_interval == 0.0


def test_ssrf_mitigation_is_on_unless_turned_off_and_a_library_config_keeps_its_own() -> None:
    assert ServiceSettings().ssrf_mitigation and Config().ssrf_mitigation
    defaults = ServiceSettings()
    off = updated(defaults, {"ssrf_mitigation": False})
    config = Config(dht_enabled=False, lsd_enabled=False, port_mapping=False)
    apply_config_fields(config, defaults, off)
    assert not config.ssrf_mitigation
    own = Config(ssrf_mitigation=False, dht_enabled=False, lsd_enabled=False, port_mapping=False)
    apply_config_fields(own, defaults, defaults)
    assert not own.ssrf_mitigation


def test_peer_turnover_is_libtorrents_unless_changed_and_the_config_refuses_a_share_out_of_range() -> None:
    s, c = ServiceSettings(), Config()
    assert (s.peer_turnover, s.peer_turnover_cutoff, s.peer_turnover_interval) == (4, 90, 300.0)
    assert (c.peer_turnover, c.peer_turnover_cutoff, c.peer_turnover_interval) == (4, 90, 300.0)
    changed = updated(s, {"peer_turnover": 0, "peer_turnover_cutoff": 100, "peer_turnover_interval": 60})
    config = Config(dht_enabled=False, lsd_enabled=False, port_mapping=False)
    apply_config_fields(config, s, changed)
    assert (config.peer_turnover, config.peer_turnover_cutoff) == (0, 100)
    assert config.peer_turnover_interval == 60.0
    for name, bad in (("peer_turnover", 101), ("peer_turnover_cutoff", -1), ("peer_turnover_interval", 0.0)):
        with pytest.raises(ConfigError) as err:
            Config(**{name: bad})  # type: ignore[arg-type]
        assert err.value.field == name


def test_a_reannounce_when_our_address_changes_is_off_unless_turned_on() -> None:
    s = ServiceSettings()
    assert not s.reannounce_when_address_changed and not Config().reannounce_when_address_changed
    config = Config(dht_enabled=False, lsd_enabled=False, port_mapping=False)
    apply_config_fields(config, s, updated(s, {"reannounce_when_address_changed": True}))
    assert config.reannounce_when_address_changed
