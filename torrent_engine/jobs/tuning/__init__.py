"""Run-time settings: their checks, alt speeds, peer limits, binding, proxy, blocklist, groups, programs."""
