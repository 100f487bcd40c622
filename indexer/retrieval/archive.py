"""An index opened for reading: one commit's snapshot, and the model that built it."""

from __future__ import annotations

import threading
from pathlib import Path

from indexer import config
from indexer.errors import IndexMismatch
from indexer.models.embedder import Embedder, load_embedder
from indexer.storage import Manifest, Snapshot

_MODEL_FIELDS = ("model", "query_prompt", "passage_prompt", "precision")  # a rebuild may change them


class Archive(Snapshot):
    """A read-only view of one commit of an index directory (:class:`indexer.storage.Snapshot`), with its model.

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
        super().__init__(config.index_dir(directory))
        expected = embedder.name if embedder else model
        if expected and expected != self.manifest.model:
            raise IndexMismatch(
                f"{self.directory}/ was built with model {self.manifest.model!r}, not {expected!r}: search it without "
                f"--model, or rebuild it with `newsarchive index --rebuild --model {expected} ...`"
            )
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The index's model, with the prompts it was built with; loaded once per process."""
        if self._embedder is None:
            m = self.manifest
            self._embedder = load_embedder(m.model, m.query_prompt, m.passage_prompt, m.precision)
        return self._embedder

    def latest(self) -> Archive:
        """This archive if it is still the current commit, else the current one, with the same model loaded.

        Segments both commits share are not loaded again, so following a growing archive costs little.
        """
        current = Manifest.load(self.directory)
        if current.commit == self.manifest.commit:
            return self
        same_model = all(getattr(current, f) == getattr(self.manifest, f) for f in _MODEL_FIELDS)
        return Archive(self.directory, embedder=self._embedder if same_model else None)

    def __enter__(self) -> Archive:
        return self


class Served:
    """The archive a long-running process serves (the app, ``newsarchive serve`` and ``mcp``): opened on first use,
    then moved to the index's newest commit each time a request asks, the model kept; freed memory is kept for the
    next search (:mod:`indexer.retrieval.memory`).

    Each request holds the :class:`Archive` it got, so it sees one commit whole while newer ones are committed.
    Requests may run in threads: reads go through DuckDB cursors, and one thread at a time opens a new commit.

    Raises (from :meth:`latest`):
        IndexNotFound: There is no index yet; a later request opens it once it is built.
    """

    def __init__(self, directory: str | Path | None = None, model: str | None = None, embedder: Embedder | None = None):
        from indexer.retrieval.memory import keep_freed_memory

        keep_freed_memory()  # this process answers question after question
        self.directory, self._model, self._embedder = config.index_dir(directory), model, embedder
        self.archive: Archive | None = None
        self._lock = threading.Lock()

    def latest(self) -> Archive:
        """The archive at the newest commit."""
        with self._lock:
            if self.archive is None:
                self.archive = Archive(self.directory, model=self._model, embedder=self._embedder)
            else:
                self.archive = self.archive.latest()
            return self.archive
