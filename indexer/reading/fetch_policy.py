"""What the indexer may fetch, and for how long (OWASP's SSRF prevention cheat sheet, applied to one client).

**Addresses.** A URL the operator gave -- ``index URL``, ``feeds add URL``, a webhook -- may name any address: they
chose it. Everything else -- a page a feed entry links to, and every redirect -- is fetched only when its host
resolves to public addresses only, or when it is on the *trusted site*: the scheme, host and port of the URL the
operator gave. Loopback, private, link-local, multicast, reserved and unspecified addresses, and IPv6 forms of
them (IPv4-mapped, 6to4), are refused. The check is made where the connection is made: the name is resolved once
and the socket connects to an address that passed, so a name that resolves to a public address for a check and to
a private one for the connection (DNS rebinding) gains nothing; a connection kept from an earlier request is
checked again before a request is written on it. ``$NEWSARCHIVE_ALLOW_PRIVATE`` (or ``--allow-private``) lets
links reach private addresses too.

**Time.** Each request has a total deadline besides the per-read timeout: every connect, write and read waits at
most what remains of it (httpcore captures the read timeout once per response, so the deadline is applied in the
network stream, below httpcore), and a server that sends a byte every few seconds is cut off at the deadline.

Both ride on a :class:`Hop`, set around each request in the thread that makes it (:func:`hop`); requests made
outside one are neither checked nor bounded beyond the client's own timeouts.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import os
import socket
import threading
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

ALLOW_PRIVATE_ENV = "NEWSARCHIVE_ALLOW_PRIVATE"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A connection the policy does not allow; ``reason`` says why (``127.0.0.1 is a loopback address``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Hop:
    """One request: may it reach any address (``trusted``), and by when must it be done (``time.monotonic``);
    ``records``: the site (:func:`site`) of a URL the operator gave, whose connection tells :func:`private_site`."""

    trusted: bool
    deadline: float
    records: tuple[str, str, int] | None = None


# site -> whether the operator's URL there last connected to an address that is not public. Only an intranet's own
# site is trusted for its links: a public site's links are checked like any, so a name that answers a public
# address for the feed and a private one for a link (DNS rebinding) gains nothing.
_private_sites: dict[tuple[str, str, int], bool] = {}


_hop: contextvars.ContextVar[Hop | None] = contextvars.ContextVar("fetch_hop", default=None)
_allow_private: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_private", default=False)


@contextlib.contextmanager
def hop(trusted: bool, deadline: float, records: str | None = None) -> Iterator[None]:
    """Requests made in this block (in this thread) follow ``trusted`` and end by ``deadline``; ``records``: a URL
    the operator gave, whose connection's address :func:`private_site` remembers."""
    token = _hop.set(Hop(trusted, deadline, site(records) if records else None))
    try:
        yield
    finally:
        _hop.reset(token)


@contextlib.contextmanager
def allowing_private(allow: bool = True) -> Iterator[None]:
    """Let links reach private addresses in this block (``--allow-private``); ``False`` leaves it to the
    environment (:data:`ALLOW_PRIVATE_ENV`). Threads started inside see it only through
    :func:`contextvars.copy_context`."""
    token = _allow_private.set(allow)
    try:
        yield
    finally:
        _allow_private.reset(token)


def private_allowed() -> bool:
    """Whether links may reach private addresses: ``--allow-private``, or ``$NEWSARCHIVE_ALLOW_PRIVATE`` set to
    1, true or yes."""
    return _allow_private.get() or os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in {"1", "true", "yes"}


def site(url: str) -> tuple[str, str, int] | None:
    """A URL's scheme, host and port (the port its scheme implies when none is written); ``None`` when it cannot
    be read as an http(s) URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port or (443 if parsed.scheme == "https" else 80)


def private_site(url: str) -> bool:
    """Whether the operator's URL on ``url``'s site connected, when last fetched here, to an address that is not
    public (an intranet, this machine): the links such a site gives are its own business."""
    return _private_sites.get(site(url), False) if site(url) else False


def same_site(url: str, given: str | None) -> bool:
    """Whether ``url`` is on the site (scheme, host and port) of ``given``, a URL the operator gave."""
    return given is not None and site(url) is not None and site(url) == site(given)


def address_problem(address: Address) -> str | None:
    """Why a link may not reach ``address`` (``127.0.0.1 is a loopback address``), or ``None`` for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{address} ({problem})" if problem else None
    for kind, flag in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("not a public", not address.is_global),
    ):
        if flag:
            return f"{address} is {kind} address"
    return None


def shown(url: str) -> str:
    """``url`` as it may be printed: a password in it (``user:secret@``) is shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if not password or parts is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)  # httpx's own


class Transport(httpx.HTTPTransport):
    """httpx's transport with the policy in its network layer (:class:`_Backend`).

    Where the environment names a proxy for a URL (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, less
    ``NO_PROXY``, as the standard library reads them), the request goes through it: the proxy connects to the
    host, so the host's addresses are checked here by name before the request is sent (a name that resolves to a
    public address here and to a private one at the proxy is beyond this check), and the connection to the proxy,
    which the operator chose, only keeps the deadline.
    """

    def __init__(self) -> None:
        super().__init__()
        # HTTPTransport takes no network backend; its pool is rebuilt with one, with httpx's own limits.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_Backend(),
        )
        self._proxies: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = _proxy_for(request.url)
        if proxy is None:
            return super().handle_request(request)
        current = _hop.get()
        if current is not None and not current.trusted:  # trusted includes --allow-private (fetching._get)
            try:
                addresses = _resolve(request.url.host, request.url.port or 0, _bounded(None, httpcore.ConnectTimeout))
            except httpcore.ConnectError:
                unchecked = f"{request.url.host} does not resolve here, so its address cannot be checked"
                raise Refused(unchecked) from None
            for address in addresses:
                problem = address_problem(address)
                if problem:
                    raise Refused(problem)
        with self._lock:  # the pool's threads share one client
            if proxy not in self._proxies:
                self._proxies[proxy] = _proxied(proxy)
            transport = self._proxies[proxy]
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in self._proxies.values():
            transport.close()
        super().close()


def proxied(url: str) -> bool:
    """Whether a request for ``url`` goes through a proxy the environment names."""
    try:
        return _proxy_for(httpx.URL(url)) is not None
    except (httpx.InvalidURL, TypeError, ValueError):
        return False


def _proxy_for(url: httpx.URL) -> str | None:
    """The http(s) proxy the environment names for ``url``, or ``None`` to connect directly (also for a SOCKS
    proxy, which httpx reaches only with an extra package newsarchive does not install)."""
    import urllib.request

    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    if "://" not in proxy:
        return f"http://{proxy}"
    return proxy if proxy.startswith(("http://", "https://")) else None


def _proxied(proxy: str) -> httpx.HTTPTransport:
    """A transport through ``proxy`` whose connections keep the request's deadline (the proxy is not checked)."""
    transport = httpx.HTTPTransport()
    parsed = httpx.Proxy(proxy)
    transport._pool = httpcore.HTTPProxy(
        proxy_url=httpcore.URL(
            scheme=parsed.url.raw_scheme, host=parsed.url.raw_host, port=parsed.url.port, target=parsed.url.raw_path
        ),
        proxy_auth=parsed.raw_auth,
        proxy_headers=parsed.headers.raw,
        ssl_context=httpx.create_ssl_context(),
        max_connections=_LIMITS.max_connections,
        max_keepalive_connections=_LIMITS.max_keepalive_connections,
        keepalive_expiry=_LIMITS.keepalive_expiry,
        network_backend=_Backend(checked=False),
    )
    return transport


def _bounded(timeout: float | None, timed_out: type[Exception]) -> float | None:
    """``timeout``, or what remains of the current request's deadline when that is less."""
    current = _hop.get()
    if current is None:
        return timeout
    remaining = current.deadline - time.monotonic()
    if remaining <= 0:
        raise timed_out("the deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


def _check(address: Address) -> None:
    current = _hop.get()
    if current is None or current.trusted:  # a hop is trusted when private addresses are allowed too
        return
    problem = address_problem(address)
    if problem:
        raise Refused(problem)


class _Stream(httpcore.NetworkStream):
    """A connection whose every wait ends by the request's deadline, and which checks its peer before each write."""

    def __init__(self, stream: httpcore.NetworkStream, peer: Address | None) -> None:
        self._stream = stream
        self._peer = peer

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._peer is not None:  # a kept connection may be reused by a request that may not reach it
            _check(self._peer)
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: typing.Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _Stream(stream, self._peer)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """Resolves a host once, checks each address, and connects to one that passed."""

    def __init__(self, checked: bool = True) -> None:
        self._system = httpcore.SyncBackend()
        self._checked = checked  # False for the proxy's connections: it is the operator's choice

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port, _bounded(timeout, httpcore.ConnectTimeout))
        for address in addresses if self._checked else ():
            _check(address)  # every address: a name with one private address among public ones is refused
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._system.connect_tcp(
                    str(address), port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            current = _hop.get()
            if current is not None and current.records is not None and self._checked:
                _private_sites[current.records] = address_problem(address) is not None
            return _Stream(stream, address if self._checked else None)
        raise failure or httpcore.ConnectError(f"{host} has no address")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _resolve(host: str, port: int, timeout: float | None) -> list[Address]:
    """The addresses ``host`` resolves to, within ``timeout`` (getaddrinfo itself cannot be given one, so it runs
    in a thread that is left to finish on its own when it takes longer)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    outcome: dict[str, typing.Any] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"{host} did not resolve in time")
    if "error" in outcome:
        raise httpcore.ConnectError(str(outcome["error"])) from outcome["error"]
    found = []
    for *_, sockaddr in outcome["found"]:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found
