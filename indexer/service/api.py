"""The HTTP API that ``newsarchive serve`` runs: the CLI's JSON objects under ``/v1``, behind keys.

Each request works on the commit that was current when it came (:class:`indexer.retrieval.archive.Served`): a
commit made meanwhile by ``index``, ``follow`` or ``POST /v1/articles`` is served from the next request, and the
model is loaded once per process. Every failure is JSON, ``{"error": "..."}``, with its status: 400 for a query or
parameter that is wrong (the message names it), 401 without a known key, 403 for a read key on a write endpoint,
404, 413 for a body over the limit, 429 past the key's rate, 503 while there is no index or another process
writes it; never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Route

from indexer.errors import IndexBusy, IndexNotFound, InputProblem, NewsarchiveError, NotFound
from indexer.retrieval.archive import Archive, Served
from indexer.service import queries
from indexer.service.keys import Key, KeyRing
from indexer.service.limits import JsonErrors, Limits, RateLimiter, ServerTiming
from indexer.terminal import inert_json

log = logging.getLogger(__name__)
Mode = Literal["hybrid", "dense", "lexical"]
MAX_SQL_ROWS = 10_000
SQL_TIMEOUT = 30.0


class Problem(Exception):
    """A request refused: its status and the one line that says why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as the CLI prints it with ``--json`` (dates as ISO text; controls escaped, for a terminal)."""
    return Response(inert_json(data, default=str), status, headers, media_type="application/json")


class AskBody(BaseModel):
    question: str = Field(max_length=10_000, description="In any language.")
    mode: Mode = "hybrid"
    source: list[str] = Field(default=[], max_length=100, description="Only passages of these sources.")
    language: list[str] = Field(default=[], max_length=100, description="Only passages in these languages.")
    since: date | None = None
    until: date | None = None
    answer_language: str | None = Field(None, max_length=16, description="With a generator: ISO 639-1 code.")
    translate: bool = Field(False, description="With a generator: translate cited passages in other languages.")


class SqlBody(BaseModel):
    query: str = Field(max_length=100_000)
    timeout: float = Field(SQL_TIMEOUT, gt=0, le=SQL_TIMEOUT, description="Seconds, at most the server's limit.")
    max_rows: int = Field(1000, ge=1, le=MAX_SQL_ROWS)


class ArticleBody(BaseModel):
    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1)
    title: str | None = None
    source: str | None = None
    url: str | None = None
    published: str | None = None
    language: str | None = None
    author: str | None = None


class ArticlesBody(BaseModel):
    articles: list[ArticleBody] = Field(min_length=1, max_length=10_000)


def create_app(
    directory: Path,
    *,
    auth: bool = True,
    limits: Limits | None = None,
    served: Served | None = None,
    generator: Any = None,
) -> FastAPI:
    """The API over the index in ``directory``.

    Args:
        directory: The index directory (it may not exist yet: requests get 503 until it does).
        auth: Ask every request but ``/healthz`` and the docs for a key (``newsarchive keys``).
        limits: Rate and body-size limits.
        served: The archive to serve (tests pass one with a small model); by default opened on first request.
        generator: The language model ``/v1/ask`` writes answers with (:class:`indexer.answers.llm.Generator`);
            ``None``: answers are quoted.
    """
    limits = limits or Limits()
    served = served or Served(directory)
    keys = KeyRing(directory)
    rates = RateLimiter(limits.requests_per_minute)

    from indexer.service.mcp import create_mcp

    assistants = create_mcp(served, generator)
    # Behind the API's keys, so the MCP SDK's own check of the Host header (against DNS rebinding, for servers
    # without keys on loopback) stays on only when there are no keys.
    security = None if not auth else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    tools_app = assistants.streamable_http_app(streamable_http_path="/mcp", transport_security=security)

    @contextlib.asynccontextmanager
    async def warmed(_: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(NewsarchiveError):  # no index yet: requests get 503 until one is built
            served.latest().embedder.embed_queries(["warm up"])  # the model loads now, not on the first request
        async with assistants.session_manager.run():
            yield

    app = FastAPI(
        lifespan=warmed,
        title="newsarchive",
        version=version("newsarchive"),
        summary="A news archive's semantic search, cited answers and exact counts.",
        docs_url="/docs",
        redoc_url=None,
    )
    too_large = (
        f"the request's body is over this server's limit: {limits.max_body:,} bytes, and {limits.max_upload:,} for "
        "POST /v1/articles"
    )
    app.add_middleware(JsonErrors, hints={413: too_large})
    app.add_middleware(ServerTiming)

    @app.exception_handler(Problem)
    async def problem(_: Request, error: Problem) -> Response:
        return json_response({"error": error.message}, error.status, error.headers)

    @app.exception_handler(NewsarchiveError)
    async def expected(_: Request, error: NewsarchiveError) -> Response:
        if isinstance(error, IndexNotFound):
            return json_response({"error": str(error)}, 503, {"Retry-After": "60"})
        if isinstance(error, NotFound):
            return json_response({"error": str(error)}, 404)
        if isinstance(error, IndexBusy):
            return json_response({"error": str(error)}, 503, {"Retry-After": "5"})
        return json_response({"error": str(error)}, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
        return json_response({"error": f"{where or 'the request'}: {first.get('msg', 'is not valid')}"}, 400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return json_response({"error": str(error.detail)}, error.status_code, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unforeseen(_: Request, error: Exception) -> Response:
        log.exception("unexpected failure")
        return json_response({"error": f"unexpected failure ({type(error).__name__}); the server's log has more"}, 500)

    def caller(scope: str) -> Any:
        async def check(request: Request) -> str:  # on the event loop: a thread would cost more than the check
            address = request.client.host if request.client else "?"
            who = _authorized(request, keys, scope) if auth else f"address {address}"
            wait = rates.take(who)
            if wait:
                message = f"too many requests for {who}: try again in {wait:.0f} s"
                raise Problem(429, message, {"Retry-After": f"{wait:.0f}"})
            return who

        return Depends(check)

    reader, writer = caller("read"), caller("write")

    def latest() -> Archive:
        return served.latest()

    @app.get("/healthz", summary="Whether the server runs, and its index's commit")
    def healthz() -> Response:
        try:
            commit: int | None = served.latest().commit
        except NewsarchiveError:
            commit = None
        return json_response({"status": "ok", "commit": commit})

    @app.get("/v1/info", dependencies=[reader], summary="The index: model, size, commit (as `info --json`)")
    def info() -> Response:
        from indexer.answers.llm import Generator
        from indexer.retrieval.info import describe

        details = describe(latest())
        details["generator"] = generator.describe() if generator else Generator.configured_description()
        return json_response(details)

    @app.get("/v1/search", dependencies=[reader], summary="The passages that best match q (as `search --json`)")
    def search(
        q: Annotated[str, Query(max_length=10_000, description="A question or keywords, in any language.")],
        k: Annotated[int, Query(ge=1, le=queries.MAX_K)] = 5,
        mode: Mode = "hybrid",
        source: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006 -- FastAPI copies it
        language: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006
        since: date | None = None,
        until: date | None = None,
    ) -> Response:
        return json_response(queries.search(latest(), q, k, mode, source, language, since, until))

    @app.post(
        "/v1/ask",
        dependencies=[reader],
        max_body_size=limits.max_body,
        summary="A cited answer to the question (as `ask --json`)",
    )
    def ask(body: AskBody) -> Response:
        options = body.model_dump(exclude={"question"})
        options["sources"], options["languages"] = options.pop("source"), options.pop("language")
        return json_response(queries.ask(latest(), body.question, generator, **options))

    @app.get("/v1/match", dependencies=[reader], summary="Every article the exact query matches (`search --match`)")
    def match(
        q: Annotated[str, Query(max_length=10_000, description="The exact query language (see `search --help`).")],
        sort: Literal["date", "relevance"] = "date",
        limit: Annotated[int, Query(ge=1, le=MAX_SQL_ROWS)] = 100,
        source: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006
        language: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006
        since: date | None = None,
        until: date | None = None,
    ) -> Response:
        return json_response(queries.match(latest(), q, "GET /v1/match", sort, source, language, since, until, limit))

    @app.get("/v1/coverage", dependencies=[reader], summary="Matching articles per period (`coverage --json`)")
    def coverage(
        q: Annotated[str, Query(max_length=10_000)],
        by: Literal["day", "week", "month", "year"] = "day",
        source: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006
        by_source: bool = False,
        semantic: bool = False,
        threshold: float | None = None,
    ) -> Response:
        from indexer.live.alerts import THRESHOLD

        if threshold is not None and not semantic:
            raise Problem(400, "threshold is for semantic=true")
        margin = (THRESHOLD if threshold is None else threshold) if semantic else None
        report = queries.coverage(
            latest(),
            q,
            "GET /v1/coverage",
            by,
            sources=source,
            by_source=by_source,
            semantic=semantic,
            threshold=margin,
        )
        return json_response(report)

    @app.get("/v1/articles/{article_id}", dependencies=[reader], summary="An article, its passages and its story")
    def article(article_id: str) -> Response:
        return json_response(queries.article(latest(), article_id))

    @app.post(
        "/v1/sql",
        dependencies=[reader],
        max_body_size=limits.max_body,
        summary="Read-only SQL on the archive's tables (`sql --json`)",
    )
    def sql(body: SqlBody) -> Response:
        from indexer.retrieval.sql_functions import people_sql

        archive = latest()
        with people_sql(archive, body.query, body.timeout) as relation:
            if relation is None:
                columns, rows = [], []
            else:
                columns, rows = relation.columns, relation.limit(body.max_rows + 1).fetchall()
        truncated = len(rows) > body.max_rows
        rows = [dict(zip(columns, row)) for row in rows[: body.max_rows]]
        return json_response({"commit": archive.commit, "columns": columns, "rows": rows, "truncated": truncated})

    @app.get("/v1/alerts", dependencies=[reader], summary="The saved alerts, each with how many articles it matched")
    def alerts() -> Response:
        from dataclasses import asdict

        from indexer.live.alerts import listed

        rows = [{**asdict(alert), "matches": count} for alert, count in listed(directory)]
        for row in rows:
            row.pop("webhook", None)  # it may hold a token
        return json_response({"alerts": rows})

    @app.get("/v1/alerts/{name}/matches", dependencies=[reader], summary="What an alert matched, newest first")
    def alert_matches(name: str, since: date | None = None) -> Response:
        from dataclasses import asdict

        from indexer.live.alerts import matches_of

        return json_response({"alert": name, "matches": [asdict(m) for m in matches_of(name, directory, since)]})

    @app.post(
        "/v1/articles",
        dependencies=[writer],
        summary="Add or replace articles (write scope), indexed as `index` does",
        max_body_size=limits.max_upload,
    )
    def add_articles(body: ArticlesBody) -> Response:
        from indexer.ingest.index import API_INPUT, index_paths
        from indexer.live.alerts import run_alerts
        from indexer.reading.article import make_article

        items: list[Any] = []
        seen: set[str] = set()
        for number, posted in enumerate(body.articles, start=1):
            fields = posted.model_dump(exclude_none=True)
            article_id = fields.pop("id")
            try:
                if article_id in seen:
                    raise InputProblem(API_INPUT, f"article id {article_id!r} comes twice in this request", number)
                seen.add(article_id)
                items.append(make_article(API_INPUT, fields, article_id, number))
            except InputProblem as problem:
                items.append(problem)
        try:
            embedder = latest().embedder
        except IndexNotFound:
            embedder = None  # the first articles make the index, with the default model
        report = index_paths([], directory, embedder=embedder, run_alerts=run_alerts, articles=items)
        problems = [{"article": p.line, "reason": p.reason} for p in report.problems]
        counts = {name: getattr(report, name) for name in ("added", "updated", "unchanged", "articles", "passages")}
        return json_response({**counts, "commit": latest().commit, "problems": problems})

    app.router.routes.append(Route("/mcp", _Guarded(tools_app, reader.dependency), include_in_schema=False))
    return app


class _Guarded:
    """An ASGI app behind the API's keys and rates: ``/mcp``, the MCP tools over streamable HTTP."""

    def __init__(self, app: Any, check: Any) -> None:
        self.app, self.check = app, check

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await self.check(Request(scope, receive))
        except Problem as refused:
            await json_response({"error": refused.message}, refused.status, refused.headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _authorized(request: Request, keys: KeyRing, scope: str) -> str:
    """The name of the key the request carries, if it may do ``scope``."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "this server needs a key: Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})
    found: Key | None = keys.find(key.strip())
    if found is None:
        raise Problem(401, "this key is not known here (revoked, or mistyped)", {"WWW-Authenticate": "Bearer"})
    if not found.allows(scope):
        raise Problem(403, f"key {found.name!r} may {found.scope}, not {scope}")
    return f"key {found.name}"
