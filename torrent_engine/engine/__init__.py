"""The engine of many torrents: the add request and its resolver, the resources every session
borrows (listen socket, DHT, bandwidth, descriptors), the ``TorrentManager`` registry of running
sessions, the event loop, and the background download for programs that are not async."""
