"""Exact matching and counting: the query language, the articles it matches, coverage over time and facets."""
