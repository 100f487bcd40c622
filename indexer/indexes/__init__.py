"""What a segment is searched by: its vectors (FAISS) and its words (BM25)."""
