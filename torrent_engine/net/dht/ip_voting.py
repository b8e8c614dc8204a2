"""BEP 42: learning our external address from what others report (the ``ip`` field of DHT
replies, a peer's BEP 10 ``yourip``), one vote per reporting host, until enough agree. Pure."""

from __future__ import annotations

__all__ = ["EXTERNAL_IP_VOTES", "ExternalIpVotes"]

EXTERNAL_IP_VOTES = 3  # BEP 42: distinct responders that must agree on our address
MAX_VOTERS = 64  # hosts remembered per candidate address
MAX_CANDIDATES = 32  # candidate addresses remembered at once (past it, only the newest is kept)


class ExternalIpVotes:
    """Votes for our external address; ``vote`` says when one has won."""

    def __init__(self, needed: int = EXTERNAL_IP_VOTES) -> None:
        self.needed = needed
        self._votes: dict[str, set[str]] = {}  # our address as seen -> hosts that saw it

    def vote(self, ip: str, voter_host: str) -> bool:
        """``voter_host`` saw us at ``ip``: whether ``ip`` now has enough distinct voters."""
        voters = self._votes.setdefault(ip, set())
        if len(voters) < MAX_VOTERS:
            voters.add(voter_host)  # one vote per host: a host can answer from many ports
        if len(self._votes) > MAX_CANDIDATES:
            self._votes = {ip: voters}
        return len(voters) >= self.needed
