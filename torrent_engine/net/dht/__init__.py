"""Kademlia DHT (BEP 5) with BEP 32/33/42/43/44/51: sans-I/O cores and one async node."""
