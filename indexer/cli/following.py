"""Keeping up with the news: the followed ``feeds``, ``follow`` which fetches them, and ``alerts``."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import click

from indexer.cli.common import Group, echo, emit, index_dir_option, plural
from indexer.terminal import inert_json


@click.group(cls=Group)
def feeds() -> None:
    """Feeds the archive follows: `follow` fetches them when due and indexes what is new.

    \b
    Example:
      newsarchive feeds add https://example.org/rss.xml --every 15m
      newsarchive feeds list
    """


@feeds.command("add")
@click.argument("url")
@click.option(
    "--every", "period", default="15m", show_default=True, help="How often: 90s, 15m, 2h, 1d (a minute to 365d)."
)
@click.option("--source", help="The source its articles get (default: the feed's own title).")
@index_dir_option
def feeds_add(url: str, period: str, source: str | None, index_dir: Path) -> None:
    """Follow the feed at URL (again: change how often, or its source).

    \b
    Example:
        newsarchive feeds add https://www.ansa.it/sito/ansait_rss.xml --every 30m --source ANSA
    """
    from indexer.live.feeds import add_feed, every
    from indexer.reading.fetch_policy import shown

    feed = add_feed(url, index_dir, every(period), source)
    echo(f"following {shown(feed.url)} every {_period(feed.every_seconds)}; `newsarchive follow` fetches it")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON array of objects.")
@index_dir_option
def feeds_list(as_json: bool, index_dir: Path) -> None:
    """The feeds followed, each with its health: last fetch and status, entries, failures in a row, next due."""
    import dataclasses

    from indexer.live.feeds import listed
    from indexer.reading.fetch_policy import shown

    found = listed(index_dir)
    if as_json:
        rows = [dataclasses.asdict(feed) for feed in found]
        for row in rows:  # a password in a feed's URL is never printed
            row["url"], row["location"] = shown(row["url"]), row["location"] and shown(row["location"])
        emit(inert_json(rows, default=str, indent=2))
        return
    if not found:
        echo(f"no feed is followed in {index_dir}/: `newsarchive feeds add URL` follows one")
    for feed in found:
        when = f"{feed.last_fetch:%Y-%m-%d %H:%M}" if feed.last_fetch else "never"
        health = feed.last_error or (f"HTTP {feed.last_status}" if feed.last_status else "not fetched yet")
        entries = f"{feed.entries_seen} entries, {feed.entries_new} new" if feed.entries_seen is not None else ""
        due = f"{feed.next_due:%Y-%m-%d %H:%M}" if feed.next_due else "now"
        source = f", source {feed.source}" if feed.source else ""
        echo(f"{shown(feed.url)}  every {_period(feed.every_seconds)}{source}")
        echo(
            f"  last fetch {when}: {health}"
            + (f"; {entries}" if entries else "")
            + (f"; {plural(feed.failures, 'failure')} in a row" if feed.failures else "")
            + f"; next due {due}"
        )
        if feed.location and feed.location != feed.url:
            echo(f"  moved for good to {shown(feed.location)}")


@feeds.command("remove")
@click.argument("url")
@index_dir_option
def feeds_remove(url: str, index_dir: Path) -> None:
    """Stop following the feed at URL; the articles it brought stay."""
    from indexer.live.feeds import remove_feed
    from indexer.reading.fetch_policy import shown

    remove_feed(url, index_dir)
    echo(f"no longer following {shown(url)}")


@click.command("follow")
@click.option("--once", is_flag=True, help="One round over every feed, due or not, then exit (for cron or a timer).")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Let the pages that feed entries link to, and redirects, be on private and local addresses too (or "
    "$NEWSARCHIVE_ALLOW_PRIVATE=1). Off: only public addresses, or the site of a feed on your own network.",
)
@index_dir_option
def follow_feeds(once: bool, allow_private: bool, index_dir: Path) -> None:
    """Fetch the followed feeds when due and index their new and changed entries, until stopped.

    Each round is one commit and prints one line, then one line per feed that failed; a failing feed is tried again
    later, less and less often, and the others go on. Requests are conditional: an unchanged feed costs a 304. A
    round's fetching takes at most 120 s, each request 30 s. Stopping it at any moment, even with kill -9, loses
    nothing committed.

    \b
    Examples:
        newsarchive follow
        newsarchive follow --once      # from cron: */15 * * * * newsarchive follow --once -d /srv/archive
    """
    from indexer.live.follow import follow

    try:
        result = follow(index_dir, once=once, echo=echo, allow_private=allow_private)
    except KeyboardInterrupt:
        echo("stopped")
        return
    failed = [item.feed.url for item in result.fetched if item.feed.failures]
    if failed:
        raise click.ClickException(f"{plural(len(failed), 'feed')} failed (listed above)")


@click.group(cls=Group)
def alerts() -> None:
    """Saved searches run on each new article: what they match is kept, shown, and written as an Atom feed.

    \b
    Example:
      newsarchive alerts add drones "a drone over the Black Sea" --language en
      newsarchive alerts show drones --since 2026-12-01
    """


@alerts.command("add")
@click.argument("name")
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--mode",
    type=click.Choice(["dense", "lexical"]),
    default="dense",
    show_default=True,
    help="dense: close in meaning, in any language; lexical: a passage holds every word of the query.",
)
@click.option("--source", "sources", multiple=True, help="Only articles of this source (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only articles in this language (repeatable).")
@click.option(
    "--threshold",
    type=float,
    help="dense: the margin over neutral news a match needs (see the Alerts section of docs/adding-articles.md).",
)
@click.option(
    "--webhook", help="POST each round's new matches to this URL, as JSON (retried within 60 s; failures logged)."
)
@index_dir_option
def alerts_add(
    name: str,
    query: tuple[str, ...],
    mode: str,
    sources: tuple[str, ...],
    languages: tuple[str, ...],
    threshold: float | None,
    webhook: str | None,
    index_dir: Path,
) -> None:
    """Save the alert NAME for QUERY: from now on, each article indexed that matches it is recorded once.

    NAME is 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'; the alert's Atom feed is
    alerts/NAME.xml in the index directory.

    \b
    Example:
        newsarchive alerts add drones "drone shot down over the Black Sea" --language en --language it
    """
    from indexer.live.alerts import add_alert

    alert = add_alert(name, " ".join(query), index_dir, mode, sources, languages, threshold, webhook)
    echo(f"alert {alert.name}: {alert.query!r} ({alert.mode}, threshold {alert.threshold:g})")


@alerts.command("list")
@index_dir_option
def alerts_list(index_dir: Path) -> None:
    """The saved alerts, what each matches on, and how many articles it matched."""
    from indexer.live.alerts import listed

    found = listed(index_dir)
    if not found:
        echo(f"no alert is saved in {index_dir}/: `newsarchive alerts add NAME QUERY` saves one")
    for alert, matched in found:
        filters = "".join(f", source {s}" for s in alert.sources) + "".join(f", language {x}" for x in alert.languages)
        echo(f"{alert.name}: {alert.query!r} ({alert.mode}{filters}); {plural(matched, 'match')}")
        if alert.mode == "lexical":
            echo("  an article matches when a passage holds every word of the query")
        else:
            echo(
                f"  an article matches when a passage's similarity to the query beats the query's to neutral news "
                f"by {alert.threshold:g}"
            )


@alerts.command("show")
@click.argument("name")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only matches found on or after this day.")
@click.option("--json", "as_json", is_flag=True, help="Print the matches as a JSON array of objects.")
@index_dir_option
def alerts_show(name: str, since: Any, as_json: bool, index_dir: Path) -> None:
    """The articles alert NAME matched, newest first, each with the passage that matched."""
    import dataclasses

    from indexer.live.alerts import matches_of

    found = matches_of(name, index_dir, since.date() if since else None)
    if as_json:
        emit(inert_json([dataclasses.asdict(m) for m in found], default=str, indent=2))
        return
    width = shutil.get_terminal_size((100, 20)).columns
    for match in found:
        where = f"{match.source or '?'}, {match.url or match.article_id}"
        echo(f"{match.matched_at:%Y-%m-%d %H:%M}  {match.title}  ({where})")
        echo(textwrap.fill(match.passage, width, initial_indent="    ", subsequent_indent="    "))
    if not found:
        echo(f"alert {name} has matched nothing yet")


@alerts.command("remove")
@click.argument("name")
@index_dir_option
def alerts_remove(name: str, index_dir: Path) -> None:
    """Remove the alert NAME and what it matched."""
    from indexer.live.alerts import remove_alert

    remove_alert(name, index_dir)
    echo(f"alert {name} removed")


def _period(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
