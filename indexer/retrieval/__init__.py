"""Searching an archive: hybrid ranking, relevance, retrieval figures, search inside SQL."""
