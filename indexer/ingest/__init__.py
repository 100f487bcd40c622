"""Building and updating an archive: read, split, embed, store; in this process or on a Ray cluster."""
