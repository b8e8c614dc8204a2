"""Adding jobs: the add and its options, checks of input and of data on disk, path claims, watched folders."""
