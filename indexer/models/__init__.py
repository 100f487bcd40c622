"""Embedding models: turning text into vectors offline by default, on the fastest runtime of this CPU."""
