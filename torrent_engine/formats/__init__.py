"""BitTorrent's data formats: bencoding, the .torrent file (read, and made from files), magnet
links, bitfields, compact addresses, merkle trees and the piece space. Pure, but for the hashing
of files ``metainfo.create`` does in worker threads."""
