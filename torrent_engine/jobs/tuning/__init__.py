"""The run-time settings and what applies them: alternative speeds, peer limits, binding, proxy, blocklist."""
