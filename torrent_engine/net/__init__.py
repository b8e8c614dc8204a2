"""The protocols on the wire, each a sans-I/O core under a thin async shell: the peer wire, uTP,
trackers, the DHT, LSD, web seeds, port mapping, proxies, the one HTTP client, and how sockets
are bound to an interface."""
