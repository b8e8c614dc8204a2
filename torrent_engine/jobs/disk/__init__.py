"""A job's data on disk: save paths, the incomplete folder, moving and renaming files."""
