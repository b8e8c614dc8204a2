"""Adding jobs: the add and its options, checks of data before a start, watched folders, metadata."""
