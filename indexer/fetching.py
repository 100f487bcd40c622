"""Fetching over HTTP politely (httpx): a User-Agent naming the project, timeouts, a size cap, conditional requests,
and redirects followed a bounded number of times, with where a permanent one leads.

Every failure -- no answer, an error status, a redirect loop, a body over the cap, a name that does not resolve --
is an :class:`~indexer.errors.InputProblem` naming the URL and what went wrong, never an exception of httpx's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from .errors import InputProblem

# What the resolver says of a name it cannot find (glibc, macOS, and a resolver that cannot be reached).
_UNRESOLVED = re.compile(r"Name or service not known|nodename nor servname|name resolution|No address associated", re.I)
TIMEOUT = 15.0  # seconds to connect, and between bytes of an answer
MAX_BYTES = 5_000_000  # what a fetch reads at most: no news page or feed comes near it
MAX_REDIRECTS = 5
USER_AGENT = "newsarchive/0.1 (+https://github.com/newsarchive)"
RETRY_WAIT = 1.0  # seconds before a failed POST is tried again; doubled each time
_PERMANENT = {301, 308}


class FetchFailed(InputProblem):
    """A fetch that failed; ``status`` is the HTTP status when the server answered with an error."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(url, reason)
        self.status = status


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
    url: str, etag: str | None = None, last_modified: str | None = None, client: httpx.Client | None = None
) -> Response:
    """GET ``url``, conditionally when ``etag`` or ``last_modified`` is given.

    Raises:
        FetchFailed: No answer within :data:`TIMEOUT`, an error status, too many redirects or a loop, a body
            larger than :data:`MAX_BYTES`, or the host cannot be reached.
    """
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own = client is None
    client = client or new_client()
    try:
        return _get(client, url, headers)
    except httpx.TimeoutException:
        raise FetchFailed(url, f"no answer within {TIMEOUT:g} s") from None
    except httpx.InvalidURL as error:
        raise FetchFailed(url, f"not a URL that can be fetched ({error})") from None
    except httpx.ConnectError as error:
        reason = _reason(error)
        if _UNRESOLVED.search(reason):
            raise FetchFailed(url, f"the host {httpx.URL(url).host} does not resolve ({reason})") from None
        raise FetchFailed(url, f"cannot fetch: {reason}") from None
    except httpx.HTTPError as error:
        raise FetchFailed(url, f"cannot fetch: {_reason(error)}") from None
    finally:
        if own:
            client.close()


def post_json(url: str, payload: object, attempts: int = 3, client: httpx.Client | None = None) -> None:
    """POST ``payload`` as JSON, trying again after 1 s, then 2 s... when it fails.

    Raises:
        FetchFailed: Every attempt failed (the last failure's reason).
    """
    own = client is None
    client = client or new_client()
    try:
        for attempt in range(attempts):
            try:
                response = client.post(url, json=payload)
                if response.is_success:
                    return
                problem = FetchFailed(url, f"the server answered HTTP {response.status_code}", response.status_code)
            except httpx.TimeoutException:
                problem = FetchFailed(url, f"no answer within {TIMEOUT:g} s")
            except httpx.HTTPError as error:
                problem = FetchFailed(url, f"cannot post: {_reason(error)}")
            if attempt + 1 < attempts:
                time.sleep(RETRY_WAIT * 2**attempt)
        raise problem
    finally:
        if own:
            client.close()


def new_client() -> httpx.Client:
    """A client for several fetches (connections are kept): redirects are followed by :func:`get`, not by httpx."""
    return httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=TIMEOUT, follow_redirects=False)


def _get(client: httpx.Client, url: str, headers: dict[str, str]) -> Response:
    seen = [url]
    permanent = True
    where = url
    for _ in range(MAX_REDIRECTS + 1):
        with client.stream("GET", where, headers=headers) as response:
            if response.has_redirect_location:
                target = urljoin(where, response.headers["Location"])
                permanent = permanent and response.status_code in _PERMANENT
                if target in seen:
                    raise FetchFailed(url, f"redirects in a loop ({' -> '.join([*seen, target])})")
                seen.append(target)
                where = target
                continue
            moved_to = where if permanent and where != url else None
            if response.status_code == 304:
                return Response(
                    where, 304, b"", "", _header(response, "ETag"), _header(response, "Last-Modified"), moved_to
                )
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
    raise FetchFailed(url, f"more than {MAX_REDIRECTS} redirects")


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
