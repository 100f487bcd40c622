"""Fetching over HTTP politely (httpx): a User-Agent naming the project, timeouts and a deadline, a size cap,
conditional requests, and redirects followed a bounded number of times, with where a permanent one leads.

What may be fetched, and for how long, is the fetch policy (:mod:`indexer.reading.fetch_policy`): a URL the operator
gave (:func:`get`) may be on any address, a link found in what was fetched (:func:`get_link`) only on a public one or
on the site of the URL given when that is on a private address, every redirect is checked again, and every request
ends by a deadline.

Every failure -- no answer, an error status, a redirect loop, a body over the cap, a name that does not resolve, an
address the policy refuses -- is an :class:`~indexer.errors.InputProblem` naming the URL (without its password)
and what went wrong, never an exception of httpx's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from indexer.errors import InputProblem
from indexer.reading import fetch_policy
from indexer.reading.fetch_policy import shown

# What the resolver says of a name it cannot find (glibc, macOS, and a resolver that cannot be reached).
_UNRESOLVED = re.compile(r"Name or service not known|nodename nor servname|name resolution|No address associated", re.I)
TIMEOUT = 15.0  # seconds to connect, and between bytes of an answer
DEADLINE = 30.0  # seconds a whole request may take, redirects included, however steadily the bytes come
MAX_BYTES = 5_000_000  # what a fetch reads at most: no news page or feed comes near it
MAX_REDIRECTS = 5
USER_AGENT = "newsarchive/0.1 (+https://github.com/newsarchive)"
RETRY_WAIT = 1.0  # seconds before a failed POST is tried again; doubled each time
WEBHOOK_BUDGET = 60.0  # seconds one webhook delivery may take, every attempt and wait included
_PERMANENT = {301, 308}
_LINK_RULE = "links in feeds are fetched only from public addresses or the feed's own site"
_REDIRECT_RULE = "redirects are followed only to public addresses or the site of the URL given"
_ALLOW = f"--allow-private or ${fetch_policy.ALLOW_PRIVATE_ENV}=1 allows them"


class FetchFailed(InputProblem):
    """A fetch that failed; ``status`` is the HTTP status when the server answered with an error, ``timed_out``
    whether the answer did not come in time."""

    def __init__(self, url: str, reason: str, status: int | None = None, timed_out: bool = False) -> None:
        super().__init__(shown(url), reason)
        self.status = status
        self.timed_out = timed_out


@dataclass(frozen=True)
class Response:
    """What a fetch got.

    Attributes:
        url: Where the answer came from, after redirects.
        status: 200, or 304 when a conditional request found the resource unchanged (``body`` is then empty).
        body: The body, at most :data:`MAX_BYTES`.
        content_type: Its media type, without parameters (``application/rss+xml``).
        etag: The ``ETag`` header, for the next conditional request.
        last_modified: The ``Last-Modified`` header, likewise.
        moved_to: Where the redirects that were all permanent lead, else ``None``: the URL to ask next time.
    """

    url: str
    status: int
    body: bytes
    content_type: str
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None


def get(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    client: httpx.Client | None = None,
    *,
    deadline: float | None = None,
) -> Response:
    """GET ``url``, a URL the operator gave, conditionally when ``etag`` or ``last_modified`` is given.

    Args:
        url: The URL; it may be on any address, and so may its redirects on its own site (scheme, host and port)
            when it is on a private one (an intranet's); any other redirect must lead to public addresses
            (:mod:`indexer.reading.fetch_policy`).
        etag: The ``ETag`` of the last fetch.
        last_modified: The ``Last-Modified`` of the last fetch.
        client: A client of :func:`new_client` to reuse (a new one otherwise).
        deadline: A ``time.monotonic()`` by which the fetch must end, when sooner than :data:`DEADLINE` from now.

    Raises:
        FetchFailed: No answer within :data:`TIMEOUT`, no complete answer within :data:`DEADLINE` (or by
            ``deadline``), an error status, too many redirects or a loop, a body larger than :data:`MAX_BYTES`, the
            host cannot be reached, or the policy refuses an address.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return _fetched(url, url, headers, client, deadline)


def get_link(
    url: str, found_in: str | None, client: httpx.Client | None = None, *, deadline: float | None = None
) -> Response:
    """GET ``url``, a link found in what was read from ``found_in`` (a URL the operator gave, or ``None`` for a
    file): fetched only when it is on public addresses, or on ``found_in``'s site when that is on a private address,
    redirects too, unless private addresses are allowed (:func:`indexer.reading.fetch_policy.private_allowed`).

    Raises:
        FetchFailed: As :func:`get`; ``reason`` starts with ``refused:`` when the policy refused an address.
    """
    return _fetched(url, found_in, {}, client, deadline)


def post_json(
    url: str,
    payload: object,
    attempts: int = 3,
    client: httpx.Client | None = None,
    budget: float | None = None,
) -> None:
    """POST ``payload`` as JSON to ``url`` (a URL the operator gave), trying again after 1 s, then 2 s... when it
    fails, each attempt within :data:`DEADLINE` and all of them within ``budget`` (:data:`WEBHOOK_BUDGET`).

    Raises:
        FetchFailed: Every attempt failed, or the budget ran out (the last failure's reason).
    """
    end = time.monotonic() + (WEBHOOK_BUDGET if budget is None else budget)
    own = client is None
    client = client or new_client()
    try:
        for attempt in range(attempts):
            started = time.monotonic()
            deadline = min(started + DEADLINE, end)
            try:
                with (
                    fetch_policy.hop(True, deadline),
                    client.stream("POST", url, json=payload, timeout=_timeout(deadline)) as response,
                ):
                    if response.is_success:
                        return
                    status = response.status_code
                    problem = FetchFailed(url, f"the server answered HTTP {status}", status)
            except httpx.TimeoutException:
                problem = FetchFailed(url, _timed_out(started, deadline), timed_out=True)
            except httpx.HTTPError as error:
                problem = FetchFailed(url, f"cannot post: {_reason(error)}")
            except ValueError as error:
                problem = FetchFailed(url, f"not a URL that can be posted to ({error})")
            wait = RETRY_WAIT * 2**attempt
            if attempt + 1 == attempts or time.monotonic() + wait >= end:
                break
            time.sleep(wait)
        raise problem
    finally:
        if own:
            client.close()


def new_client() -> httpx.Client:
    """A client for several fetches (connections are kept): redirects are followed by :func:`get`, not by httpx,
    and the fetch policy is applied where it connects (:class:`indexer.reading.fetch_policy.Transport`)."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=TIMEOUT,
        follow_redirects=False,
        transport=fetch_policy.Transport(),
    )


def _fetched(
    url: str, given: str | None, headers: dict[str, str], client: httpx.Client | None, deadline: float | None
) -> Response:
    started = time.monotonic()
    deadline = min(started + DEADLINE, deadline if deadline is not None else float("inf"))
    own = client is None
    client = client or new_client()
    try:
        return _get(client, url, given, headers, deadline)
    except httpx.TimeoutException:
        raise FetchFailed(url, _timed_out(started, deadline), timed_out=True) from None
    except httpx.InvalidURL as error:
        raise FetchFailed(url, f"not a URL that can be fetched ({error})") from None
    except httpx.ConnectError as error:
        reason = _reason(error)
        if _UNRESOLVED.search(reason):
            raise FetchFailed(url, f"the host {httpx.URL(url).host} does not resolve ({reason})") from None
        raise FetchFailed(url, f"cannot fetch: {reason}") from None
    except httpx.HTTPError as error:
        raise FetchFailed(url, f"cannot fetch: {_reason(error)}") from None
    except (ValueError, UnicodeError) as error:  # urljoin and idna on a malformed Location or host
        raise FetchFailed(url, f"not a URL that can be fetched ({error})") from None
    finally:
        if own:
            client.close()


def _timeout(deadline: float) -> httpx.Timeout:
    """The client's timeouts, none longer than what remains before ``deadline`` (waiting for a free connection
    too; reads and writes are bounded again below httpcore, :mod:`indexer.reading.fetch_policy`)."""
    return httpx.Timeout(max(0.001, min(TIMEOUT, deadline - time.monotonic())))


def _timed_out(started: float, deadline: float) -> str:
    if time.monotonic() >= deadline - 0.05:
        return f"no complete answer within {round(deadline - started, 1):g} s"
    return f"no answer within {TIMEOUT:g} s"


def _get(client: httpx.Client, url: str, given: str | None, headers: dict[str, str], deadline: float) -> Response:
    seen = [url]
    permanent = True
    where = url
    for _ in range(MAX_REDIRECTS + 1):
        # The URL given may be on any address; its own site's other URLs only when it is an intranet's, or when a
        # proxy connects to them (which resolves names its own way: the site is taken as the operator gave it).
        own = where == given
        trusted = own or fetch_policy.private_allowed()
        if not trusted and fetch_policy.same_site(where, given):
            trusted = fetch_policy.private_site(given) or fetch_policy.proxied(where)
        try:
            with (
                fetch_policy.hop(trusted, deadline, records=given if own else None),
                client.stream("GET", where, headers=headers, timeout=_timeout(deadline)) as response,
            ):
                if not response.has_redirect_location:
                    return _response(response, url, where, where if permanent and where != url else None)
                target = urljoin(where, response.headers["Location"])
                permanent = permanent and response.status_code in _PERMANENT
        except fetch_policy.Refused as refusal:
            rule = _REDIRECT_RULE if given == url else _LINK_RULE
            hop = f" (redirected to {shown(where)})" if where != url else ""
            raise FetchFailed(url, f"refused: {refusal.reason}{hop}; {rule} ({_ALLOW})") from None
        if target in seen:
            raise FetchFailed(url, f"redirects in a loop ({' -> '.join(shown(u) for u in [*seen, target])})")
        seen.append(target)
        where = target
    raise FetchFailed(url, f"more than {MAX_REDIRECTS} redirects")


def _response(response: httpx.Response, url: str, where: str, moved_to: str | None) -> Response:
    if response.status_code == 304:
        return Response(where, 304, b"", "", _header(response, "ETag"), _header(response, "Last-Modified"), moved_to)
    if not 200 <= response.status_code < 300:
        status = response.status_code
        raise FetchFailed(url, f"the server answered HTTP {status} ({response.reason_phrase})", status)
    body = _read(response, url)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return Response(
        where,
        response.status_code,
        body,
        content_type,
        _header(response, "ETag"),
        _header(response, "Last-Modified"),
        moved_to,
    )


def _read(response: httpx.Response, url: str) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        raise FetchFailed(url, f"the answer is {int(length):,} bytes, more than the {MAX_BYTES:,} read")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BYTES:
            raise FetchFailed(url, f"the answer is more than the {MAX_BYTES:,} bytes read")
        chunks.append(chunk)
    return b"".join(chunks)


def _header(response: httpx.Response, name: str) -> str | None:
    return response.headers.get(name) or None


def _reason(error: httpx.HTTPError) -> str:
    """The operating system's words for a failure (``Connection refused``), where it has some."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text or type(error).__name__
