"""A user-space link emulator for tests and benchmarks: TCP and UDP relays on loopback that add
one-way delay, jitter, random loss (UDP) and a rate cap with a bounded queue, so each peer of a
test swarm sits behind its own link. ``model`` is the sans-I/O core (when does a packet leave, or
is it dropped); ``relay`` is the asyncio shell around it."""

from .model import Duplex, Link, LinkSpec, Stream

__all__ = ["Duplex", "Link", "LinkSpec", "Stream"]
