"""An index opened for reading: its manifest, DuckDB file, FAISS and lexical indexes, and the model that built it."""

from __future__ import annotations

import functools
from pathlib import Path

from . import config, layout
from .embedder import Embedder, load_embedder
from .errors import IndexMismatch, IndexNotFound
from .lexical import LexicalIndex
from .manifest import DATABASE, LEXICAL, VECTORS, Manifest
from .store import Store, connect
from .vectors import VectorIndex

# DuckDB's block cache in a search process: enough for the passages a search fetches and for SQL over a large
# archive (DuckDB spills what does not fit), not the 80% of the machine it takes by default.
SEARCH_CACHE = "512MB"


class Archive:
    """A read-only view of one index directory.

    The model is loaded on first use, so opening an archive to run SQL or show ``info`` stays fast.

    Args:
        directory: The index directory; ``None`` means ``$NEWSARCHIVE_INDEX_DIR`` or ``./archive``.
        model: The model the caller expects; opening an index built with another one is an error.
        embedder: An already-loaded model to use instead of loading the manifest's (tests pass small fakes).

    Example:
        >>> archive = Archive("archive")
        >>> [hit.title for hit in search(archive, "what happened to the MQ-9 drone", k=3)]
    """

    def __init__(
        self, directory: str | Path | None = None, *, model: str | None = None, embedder: Embedder | None = None
    ):
        self.directory = config.index_dir(directory)
        # Resolved once: every file below comes from this one generation, whatever a writer publishes meanwhile.
        self.generation = layout.require_current(self.directory)
        self.manifest = Manifest.load(self.generation)
        for name in (DATABASE, VECTORS, LEXICAL):
            if not (self.generation / name).exists():
                raise IndexNotFound(
                    f"{self.directory / name} is missing: rebuild with `newsarchive index --rebuild ...`"
                )
        expected = embedder.name if embedder else model
        if expected and expected != self.manifest.model:
            raise IndexMismatch(
                f"{self.directory}/ was built with model {self.manifest.model!r}, not {expected!r}: search it without "
                f"--model, or rebuild it with `newsarchive index --rebuild --model {expected} ...`"
            )
        self._embedder = embedder
        self.store = Store(connect(self.generation / DATABASE, read_only=True, memory_limit=SEARCH_CACHE))
        self.vectors = VectorIndex.load(self.generation / VECTORS)
        self.lexical = LexicalIndex.load(self.generation / LEXICAL)

    @functools.cached_property
    def stories(self) -> dict[str, tuple[str, ...]]:
        """story_id -> article ids of the stories told by several articles, read once: searches look them up."""
        return self.store.stories()

    @property
    def embedder(self) -> Embedder:
        """The index's model, with the prompts it was built with; loaded once per process."""
        if self._embedder is None:
            m = self.manifest
            self._embedder = load_embedder(m.model, m.query_prompt, m.passage_prompt, m.precision)
        return self._embedder

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
