"""What paas keeps on disk: the SQLite store and its models, the home folder, locks, scratch space, scope and API tokens."""
