"""The queue and its rounds, the share limits, client leases, the jobs the timers walk, dormant seeds."""
