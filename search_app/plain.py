"""What a page shows of data -- a query, an alert's name, an error's message -- is text, never Markdown or HTML.

Streamlit reads Markdown in ``st.error``, ``st.info``, ``st.caption``, ``st.markdown`` and in every label: a
query from the URL such as ``[here](https://evil.example)`` would become a link there, and ``![](...)`` an image
fetched from anywhere. The pages show such strings as escaped HTML (:func:`error`, and ``html.escape`` where they
build cards); only labels, which can only be Markdown, get it escaped (:func:`label`). A failure the code did not
expect is one short line in the page, its traceback in the server's log (:func:`failures_shown`).
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
from collections.abc import Iterator

import streamlit as st

from indexer.errors import NewsarchiveError

log = logging.getLogger(__name__)
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character, which Markdown may read


def error(message: str) -> None:
    """An error box whose message is text, whatever characters it holds."""
    st.html(f'<div class="na-error" role="alert">{html.escape(message)}</div>')


def label(text: str) -> str:
    """``text`` for a widget's or an expander's label, which Streamlit reads as Markdown: shown as it is.

    CommonMark shows any backslash-escaped ASCII punctuation as itself, so no link, image, emphasis, code or
    Streamlit directive (``:red[...]``, ``$...$``) can start; line breaks become spaces.
    """
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.split()))


@contextlib.contextmanager
def failures_shown(what: str) -> Iterator[None]:
    """Run a part of a page that depends on a query: a failure ends that part, with one line of text saying so.

    An expected failure (a malformed query, a missing index) is shown with its message; any other is logged
    here with its traceback, and the page says only that ``what`` failed, for a traceback names files and code.
    Streamlit's own stop and rerun are not exceptions of this kind, and pass.
    """
    try:
        yield
    except NewsarchiveError as failure:
        error(str(failure))
    except Exception:
        log.exception("%s failed", what)
        error(f"{what} failed because of an unexpected error; the server's log has the details.")
