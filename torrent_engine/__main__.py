"""``python -m torrent_engine``: the command line."""
import sys

from .cli import main

sys.exit(main())
