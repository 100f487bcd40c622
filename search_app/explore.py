"""The Explore view: an exact query counted over time, its top sources and languages, and its articles.

UI only: the counts come from :mod:`indexer.exact.counts`, as for ``newsarchive coverage`` and ``search --match``.
The query, the period, the sources and the chosen period are in the page's URL, so a link reproduces the view.
"""

from __future__ import annotations

import html
from datetime import date, timedelta

import altair as alt
import pyarrow as pa
import streamlit as st

from indexer.exact import export
from indexer.exact.counts import PERIODS, coverage, facets, matches
from indexer.exact.query import with_filters
from indexer.storage import Snapshot
from search_app.plain import failures_shown

SHOWN = 50  # matching articles listed at once
ALL = "All periods"


def _from_url(key: str, name: str, default: str | list[str]) -> None:
    """Start a widget from the page's URL the first time the view runs in a session."""
    if key not in st.session_state:
        st.session_state[key] = (
            st.query_params.get_all(name) if isinstance(default, list) else st.query_params.get(name, default)
        )


def period_query(start: date, by: str) -> str:
    """The ``published:`` field of the period starting on ``start``."""
    if by == "day":
        return f"published:{start.isoformat()}"
    if by == "week":
        return f"published:{start.isoformat()}..{(start + timedelta(days=6)).isoformat()}"
    if by == "month":
        return f"published:{start:%Y-%m}"
    return f"published:{start:%Y}"


def _chosen_bar() -> None:
    """A click on a bar of the chart picks its period below."""
    picked = st.session_state.explore_chart.selection.get("picked") or []
    if picked:
        st.session_state.explore_period = str(picked[0]["period"])[:10]


def chart(table: pa.Table, by: str) -> alt.LayerChart:
    data = table.to_pandas()
    data["period"] = data["period"].astype(str)
    picked = alt.selection_point(name="picked", fields=["period"])
    base = alt.Chart(data).encode(x=alt.X("period:O", title=f"{by} from", axis=alt.Axis(labelAngle=-45)))
    bars = base.mark_bar().encode(
        y=alt.Y("matching:Q", title="matching articles", axis=alt.Axis(format="d", tickMinStep=1)),
        opacity=alt.condition(picked, alt.value(1.0), alt.value(0.45)),
        tooltip=["period", "matching", "total", alt.Tooltip("share:Q", format=".1%")],
    )
    share = base.mark_line(point=True, color="#a16207").encode(
        y=alt.Y("share:Q", title="share of all articles", axis=alt.Axis(format="%"))
    )
    return alt.layer(bars.add_params(picked), share).resolve_scale(y="independent")


def show(snapshot: Snapshot, sources: list[str]) -> None:
    """The Explore view over ``snapshot``; ``sources`` are the archive's, for the source filter."""
    _from_url("explore_q", "q", "")
    _from_url("explore_by", "by", "month")
    _from_url("explore_sources", "source", [])
    _from_url("explore_period", "period", ALL)
    if st.session_state.explore_by not in PERIODS:
        st.session_state.explore_by = "month"
    st.session_state.explore_sources = [s for s in st.session_state.explore_sources if s in sources]

    query = st.text_input(
        "Exact query",
        key="explore_q",
        placeholder='drone* AND ("black sea" OR "mar nero") -exercise',
        help='Words (stemmed), "phrases", drone*, AND (the default), OR, NOT or -word, parentheses, and '
        "source:, language:, author:, title:, published:2025-01-01..2025-03-31.",
    )
    by_column, sources_column = st.columns([1, 3])
    by = by_column.selectbox("Per", PERIODS, key="explore_by")
    chosen_sources = sources_column.multiselect("Sources", sources, key="explore_sources", placeholder="All sources")
    if not query.strip():
        st.query_params.clear()
        st.info("Type an exact query to count the articles it matches over time.")
        return
    with failures_shown("Counting this query"):
        counted_view(snapshot, query, by, chosen_sources)


def counted_view(snapshot: Snapshot, query: str, by: str, chosen_sources: list[str]) -> None:
    """What the query matches: its counts over time, its top sources and languages, its articles, the downloads."""
    table = coverage(snapshot, query, by=by, sources=chosen_sources)
    counted = facets(snapshot, with_filters(query, tuple(chosen_sources)))
    periods = [ALL, *(str(period) for period in table.column("period").to_pylist())]
    if st.session_state.explore_period not in periods:
        st.session_state.explore_period = ALL
    matching = sum(table.column("matching").to_pylist())
    st.markdown(f"**{matching:,}** dated articles match, of **{sum(table.column('total').to_pylist()):,}**.")
    if table.num_rows:
        st.altair_chart(chart(table, by), key="explore_chart", on_select=_chosen_bar, width="stretch")
    tops = st.columns(2)
    for column, name in zip(tops, ("source", "language")):
        facet = counted[name].to_pylist()
        column.markdown(f"**Top {name}s**")
        column.dataframe(
            {name: [row["value"] or "—" for row in facet], "articles": [row["count"] for row in facet]},
            hide_index=True,
            width="stretch",
        )
    period = st.selectbox("Articles of", periods, key="explore_period")
    st.query_params.from_dict(
        {"q": query, "by": by, "source": chosen_sources, **({"period": period} if period != ALL else {})}
    )
    listed_query = with_filters(query, tuple(chosen_sources))
    if period != ALL:
        listed_query = f"({listed_query}) {period_query(date.fromisoformat(period), by)}"
    found = matches(snapshot, listed_query)
    show_matches(found)
    downloads(snapshot, listed_query, found, query, table)


def show_matches(found: pa.Table) -> None:
    rows = found.to_pylist()
    st.markdown(f"**{len(rows):,}** {'article' if len(rows) == 1 else 'articles'}, newest first")
    for row in rows[:SHOWN]:
        day = row["published"].date().isoformat() if row["published"] else "undated"
        meta = " · ".join(html.escape(str(part)) for part in (row["source"], day, row["language"]) if part)
        with st.container(border=True):
            st.html(
                f"<div class='na-meta'><b>{html.escape(row['title'] or row['article_id'])}</b> · {meta}</div>"
                f"<div class='na-passage'>{html.escape(row['text'] or '')}</div>"
            )
    if len(rows) > SHOWN:
        st.caption(f"The first {SHOWN}; download them all below.")


def downloads(snapshot: Snapshot, listed_query: str, found: pa.Table, query: str, table: pa.Table) -> None:
    matches_about = export.about("newsarchive search --match", listed_query, snapshot.directory, snapshot.commit)
    coverage_about = export.about("newsarchive coverage", query, snapshot.directory, snapshot.commit)
    columns = st.columns(4)
    columns[0].download_button(
        "Articles (CSV)", export.csv_bytes(found), "matches.csv", "text/csv", key="dl_matches_csv"
    )
    columns[1].download_button(
        "Articles (Parquet)", export.parquet_bytes(found, matches_about), "matches.parquet", key="dl_matches_parquet"
    )
    columns[2].download_button(
        "Coverage (CSV)", export.csv_bytes(table), "coverage.csv", "text/csv", key="dl_coverage_csv"
    )
    columns[3].download_button(
        "Coverage (Parquet)", export.parquet_bytes(table, coverage_about), "coverage.parquet", key="dl_coverage_parquet"
    )
