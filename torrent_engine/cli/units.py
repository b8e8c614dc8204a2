"""Human units on the command line: sizes, rates, ports and counts in; sizes, rates and times out."""

from __future__ import annotations

import argparse
import re

from ..formats.endpoint import EndpointError, port_number

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?(?:/s)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
# Below this rate an ETA says nothing (a seeder at 99.8 % that is gone gives years).
MEANINGFUL_RATE = 1024.0  # bytes per second
MAX_ETA = 100 * 24 * 3600.0


def parse_port(text: str) -> int:
    """A port number, 0 (any free one) to 65535 (``endpoint.port_number``'s rules)."""
    try:
        return port_number(text.strip(), allow_zero=True)
    except EndpointError:
        raise argparse.ArgumentTypeError(
            f"expected a port from 0 (any free one) to 65535, got {text!r}") from None


def parse_count(text: str, one: str, many: str) -> int:
    """A whole number of things (``one``, ``many``: their names), 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of {many}, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 {one}, got {value}")
    return value


def parse_threads(text: str) -> int:
    """A number of threads, 1 or more (0 and -3 were taken as 1 without a word)."""
    return parse_count(text, "thread", "threads")


def parse_rate(text: str) -> int:
    """``500K``, ``2M``, ``1.5MiB/s``, ``100kb`` -> bytes per second (K, M, G are powers of 1024,
    as aria2 and Transmission read them); ``0`` = unlimited."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a rate such as 500K, 2M or 1.5MiB/s, got {text!r}")
    value = float(match.group(1)) * 1024 ** _POWERS[match.group(2).lower()]
    return int(value)


def parse_size(text: str) -> int:
    """``500G``, ``2T``, ``1.5GiB``, ``0`` -> bytes (K, M, G, T are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None or text.strip().lower().endswith("/s"):
        raise argparse.ArgumentTypeError(f"expected a size such as 500M, 20G or 2T, got {text!r}")
    return int(float(match.group(1)) * 1024 ** _POWERS[match.group(2).lower()])


def human_eta(seconds: float | None, rate: float | None = None) -> str:
    """``mm:ss`` or ``h:mm:ss``; ``--:--`` when unknown or when the rate is too low to mean it."""
    if seconds is None or (rate is not None and rate < MEANINGFUL_RATE) or seconds > MAX_ETA:
        return "--:--"
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
