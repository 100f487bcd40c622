"""newsarchive's web app: a question in, an answer with numbered citations out.

Run it with ``make app``, or ``streamlit run search_app/streamlit_app.py``. It is UI only: answers come from
:func:`indexer.answers.quotes.ask`, or with a language model configured ($NEWSARCHIVE_LLM_URL) from
:func:`indexer.answers.generate.ask`, the same functions behind ``newsarchive ask``.
"""

from __future__ import annotations

import html
import json
import re

import streamlit as st

from indexer.answers import generate
from indexer.answers.llm import Generator, GeneratorFailed
from indexer.answers.quotes import Answer, Source, ask
from indexer.reading.web import is_url
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import Filters, Hit
from search_app import plain
from search_app.serving import generator_configured, opened

EXAMPLES = (
    "What happened to the MQ-9 drone?",
    "Quanti soldati ucraini sono stati uccisi?",
    "Where did the talks take place?",
)
STYLE = """
<style>
.na-answer { font-size: 1.15rem; line-height: 1.65; padding: 1rem 1.25rem; border-radius: 0.6rem;
             background: rgba(250, 204, 21, 0.10); border-left: 4px solid #eab308; margin: 0.25rem 0 1rem; }
.na-answer sup, .na-card sup { font-weight: 700; color: #a16207; }
.na-meta { font-size: 0.85rem; color: rgba(120, 120, 120, 1); margin-bottom: 0.35rem; }
.na-meta b { color: inherit; }
.na-also { margin-top: -0.2rem; }
.na-day { font-weight: 600; margin: 0.75rem 0 0.25rem; border-bottom: 1px solid rgba(128, 128, 128, 0.3); }
.na-passage { line-height: 1.6; }
.na-passage mark, .na-article mark { background: rgba(250, 204, 21, 0.45); padding: 0 0.1em; border-radius: 0.2em; }
.na-article p { margin: 0 0 0.7rem; }
.na-article .na-cited { background: rgba(250, 204, 21, 0.12); }
.na-article h4 { margin: 1rem 0 0.4rem; font-size: 1rem; }
.na-writing { color: rgba(120, 120, 120, 1); font-style: italic; padding: 0.5rem 1.25rem; }
.na-removed { font-size: 0.9rem; margin: 0.2rem 0; }
.na-error { padding: 0.9rem 1rem; border-radius: 0.5rem; background: rgba(255, 43, 43, 0.09);
            border-left: 4px solid rgb(255, 75, 75); white-space: pre-wrap; overflow-wrap: anywhere; }
</style>
"""


def marked(text: str, spans: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> str:
    """``text`` as escaped HTML with ``<mark>`` around ``spans``: article text never reaches the page as HTML."""
    pieces, last = [], 0
    for start, end in sorted(spans):
        pieces += [html.escape(text[last:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        last = end
    pieces.append(html.escape(text[last:]))
    return "".join(pieces)


def meta_line(number: int | None, hit: Hit) -> str:
    title, *rest = hit.place(title_chars=90)
    parts = [f'<b title="{html.escape(hit.title, quote=True)}">{html.escape(title)}</b>']
    parts += [html.escape(part) for part in rest]
    if hit.url and is_url(hit.url):
        parts.append(f'<a href="{html.escape(hit.url, quote=True)}" target="_blank" rel="noopener">link</a>')
    prefix = f"<sup>[{number}]</sup> " if number else ""
    return f'<div class="na-meta">{prefix}{" · ".join(parts)}</div>' + also_in_line(hit)


def also_in_line(hit: Hit) -> str:
    """The story's other articles -- the same report in other outlets or languages -- linked where they have a URL."""
    if not hit.also_in:
        return ""
    items = []
    for duplicate, label in zip(hit.also_in, hit.elsewhere()):
        text = html.escape(label)
        if duplicate.url and is_url(duplicate.url):
            text = f'<a href="{html.escape(duplicate.url, quote=True)}" target="_blank" rel="noopener">{text}</a>'
        items.append(f'<span title="{html.escape(duplicate.title, quote=True)}">{text}</span>')
    return f'<div class="na-meta na-also">Also in: {"; ".join(items)}</div>'


def article_html(archive: Archive, hit: Hit, highlights: tuple[tuple[int, int], ...]) -> str:
    """The whole article, its headings and paragraphs, with the cited passage shaded and the answer marked."""
    article = archive.store.article(hit.article_id)
    if article is None:
        return "<p>This article is no longer in the index.</p>"
    text = article["body"]
    absolute = [(hit.char_start + start, hit.char_start + end) for start, end in highlights]
    blocks, heading = [], None
    for passage_heading, start, end in archive.store.passage_spans(hit.article_id):
        if passage_heading and passage_heading != heading:
            blocks.append(f"<h4>{html.escape(passage_heading)}</h4>")
        heading = passage_heading
        spans = [(max(s, start) - start, min(e, end) - start) for s, e in absolute if s < end and e > start]
        cited = ' class="na-cited"' if start < hit.char_end and end > hit.char_start else ""
        blocks.append(f"<p{cited}>{marked(text[start:end], spans)}</p>")
    return f'<div class="na-article">{"".join(blocks)}</div>'


def show_answer(archive: Archive, answer: Answer, generator: Generator | None = None) -> None:
    if generator is not None and answer.fallback and answer.found:
        st.info(f"Quoted answer: {answer.fallback}.")
    if not answer.found:
        st.info(
            "Nothing in the archive answers this closely enough. Try other words, or another language; "
            "the closest passages are below."
        )
    else:
        sentences = " ".join(f"{html.escape(s.text)} <sup>{s.markers()}</sup>" for s in answer.sentences)
        st.html(f'<div class="na-answer">{sentences}</div>')
        if answer.generated:
            st.caption(
                f"Written by {plain.label(generator.model)} in {answer.generator['seconds']:.1f} s; "
                "every sentence quotes its sources, highlighted below."
            )
        show_removed(answer)
        heading, order = st.columns([1, 1], vertical_alignment="bottom")
        heading.markdown("**Sources**")
        timeline = order.toggle("On a timeline", key="timeline", help="Order the sources by publication date.")
        if timeline:
            show_timeline(archive, answer.sources)
        else:
            for source in answer.sources:
                show_source(archive, source)
    cited = {source.hit.passage_id for source in answer.sources}
    others = [hit for hit in answer.retrieved if hit.passage_id not in cited]
    if others:
        with st.expander(
            f"{'More' if answer.found else 'Closest'} passages ({len(others)})", expanded=not answer.found
        ):
            for hit in others:
                st.html(meta_line(None, hit) + f'<div class="na-passage">{marked(hit.text, [])}</div>')
    timings = answer.timings
    st.caption(
        f"Retrieved in {timings.get('retrieve', 0) * 1000:.0f} ms · "
        f"answered in {timings.get('answer', 0) * 1000:.0f} ms"
    )


def show_removed(answer: Answer) -> None:
    """How many sentences the verifier removed, with what and why in an expander."""
    removed = answer.removed_sentences
    if not answer.removed:
        return
    count = len(removed)
    label = (
        f"{count} {'sentence' if count == 1 else 'sentences'} removed: not found in their sources"
        if count
        else f"{len(answer.removed)} citation{'s' if len(answer.removed) > 1 else ''} removed"
    )
    with st.expander(label):
        for rejected in answer.removed:
            cited = f" (its citation of source {rejected.citation[0]})" if rejected.citation else ""
            st.html(
                f'<div class="na-removed">“{html.escape(rejected.sentence)}”{html.escape(cited)}: '
                f"{html.escape(rejected.reason)}</div>"
            )


def show_timeline(archive: Archive, sources: tuple[Source, ...]) -> None:
    """The sources by publication date, earliest first, under a heading per day; undated ones last."""
    ordered = sorted(sources, key=lambda s: (s.hit.published is None, s.hit.published or 0, s.number))
    day = None
    for source in ordered:
        published = source.hit.published
        label = published.strftime("%A %-d %B %Y") if published else "Undated"
        if label != day:
            st.html(f'<div class="na-day">{html.escape(label)}</div>')
            day = label
        show_source(archive, source)


def show_source(archive: Archive, source: Source) -> None:
    with st.container(border=True):
        st.html(
            meta_line(source.number, source.hit)
            + f'<div class="na-passage">{marked(source.hit.text, source.highlights)}</div>'
        )
        show_translation(source)
        with st.expander("Read the article"):
            st.html(article_html(archive, source.hit, source.highlights))


def show_translation(source: Source) -> None:
    """A "Translate" button under a passage in another language than the generated answer's; its machine
    translation, once asked for, stays for the session."""
    generator, language = st.session_state.get("generator"), st.session_state.get("answer_language")
    if generator is None or not source.in_another_language(language):
        return
    key = (source.hit.passage_id, language, generator.describe())
    translations = st.session_state.setdefault("translations", {})
    if key not in translations:
        if not st.button("Translate", key=f"translate-{source.hit.passage_id}"):
            return
        try:
            with st.spinner("Translating…"):
                translations[key] = generate.translate(generator, source.hit.text, language)
        except GeneratorFailed as failure:
            plain.error(f"Not translated: {failure.reason}")
            return
    label = f"Machine translation ({generator.model}), from {source.hit.language}"
    st.html(
        f'<div class="na-meta">{html.escape(label)}</div><div class="na-passage">{html.escape(translations[key])}</div>'
    )


ALERT_MATCHES = 5  # latest matches shown per alert
MODE_LABELS = {"hybrid": "Meaning and words", "dense": "Meaning only", "lexical": "Words only"}


def sidebar(archive: Archive) -> tuple[Filters, str]:
    """The archive's figures, the search mode, and filters where the archive has metadata to filter on."""
    manifest = archive.manifest
    st.sidebar.header("Archive")
    st.sidebar.markdown(f"**{manifest.articles}** articles · **{manifest.passages}** passages")
    st.sidebar.html(
        f"<div class='na-meta'>Model: <code>{html.escape(manifest.model)}</code><br>"
        f"Built: {html.escape(manifest.built_at.replace('T', ' '))}</div>"
    )
    generator = st.session_state.get("generator")
    answers = f"written by <code>{html.escape(generator.describe())}</code>" if generator else "quoted answers only"
    st.sidebar.html(f"<div class='na-meta' id='na-generator'>Answers: {answers}</div>")
    mode = st.sidebar.radio(
        "Search by",
        list(MODE_LABELS),
        format_func=MODE_LABELS.get,
        key="mode",
        help="Words count in full in the question's language; across languages, only names, numbers and codes.",
    )
    facets = archive.store.facets()
    if not (facets["sources"] or facets["languages"] or facets["dates"]):
        return Filters(), mode
    st.sidebar.header("Filters")
    sources = st.sidebar.multiselect("Source", facets["sources"]) if facets["sources"] else []
    languages = st.sidebar.multiselect("Language", facets["languages"]) if facets["languages"] else []
    since = until = None
    if facets["dates"]:
        first, last = facets["dates"]
        chosen = st.sidebar.date_input("Published", value=(first, last), min_value=first, max_value=last)
        if isinstance(chosen, tuple) and len(chosen) == 2 and tuple(chosen) != (first, last):
            since, until = chosen
    return Filters(tuple(sources), tuple(languages), since, until), mode


def show_alerts(archive: Archive) -> None:
    """The saved alerts (``newsarchive alerts add``) in the sidebar, each with its latest matches and their passages."""
    from indexer.live.alerts import listed, matches_of

    found = listed(archive.directory)
    if not found:
        return
    st.sidebar.header("Alerts")
    for alert, count in found:
        with st.sidebar.expander(plain.label(f"{alert.name} · {count} {'match' if count == 1 else 'matches'}")):
            st.html(f"<div class='na-meta'>Watching for: {html.escape(alert.query)}</div>")
            for match in matches_of(alert.name, archive.directory)[:ALERT_MATCHES]:
                title = html.escape(match.title)
                link = f"<a href='{html.escape(match.url)}'>{title}</a>" if match.url and is_url(match.url) else title
                when = f"{match.matched_at:%Y-%m-%d %H:%M}"
                source = f" · {html.escape(match.source)}" if match.source else ""
                st.html(
                    f"<div class='na-meta'><b>{link}</b>{source} · {when}</div>"
                    f"<div class='na-passage'>{html.escape(match.passage)}</div>"
                )


def use_example() -> None:
    """An example pill fills the question box and asks it; the pill itself does not stay selected."""
    if st.session_state.example:
        st.session_state.question = st.session_state.example
    st.session_state.example = None


def ask_page() -> None:
    st.title("newsarchive")
    st.caption("Ask the news archive in English, Italian or another language: every answer cites its passages.")
    archive = opened()
    st.session_state.generator = generator_configured()
    filters, mode = sidebar(archive)
    with plain.failures_shown("Showing the alerts"):
        show_alerts(archive)

    with st.form("ask", border=False):
        question = st.text_input("Question", key="question", placeholder=EXAMPLES[0])
        submitted = st.form_submit_button("Ask", type="primary")
    st.pills("Examples", EXAMPLES, key="example", on_change=use_example, label_visibility="collapsed")

    if not (question or "").strip():
        if submitted:
            st.warning("Type a question first, or pick one of the examples.")
        return
    generator = st.session_state.get("generator")
    with plain.failures_shown("Answering this question"):
        show_answer(archive, answered(archive, question, filters, mode, generator), generator)


def answered(archive: Archive, question: str, filters: Filters, mode: str, generator: Generator | None) -> Answer:
    """The answer, kept for the session: a click (Translate, the timeline) runs the page again, and must not
    ask the model again. A generated answer is shown as the model writes it, then replaced by the verified one."""
    key = (question, repr(filters), mode, archive.manifest.commit, generator.describe() if generator else None)
    kept = st.session_state.setdefault("answers", {})
    if key not in kept:
        if generator is None:
            kept[key] = ask(archive, question, filters=filters, mode=mode)
        else:
            writing = st.empty()
            kept[key] = generate.ask(
                archive,
                question,
                generator,
                filters=filters,
                mode=mode,
                on_text=lambda text: writing.html(f'<div class="na-writing">{html.escape(so_far(text))}</div>'),
            )
            writing.empty()
        while len(kept) > 20:  # the latest questions
            kept.pop(next(iter(kept)))
    st.session_state.answer_language = kept[key].language
    return kept[key]


_TEXT_FIELD = re.compile(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)')


def so_far(reply: str) -> str:
    """The sentences of a reply still being written (JSON, cut anywhere), for the page to show them coming."""
    sentences = []
    for found in _TEXT_FIELD.finditer(reply):
        raw = found.group(1)
        try:
            sentences.append(json.loads(f'"{raw}"'))
        except ValueError:
            sentences.append(raw.replace('\\"', '"'))
    return " ".join(sentences) or "Writing the answer…"


def main() -> None:
    st.set_page_config(page_title="newsarchive", page_icon="🗞️", layout="centered")
    st.html(STYLE)
    st.navigation(
        [
            st.Page(ask_page, title="Ask", url_path="ask", default=True),
            st.Page("explore_view.py", title="Explore", url_path="explore"),
        ]
    ).run()


main()
