"""Saved searches that watch for new articles: alerts, and the articles each one matched (``alert_matches``).

After a commit that adds or changes articles, each alert is run on the articles indexed since it last ran -- never
on the whole archive again -- and each article it matches is recorded once, with the passage that matched, however
often it is updated or a feed repeats it.

What counts as a match, by the alert's mode:

- ``dense`` (the default): a passage of the article is closer in meaning to the query than the query is to
  everyday news on other subjects, by at least ``threshold`` -- the cosine similarity minus the query's mean
  similarity to its five closest neutral sentences (:mod:`indexer.retrieval.relevance`, the rule ``ask`` answers by). It
  works across languages, as dense search does.
- ``lexical``: a passage holds every word of the query (stemmed, as the lexical index reads them); ``threshold``
  is not used.

Each alert runs, writes its feed file and posts to its webhook on its own: a failure in one is logged as one line
naming it, and the others go on. Webhooks are posted to at the same time, each within its own time budget
(:func:`indexer.reading.fetching.post_json`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer import config
from indexer.errors import NewsarchiveError, NotFound
from indexer.live import atom
from indexer.models.embedder import Embedder
from indexer.storage import Manifest, Writer, tables
from indexer.terminal import inert

log = logging.getLogger(__name__)
MODES = ("dense", "lexical")
THRESHOLD = 0.05  # the dense margin: calibrated on tests/fixtures/alerts (bench/alerts.py, docs/benchmarks.md "Alerts")
NAME_RULE = "1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
_NAME = re.compile(r"[\w-][\w.-]{0,63}")
WEBHOOKS_AT_ONCE = 8


@dataclass(frozen=True)
class Alert:
    """One saved search, a row of the ``alerts`` table (:data:`indexer.storage.tables.SCHEMAS`)."""

    name: str
    query: str
    mode: str
    threshold: float
    created_at: datetime
    checked_until: datetime
    sources: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    webhook: str | None = None


@dataclass(frozen=True)
class Match:
    """An article an alert matched, with the passage that matched (a row of ``alert_matches``)."""

    alert: str
    article_id: str
    passage_id: int
    title: str
    source: str | None
    url: str | None
    published: datetime | None
    passage: str
    score: float
    margin: float
    matched_at: datetime


def to_table(rows: list, name: str) -> pa.Table:
    """Alerts or matches as their table (``name``)."""
    from indexer.storage.tables import SCHEMAS

    return pa.Table.from_pylist([dataclasses.asdict(row) for row in rows], schema=SCHEMAS[name])


def saved(writer: Writer) -> list[Alert]:
    return [Alert(**row) for row in writer.table("alerts").to_pylist()]


def valid_name(name: str) -> bool:
    """Whether ``name`` follows :data:`NAME_RULE`: safe as a file name, in a URL and on a terminal."""
    return bool(_NAME.fullmatch(name))


def add_alert(
    name: str,
    query: str,
    directory: str | Path | None = None,
    mode: str = "dense",
    sources: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
    threshold: float | None = None,
    webhook: str | None = None,
    now: datetime | None = None,
) -> Alert:
    """Save an alert (a commit); it watches the articles indexed from now on, and ``webhook`` (an http(s) URL)
    gets its new matches as a JSON POST.

    Raises:
        NewsarchiveError: The name is taken or not :data:`NAME_RULE`, the query empty, the mode unknown or the
            webhook not a URL.
    """
    from indexer.ingest.index import open_writer
    from indexer.reading.web import is_url

    if webhook is not None and not is_url(webhook):
        raise NewsarchiveError(f"webhook {webhook!r}: an http:// or https:// URL")
    if mode not in MODES:
        raise NewsarchiveError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
    if not valid_name(name):
        raise NewsarchiveError(f"alert name {shown_name(name)!r}: a name is {NAME_RULE}")
    if not query.strip():
        raise NewsarchiveError("an alert needs a query")
    now = now or datetime.now(timezone.utc)
    with open_writer(config.index_dir(directory)) as writer:
        alerts = saved(writer)
        if name in {alert.name for alert in alerts}:
            raise NewsarchiveError(f"there is an alert named {name!r} already; remove it first to change it")
        threshold = (THRESHOLD if mode == "dense" else 0.0) if threshold is None else threshold
        alert = Alert(name, query.strip(), mode, threshold, now, now, list(sources), list(languages), webhook)
        writer.set_table("alerts", to_table([*alerts, alert], "alerts"))
    write_feed(config.index_dir(directory), alert, [])
    return alert


def remove_alert(name: str, directory: str | Path | None = None) -> None:
    """Remove an alert and its matches (a commit).

    Raises:
        NotFound: There is none of that name.
    """
    from indexer.ingest.index import open_writer

    directory = config.index_dir(directory)
    with open_writer(directory) as writer:
        alerts = saved(writer)
        if name not in {alert.name for alert in alerts}:
            raise NotFound(f"no alert named {name!r} in {directory}/ (`newsarchive alerts list` shows them)")
        writer.set_table("alerts", to_table([alert for alert in alerts if alert.name != name], "alerts"))
        matches = writer.table("alert_matches")
        writer.set_table("alert_matches", matches.filter(pc.not_equal(matches.column("alert"), name)))
    atom.path(directory, name).unlink(missing_ok=True)


def run_alerts(directory: str | Path | None = None, embedder: Embedder | None = None) -> list[Match]:
    """Run every alert on the articles indexed since it last ran, and record its new matches (a commit when
    something was run). Returns the new matches."""
    from indexer.errors import IndexNotFound
    from indexer.retrieval.archive import Archive

    directory = config.index_dir(directory)
    try:
        manifest = Manifest.load(directory)
    except IndexNotFound:
        return []
    alerts = [Alert(**row) for row in tables.read(directory, manifest.tables, "alerts").to_pylist()]
    if not alerts:
        return []  # and no model is needed, nor the archive opened
    with Archive(directory, embedder=embedder) as archive:
        latest = archive.store.db.execute("SELECT max(indexed_at) FROM articles").fetchall()[0][0]
        now = datetime.now(timezone.utc)
        found, ran = [], {}
        for alert in alerts:
            if latest is None or latest <= alert.checked_until:
                continue
            try:
                found += _matches(archive, alert, now)
            except Exception as error:  # noqa: BLE001 -- one alert's fault must not stop the others
                log.warning("alert %s: could not be run (%s); it is tried again next time", shown_name(alert.name),
                            _what(error))  # fmt: skip
                continue
            ran[alert.name] = latest
    if not ran:
        return []
    with Writer(directory) as writer:
        current = saved(writer)  # an alert removed meanwhile loses its matches
        known = writer.table("alert_matches")
        matched = set(zip(known.column("alert").to_pylist(), known.column("article_id").to_pylist()))
        names = {alert.name for alert in current}
        new = [m for m in found if m.alert in names and (m.alert, m.article_id) not in matched]
        updated = [dataclasses.replace(a, checked_until=ran.get(a.name, a.checked_until)) for a in current]
        writer.set_table("alerts", to_table(updated, "alerts"))
        if new:
            writer.set_table("alert_matches", pa.concat_tables([known, to_table(new, "alert_matches")]))
    deliveries = []
    for alert in updated:
        mine = [match for match in new if match.alert == alert.name]
        if mine:
            try:
                write_feed(directory, alert, matches_of(alert.name, directory))
            except Exception as error:  # noqa: BLE001 -- the matches are committed; the file is written next time
                log.warning("alert %s: its feed file could not be written (%s)", shown_name(alert.name), _what(error))
        if mine and alert.webhook:
            deliveries.append((alert, mine))
    if deliveries:
        with ThreadPoolExecutor(min(WEBHOOKS_AT_ONCE, len(deliveries))) as pool:
            list(pool.map(lambda delivery: _deliver(*delivery), deliveries))
    return new


def write_feed(directory: Path, alert: Alert, matches: list[Match]) -> Path:
    """Write ``alert``'s feed file: an entry per match, newest first, with the passage that matched. It is written
    again after each run that found something new."""
    entries = [
        atom.Entry(
            id=f"urn:newsarchive:alert:{alert.name}:{match.article_id}",
            title=match.title,
            updated=match.matched_at,
            summary=f"{match.passage} ({match.source})" if match.source else match.passage,
            link=match.url,
            published=match.published,
        )
        for match in matches[: atom.LATEST]
    ]
    target = atom.path(directory, alert.name)
    title = f"newsarchive alert {alert.name}: {alert.query}"
    atom.write(
        target,
        f"urn:newsarchive:alert:{alert.name}",
        title,
        matches[0].matched_at if matches else alert.created_at,
        entries,
    )
    return target


def shown_name(name: str) -> str:
    """An alert's name as it may be printed: without control characters, and cut short when it is long."""
    name = inert(name).replace("\n", "").replace("\t", "")  # a log line stays one line
    return name if len(name) <= 64 else f"{name[:60]}…"


def _deliver(alert: Alert, matches: list[Match]) -> None:
    """POST an alert's new matches to its webhook; a failure is logged, and what was indexed stays."""
    from indexer.reading import fetching

    payload = {"alert": alert.name, "query": alert.query, "matches": [dataclasses.asdict(m) for m in matches]}
    name, count = shown_name(alert.name), len(matches)
    try:
        fetching.post_json(alert.webhook, json.loads(json.dumps(payload, default=str)))
    except fetching.FetchFailed as problem:
        log.warning("alert %s: its webhook failed (%s matches not delivered): %s", name, count, problem)
    except Exception as error:  # noqa: BLE001 -- one webhook's fault must not stop the others
        log.warning("alert %s: its webhook failed (%s matches not delivered): %s", name, count, _what(error))


def _what(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _matches(archive, alert: Alert, now: datetime) -> list[Match]:  # noqa: ANN001 -- an Archive
    """The articles indexed after ``alert.checked_until`` that it matches, each with its best passage."""
    ids = archive.store.passage_ids_where(alert.sources, alert.languages, indexed_after=alert.checked_until)
    if not len(ids):
        return []
    if alert.mode == "lexical":
        scores = _words_found(archive, alert.query, ids)
        baseline = 1.0  # every word
    else:
        from indexer.retrieval.relevance import neutral_similarity

        vector = archive.embedder.embed_queries([alert.query])[0]
        scores = archive.vectors.vectors(ids) @ vector
        baseline = neutral_similarity(archive.embedder, vector)
    owners, _ = archive.owners(ids)
    best: dict[str, int] = {}
    for row, article_id in enumerate(owners):
        if article_id not in best or scores[row] > scores[best[article_id]]:
            best[article_id] = row
    chosen = {a: row for a, row in best.items() if scores[row] - baseline >= alert.threshold}
    rows = archive.hits([int(ids[row]) for row in chosen.values()])
    found = []
    for article_id, row in chosen.items():
        hit = rows[int(ids[row])]
        score, margin = float(scores[row]), float(scores[row] - baseline)
        fields = {key: hit[key] for key in ("title", "source", "url", "published")}
        found.append(Match(alert.name, article_id, int(ids[row]), **fields, passage=hit["text"], score=score,
                           margin=margin, matched_at=now))  # fmt: skip
    return sorted(found, key=lambda match: -match.margin)


def _words_found(archive, query: str, ids: np.ndarray) -> np.ndarray:  # noqa: ANN001 -- an Archive
    """The share of the query's words (stemmed, each passage read in its language) in each of these passages."""
    from indexer.text.language import detect
    from indexer.text.tokens import tokenize

    candidates = [passage_id for passage_id, _ in archive.lexical.search(query, detect(query), len(ids), ids)]
    shares = dict.fromkeys(ids.tolist(), 0.0)
    for passage_id, hit in archive.hits(candidates).items():
        wanted = set(tokenize(query, hit["language"]))
        found = set(tokenize(f"{hit['title']}\n{hit['heading'] or ''}\n{hit['text']}", hit["language"]))
        shares[passage_id] = len(wanted & found) / len(wanted) if wanted else 0.0
    return np.array([shares[i] for i in ids.tolist()])


def listed(directory: str | Path | None = None) -> list[tuple[Alert, int]]:
    """The saved alerts, each with how many articles it matched."""
    from indexer.errors import IndexNotFound
    from indexer.storage import Snapshot

    try:
        with Snapshot(config.index_dir(directory)) as snapshot:
            counts = {}
            for alert in snapshot.table("alert_matches").column("alert").to_pylist():
                counts[alert] = counts.get(alert, 0) + 1
            return [(Alert(**row), counts.get(row["name"], 0)) for row in snapshot.table("alerts").to_pylist()]
    except IndexNotFound:
        return []


def matches_of(name: str, directory: str | Path | None = None, since: date | None = None) -> list[Match]:
    """What alert ``name`` matched (on or after ``since``), newest first.

    Raises:
        NotFound: There is no alert of that name.
    """
    from indexer.storage import Snapshot

    directory = config.index_dir(directory)
    with Snapshot(directory) as snapshot:
        if name not in snapshot.table("alerts").column("name").to_pylist():
            raise NotFound(f"no alert named {name!r} in {directory}/ (`newsarchive alerts list` shows them)")
        rows = snapshot.table("alert_matches").to_pylist()
    found = [Match(**row) for row in rows if row["alert"] == name]
    found = [m for m in found if since is None or m.matched_at.date() >= since]
    return sorted(found, key=lambda m: (m.matched_at, m.margin), reverse=True)
