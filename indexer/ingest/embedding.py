"""From articles to what a segment stores: their passages, the languages of both, and the passages' vectors.

The one step a local run (:mod:`indexer.ingest.index`) and Ray's workers (:mod:`indexer.ingest.cluster`) both take."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from indexer import workers
from indexer.models.embedder import Embedder
from indexer.reading.article import Article
from indexer.text.language import articles_languages
from indexer.text.passages import Passage, embedding_text, split_article

ARTICLES_TOLD = 128  # articles whose languages a worker tells at once: their passages are detected together


def embed_articles(
    articles: list[Article], embedder: Embedder, max_tokens: int, advance: Callable[[float], None] | None = None
) -> tuple[list[str | None], list[Passage], np.ndarray]:
    """Split articles into passages, tell each article's and passage's language, and embed the passages with
    title and heading. Returns the articles' languages, the passages and their vectors; ``advance`` hears of the
    share embedded."""
    if not articles:
        return [], [], np.zeros((0, embedder.dimension), np.float32)
    pieces = [split_article(article, embedder.count_tokens, max_tokens) for article in articles]
    asked = [(f"{a.title}\n{a.text}", [p.text for p in split], a.language) for a, split in zip(articles, pieces)]
    # Languages are told in the workers while the passages are embedded here: an embedding does not need them.
    told = [
        workers.submit(articles_languages, (asked[start : start + ARTICLES_TOLD],), sum(map(len, pieces)))
        for start in range(0, len(asked), ARTICLES_TOLD)
    ]
    titles = {a.article_id: a.title for a in articles}
    texts = [embedding_text(titles[p.article_id], p.heading, p.text) for split in pieces for p in split]
    embedded = 0

    def embedded_some(count: int) -> None:
        nonlocal embedded
        embedded += count
        if advance:
            advance(embedded / len(texts))

    vectors = embedder.embed_passages(texts, progress=embedded_some)
    found = [each for batch in told for each in batch()]
    passages = [
        dataclasses.replace(p, language=language)
        for split, (_, by_passage) in zip(pieces, found)
        for p, language in zip(split, by_passage)
    ]
    return [language for language, _ in found], passages, vectors
