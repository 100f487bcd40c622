"""The archive a Streamlit process serves: opened once with its model, moved to the newest commit on each run."""

from __future__ import annotations

import os

import streamlit as st

from indexer import config
from indexer.answers.llm import Generator
from indexer.errors import IndexNotFound, NewsarchiveError
from indexer.retrieval.archive import Archive, Served
from search_app import plain


@st.cache_resource(show_spinner="Loading the index and the model…")
def open_archive(directory: str, model: str | None) -> Served:
    """One archive, and one model, per process; each question then sees the newest commit, the model kept."""
    served = Served(directory, model)
    served.latest().embedder.embed_queries(["warm up"])  # load the model now rather than on the first question
    return served


def opened() -> Archive:
    """The served archive at its newest commit; a missing or unreadable index stops the page with what to do."""
    directory = str(config.index_dir())
    try:
        model = os.environ.get(config.MODEL_ENV)  # as for the CLI: a different model than the index's is an error
        return open_archive(directory, model).latest()
    except IndexNotFound:
        plain.error(f"There is no index in {directory}/ yet. Build it with make index, or newsarchive index seeds/.")
        st.stop()
    except NewsarchiveError as error:
        plain.error(str(error))
        st.stop()


def generator_configured() -> Generator | None:
    """The language model answers are written with ($NEWSARCHIVE_LLM_URL, ..._MODEL, ..._API_KEY), if any; a
    setting that is wrong is shown once in the sidebar, and answers stay quoted."""
    try:
        return Generator.configured()
    except NewsarchiveError as error:
        st.sidebar.warning(f"No language model: {error}")
        return None
