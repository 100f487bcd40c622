"""Answers to questions, quoted from the archive's passages with their citations."""
