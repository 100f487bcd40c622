"""The HTTP API (``newsarchive serve``) through a real uvicorn server on 127.0.0.1: each endpoint against the CLI's
output for the same question, keys, limits, hostile requests, and commits served without a restart."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from indexer.cli.main import cli
from indexer.errors import NewsarchiveError
from indexer.retrieval.archive import Served
from indexer.service import keys
from indexer.service.api import create_app
from indexer.service.limits import Limits
from indexer.service.server import is_loopback, needs_keys
from tests.conftest import SEEDS, FakeEmbedder

pytestmark = pytest.mark.usefixtures("clean_cli_environment")
DEEP = "drone"
for _ in range(30):
    DEEP = f"(word OR NOT {DEEP})"
READY_WITHIN = 60.0  # seconds for uvicorn to listen: generous, for a busy machine


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_WITHIN
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def raw_status(url: str, target: bytes) -> int:
    """The status of a GET of ``target``, sent as it is (httpx refuses to send a URL this long)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
        return int(connection.makefile("rb").readline().split()[1])


def cli_json(*args: str | Path) -> object:
    result = CliRunner().invoke(cli, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def archive(use_fake_model: FakeEmbedder, tmp_path: Path) -> Path:
    directory = tmp_path / "archive"
    result = CliRunner().invoke(cli, ["index", str(SEEDS), "-d", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def api(archive: Path, use_fake_model: FakeEmbedder) -> Iterator[httpx.Client]:
    """A client of the API over the seed archive, without keys."""
    app = create_app(archive, auth=False, served=Served(archive, embedder=use_fake_model))
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def without_commit(data: dict) -> dict:
    """What the API and the CLI both print: the commit is the API's alone, and times differ from run to run."""
    return {key: value for key, value in data.items() if key not in ("commit", "timings")}


def test_search_ask_match_coverage_info_and_sql_answer_as_the_cli_does(api: httpx.Client, archive: Path) -> None:
    question = "what happened to the MQ-9 drone"
    got = api.get("/v1/search", params={"q": question, "k": 3})
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert float(got.headers["server-timing"].removeprefix("app;dur=")) > 0  # the server's own time, in ms
    assert without_commit(got.json()) == cli_json("search", "-k", "3", "--json", question, "-d", archive)

    got = api.post("/v1/ask", json={"question": question})
    assert without_commit(got.json()) == without_commit(cli_json("ask", "--json", question, "-d", archive))
    assert got.json()["generated"] is False and got.json()["question"] == question

    query = 'drone* OR "mar nero"'
    got = api.get("/v1/match", params={"q": query}).json()
    expected = cli_json("search", "--match", "--json", query, "-d", archive)
    assert got["command"] == "GET /v1/match" and got["truncated"] is False
    assert "index" not in got and "index" in expected  # where the server keeps its index is its own business
    assert (got["query"], got["facets"], got["matches"]) == (expected["query"], expected["facets"], expected["matches"])
    assert got["matches"]

    got = api.get("/v1/coverage", params={"q": "drone*", "by": "month"}).json()
    expected = cli_json("coverage", "--json", "drone*", "--by", "month", "-d", archive)
    assert got["periods"] == expected["periods"] and got["commit"] == expected["commit"] and "index" not in got

    got = api.get("/v1/info").json()
    expected = cli_json("info", "--json", "-d", archive)
    assert {k: v for k, v in got.items() if k != "backend_here"} == {
        k: v for k, v in expected.items() if k != "backend_here"
    }

    sql = "SELECT article_id, count(*) AS passages FROM passages GROUP BY article_id ORDER BY article_id"
    got = api.post("/v1/sql", json={"query": sql}).json()
    assert got["rows"] == cli_json("sql", "--json", sql, "-d", archive) and got["truncated"] is False
    got = api.post("/v1/sql", json={"query": "SELECT passage_id FROM passages", "max_rows": 2}).json()
    assert len(got["rows"]) == 2 and got["truncated"] is True


def test_an_article_with_its_passages_and_story(api: httpx.Client) -> None:
    hit = api.get("/v1/search", params={"q": "MQ-9 drone", "k": 1}).json()["hits"][0]
    got = api.get(f"/v1/articles/{hit['article_id']}").json()
    assert got["article"]["article_id"] == hit["article_id"] and "path" not in got["article"]
    assert hit["passage_id"] in [p["passage_id"] for p in got["passages"]]
    body = got["article"]["body"]
    assert all(body[p["char_start"] : p["char_end"]] == p["text"] for p in got["passages"])
    assert got["story"]["story_id"] == got["article"]["story_id"]
    missing = api.get("/v1/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["error"]


def test_alerts_and_their_matches(api: httpx.Client, archive: Path) -> None:
    assert api.get("/v1/alerts").json() == {"alerts": []}
    result = CliRunner().invoke(cli, ["alerts", "add", "drones", "drone", "--mode", "lexical", "-d", str(archive)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["index", str(SEEDS), "-d", str(archive), "--rebuild"])
    assert result.exit_code == 0, result.output
    listed = api.get("/v1/alerts").json()["alerts"]
    assert [(a["name"], a["query"]) for a in listed] == [("drones", "drone")] and "webhook" not in listed[0]
    matches = api.get("/v1/alerts/drones/matches").json()["matches"]
    expected = cli_json("alerts", "show", "drones", "--json", "-d", archive)
    assert [m["article_id"] for m in matches] == [m["article_id"] for m in expected]
    assert api.get("/v1/alerts/nope/matches").status_code == 404


def test_a_commit_is_served_from_the_next_request(api: httpx.Client, archive: Path, tmp_path: Path) -> None:
    before = api.get("/v1/search", params={"q": "zebra crossing in Lugano"}).json()
    extra = tmp_path / "new"
    extra.mkdir()
    (extra / "lugano.txt").write_text("Zebra crossing\n\nA zebra crossing in Lugano was painted blue.", "utf-8")
    result = CliRunner().invoke(cli, ["index", str(extra), "-d", str(archive)])
    assert result.exit_code == 0, result.output
    after = api.get("/v1/search", params={"q": "zebra crossing in Lugano"}).json()
    assert after["commit"] == before["commit"] + 1
    assert after["hits"][0]["article_id"] == "lugano"


def test_twenty_clients_each_see_one_commit_whole_while_a_writer_commits(
    archive: Path, use_fake_model: FakeEmbedder, tmp_path: Path
) -> None:
    """1,000 searches or more from 20 clients while a writer commits 10 articles one by one: every response is a
    200, and the articles it finds are exactly those of the commit it names, never half of a commit."""
    from indexer.ingest.index import index_paths

    served = Served(archive, embedder=use_fake_model)
    app = create_app(archive, auth=False, served=served, limits=Limits(requests_per_minute=0))
    words = ["harbour", "council", "budget", "ferry", "strike", "museum", "vaccine", "bridge", "tunnel", "orchard"]
    done, failures, seen, newest = threading.Event(), [], [], set()

    def write() -> None:
        try:
            for number in range(10):
                text = " ".join(words[(number + i) % len(words)] for i in range(0, 30, 3)) + f" quokka report {number}"
                row = {"id": f"load-{number}", "title": f"Quokka census {number}", "text": text}
                path = tmp_path / f"load-{number}.jsonl"
                path.write_text(json.dumps(row), encoding="utf-8")
                index_paths([path], archive, embedder=use_fake_model)
                deadline = time.monotonic() + READY_WITHIN
                while len(newest) <= number and time.monotonic() < deadline:  # a client has seen this commit
                    time.sleep(0.01)
        finally:
            done.set()

    def read(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not done.is_set() or len(seen) < 1000:
                got = client.get("/v1/search", params={"q": "quokka", "k": 1000, "mode": "lexical"})
                if got.status_code != 200:
                    failures.append(got.text)
                    return
                data = got.json()
                found = {hit["article_id"] for hit in data["hits"] if hit["article_id"].startswith("load-")}
                seen.append((data["commit"], found))
                newest.update(found)

    with serving(app) as url:
        readers = [threading.Thread(target=read, args=(url,)) for _ in range(20)]
        for thread in readers:
            thread.start()
        write()
        for thread in readers:
            thread.join()
    assert failures == [] and len(seen) >= 1000
    by_commit: dict[int, set[frozenset[str]]] = {}
    for commit, found in seen:
        by_commit.setdefault(commit, set()).add(frozenset(found))
    assert all(len(sets) == 1 for sets in by_commit.values())  # one commit, one answer
    made = [len(sets.pop()) for _, sets in sorted(by_commit.items())]
    assert made == sorted(made) and made[-1] == 10 and len(made) >= 10  # each commit was searched
    for _, found in seen:
        assert found == {f"load-{n}" for n in range(len(found))}  # the articles committed so far, in order


@pytest.mark.parametrize(
    ("path", "params", "wanted"),
    [
        ("/v1/search", {"q": "drone", "k": 10**9}, "k: Input should be less than or equal to 1000"),
        ("/v1/search", {"q": "drone", "mode": "psychic"}, "mode:"),
        ("/v1/search", {"q": "   "}, "the query is empty"),
        ("/v1/search", {"q": "drone", "since": "yesterday"}, "since:"),
        ("/v1/match", {"q": '"black sea'}, "at character 1"),
        ("/v1/match", {"q": DEEP}, "the limit is 20"),
        ("/v1/coverage", {"q": "drone", "by": "decade"}, "by:"),
        ("/v1/coverage", {"q": "drone", "threshold": 0.1}, "threshold is for semantic=true"),
    ],
)
def test_a_malformed_request_is_a_400_naming_what_is_wrong(
    api: httpx.Client, path: str, params: dict, wanted: str
) -> None:
    got = api.get(path, params=params)
    assert got.status_code == 400 and got.headers["content-type"] == "application/json"
    assert wanted in got.json()["error"] and "Traceback" not in got.text
    assert api.get("/healthz").json()["status"] == "ok"


def test_control_characters_in_a_request_come_back_inert(api: httpx.Client) -> None:
    """A query holding terminal controls, NUL and a right-to-left override is answered, and echoed escaped."""
    hostile = "drone\x00\x1b[2J\x9b31m\u202e"
    for path in ("/v1/search", "/v1/match", "/v1/coverage"):
        got = api.get(path, params={"q": hostile})
        assert got.status_code == 200, got.text
        assert not any(c in got.text for c in "\x00\x1b\x9b\u202e") and got.json()["query"].startswith("drone")
    got = api.post("/v1/sql", json={"query": "SELECT '\x1b[2J\u202e' AS x"})
    assert got.status_code == 200 and "\x1b" not in got.text and got.json()["rows"] == [{"x": "\x1b[2J\u202e"}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('keys.json')",
        "COPY passages TO '/tmp/newsarchive-leak.csv'",
        "DELETE FROM articles",
        "ATTACH '/tmp/other.duckdb' AS other",
        "INSTALL httpfs",
    ],
)
def test_sql_that_reads_files_or_writes_is_refused(api: httpx.Client, sql: str) -> None:
    got = api.post("/v1/sql", json={"query": sql})
    assert got.status_code == 400 and "Traceback" not in got.text
    assert not Path("/tmp/newsarchive-leak.csv").exists()
    assert api.post("/v1/sql", json={"query": "SELECT count(*) AS n FROM articles"}).status_code == 200


def test_sql_past_its_time_limit_is_stopped(api: httpx.Client) -> None:
    slow = "SELECT count(*) FROM range(10000000000) a, range(1000000) b"
    got = api.post("/v1/sql", json={"query": slow, "timeout": 0.5})
    assert got.status_code == 400 and "stopped after 0.5 s" in got.json()["error"]
    assert api.post("/v1/sql", json={"query": slow, "timeout": 10**6}).status_code == 400  # past the server's limit


def test_huge_requests_are_refused_and_the_server_goes_on(archive: Path, use_fake_model: FakeEmbedder) -> None:
    app = create_app(archive, auth=False, served=Served(archive, embedder=use_fake_model), limits=Limits(max_body=4096))
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as api:
        got = api.post("/v1/sql", json={"query": "SELECT 1 --" + "x" * 10_000})
        assert got.status_code == 413 and "4,096 bytes" in got.json()["error"]
        chunks = (b'{"query": "SELECT 1 --' + b"x" * 1000 for _ in range(10))  # no length declared
        got = api.post("/v1/sql", content=chunks, headers={"content-type": "application/json"})
        assert got.status_code == 413 and got.headers["content-type"] == "application/json"
        assert 400 <= raw_status(url, b"/v1/search?q=" + b"drone+" * 200_000) < 500  # a 1.2 MB query string
        got = api.get("/v1/search", params={"q": "d" * 10_001})
        assert got.status_code == 400 and "at most 10000 characters" in got.json()["error"]
        assert api.get("/v1/search", params={"q": "drone"}).status_code == 200


def test_keys_missing_wrong_revoked_and_read_only(archive: Path, use_fake_model: FakeEmbedder) -> None:
    reader = keys.create(archive, "factcheck", "read")
    writer = keys.create(archive, "cms", "write")
    stored = (archive / "keys.json").read_text()
    assert reader not in stored and writer not in stored and keys.digest(reader) in stored
    assert stat.S_IMODE(os.stat(archive / "keys.json").st_mode) == 0o600
    app = create_app(archive, auth=True, served=Served(archive, embedder=use_fake_model))
    article = {"articles": [{"id": "posted-1", "title": "A test", "text": "A drone was seen over Lugano."}]}
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as api:
        assert api.get("/healthz").status_code == 200  # no key needed to know it runs
        missing = api.get("/v1/search", params={"q": "drone"})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = api.get("/v1/search", params={"q": "drone"}, headers={"Authorization": "Bearer nak_guess"})
        assert wrong.status_code == 401
        as_reader = {"Authorization": f"Bearer {reader}"}
        assert api.get("/v1/search", params={"q": "drone"}, headers=as_reader).status_code == 200
        forbidden = api.post("/v1/articles", json=article, headers=as_reader)
        assert forbidden.status_code == 403 and "factcheck" in forbidden.json()["error"]
        posted = api.post("/v1/articles", json=article, headers={"Authorization": f"Bearer {writer}"})
        assert posted.status_code == 200 and posted.json()["added"] == 1, posted.text
        keys.revoke(archive, "factcheck")
        assert api.get("/v1/search", params={"q": "drone"}, headers=as_reader).status_code == 401
        leak = api.post(
            "/v1/sql",
            json={"query": f"SELECT * FROM read_text('{archive / 'keys.json'}')"},
            headers={"Authorization": f"Bearer {writer}"},
        )
        assert leak.status_code == 400 and keys.digest(writer) not in leak.text


def test_keys_made_before_the_index_leave_room_for_it(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    directory = tmp_path / "new"
    key = keys.create(directory, "early", "read")
    result = CliRunner().invoke(cli, ["index", str(SEEDS), "-d", str(directory)])
    assert result.exit_code == 0, result.output
    assert keys.KeyRing(directory).find(key).name == "early"


def test_keys_from_the_command_line(archive: Path) -> None:
    created = CliRunner().invoke(cli, ["keys", "create", "desk", "--scope", "write", "-d", str(archive)])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("nak_") and len(key) > 40 and keys.KeyRing(archive).find(key).name == "desk"
    again = CliRunner().invoke(cli, ["keys", "create", "desk", "-d", str(archive)])
    assert again.exit_code == 1 and "revoke it first" in again.output
    listed = cli_json("keys", "list", "--json", "-d", archive)
    assert [(k["name"], k["scope"]) for k in listed] == [("desk", "write")] and key not in json.dumps(listed)
    bad = CliRunner().invoke(cli, ["keys", "create", "../etc", "-d", str(archive)])
    assert bad.exit_code == 1 and "is not a key name" in bad.output
    assert CliRunner().invoke(cli, ["keys", "revoke", "desk", "-d", str(archive)]).exit_code == 0
    assert keys.KeyRing(archive).find(key) is None


def test_serving_beyond_loopback_needs_keys_or_no_auth(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("127.0.0.2.example.org")
    with pytest.raises(NewsarchiveError, match="keys create"):
        needs_keys(tmp_path, "0.0.0.0", no_auth=False)
    assert needs_keys(tmp_path, "0.0.0.0", no_auth=True) is False
    assert needs_keys(tmp_path, "127.0.0.1", no_auth=False) is False
    keys.create(tmp_path, "desk", "read")
    assert needs_keys(tmp_path, "127.0.0.1", no_auth=False) is True
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "-d", str(tmp_path / "other")])
    assert refused.exit_code == 1 and "--no-auth" in refused.output and "Traceback" not in refused.output


def test_past_its_rate_a_key_waits(archive: Path, use_fake_model: FakeEmbedder) -> None:
    app = create_app(
        archive, auth=False, served=Served(archive, embedder=use_fake_model), limits=Limits(requests_per_minute=3)
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as api:
        statuses = [api.get("/v1/search", params={"q": "drone"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = api.get("/v1/info")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_without_an_index_503_until_articles_make_one(tmp_path: Path, use_fake_model: FakeEmbedder) -> None:
    directory = tmp_path / "empty"
    app = create_app(directory, auth=False)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as api:
        assert api.get("/healthz").json() == {"status": "ok", "commit": None}
        missing = api.get("/v1/search", params={"q": "drone"})
        assert missing.status_code == 503 and "no index" in missing.json()["error"].lower()
        articles = [
            {"id": "a-1", "title": "Drone", "text": "A drone fell into the Black Sea.", "source": "Wire"},
            {"id": "a-1", "title": "Again", "text": "The same id twice."},
            {"id": "bad/id", "title": "Bad", "text": "An id with a slash."},
        ]
        posted = api.post("/v1/articles", json={"articles": articles})
        assert posted.status_code == 200, posted.text
        report = posted.json()
        assert report["added"] == 1 and [p["article"] for p in report["problems"]] == [2, 3]
        hits = api.get("/v1/search", params={"q": "drone Black Sea"}).json()["hits"]
        assert [h["article_id"] for h in hits] == ["a-1"] and hits[0]["source"] == "Wire"
    pruned = CliRunner().invoke(cli, ["index", str(SEEDS), "--prune", "-d", str(directory)])
    assert pruned.exit_code == 0, pruned.output
    assert "a-1" in {
        row["article_id"] for row in cli_json("sql", "--json", "SELECT article_id FROM articles", "-d", directory)
    }


@pytest.mark.model
def test_newsarchive_serve_with_the_real_model_answers_as_the_cli(real_seed_index: Path, tmp_path: Path) -> None:
    """The command itself, two worker processes with the default model each, with a key; the same hits and the
    same answer as the CLI's for English and Russian questions over the Italian seed article; then a commit made by
    `index` is what every request sees, on new connections (which either process may take)."""
    import shutil
    import subprocess
    import sys

    directory = tmp_path / "archive"
    shutil.copytree(real_seed_index, directory)
    key = keys.create(directory, "desk", "read")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "indexer.cli.main", "serve", "-d", str(directory), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the model loads before the server listens
        authorized = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, timeout=120, headers=authorized) as api:
            while True:
                assert server.poll() is None, server.stderr.read()
                with contextlib.suppress(httpx.TransportError):
                    if api.get("/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "newsarchive serve did not start"
                time.sleep(0.2)
            for question in ("what happened to the MQ-9 drone", "Что случилось с беспилотником MQ-9?"):
                got = api.get("/v1/search", params={"q": question, "k": 3}).json()
                assert without_commit(got) == cli_json("search", "-k", "3", "--json", question, "-d", directory)
                answer = api.post("/v1/ask", json={"question": question}).json()
                assert answer["found"] and "MQ-9" in answer["sources"][0]["text"]
                expected = without_commit(cli_json("ask", "--json", question, "-d", directory))
                assert without_commit(answer) == expected
            assert (
                api.get("/v1/search", params={"q": "drone"}, headers={"Authorization": "Bearer x"}).status_code == 401
            )
            before = api.get("/v1/search", params={"q": "drone"}).json()["commit"]
        extra = tmp_path / "new"
        extra.mkdir()
        (extra / "lugano.txt").write_text("Zebra crossing\n\nA zebra crossing in Lugano was painted blue.", "utf-8")
        result = CliRunner().invoke(cli, ["index", str(extra), "-d", str(directory)])
        assert result.exit_code == 0, result.output
        for _ in range(10):
            got = httpx.get(
                f"{url}/v1/search", params={"q": "zebra crossing in Lugano"}, headers=authorized, timeout=120
            )
            assert got.json()["commit"] == before + 1 and got.json()["hits"][0]["article_id"] == "lugano"
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_mcp_tools_over_http_behind_the_keys(archive: Path, use_fake_model: FakeEmbedder) -> None:
    """The MCP SDK's own client at /mcp: list the tools, call each; the same answers as the API's."""
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    key = keys.create(archive, "assistant", "read")
    app = create_app(archive, auth=True, served=Served(archive, embedder=use_fake_model))

    async def session(url: str, headers: dict[str, str]) -> dict:
        transport = streamable_http_client(f"{url}/mcp", http_client=create_mcp_http_client(headers=headers))
        async with Client(transport) as client:
            tools = sorted(tool.name for tool in (await client.list_tools()).tools)
            calls = {
                "search": {"query": "MQ-9 drone", "k": 2},
                "ask": {"question": "what happened to the MQ-9 drone"},
                "match": {"query": "drone*"},
                "coverage": {"query": "drone*", "by": "month"},
            }
            results = {name: (await client.call_tool(name, arguments)) for name, arguments in calls.items()}
            article = results["search"].structured_content["hits"][0]["article_id"]
            results["get_article"] = await client.call_tool("get_article", {"article_id": article})
            results["missing"] = await client.call_tool("get_article", {"article_id": "no-such-article"})
            return {"tools": tools, **results}

    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as api:
        refused = api.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401 and "key" in refused.json()["error"]
        got = anyio.run(session, url, {"Authorization": f"Bearer {key}"})
        as_reader = {"Authorization": f"Bearer {key}"}
        assert got["tools"] == ["ask", "coverage", "get_article", "match", "search"]
        search = api.get("/v1/search", params={"q": "MQ-9 drone", "k": 2}, headers=as_reader).json()
        assert got["search"].structured_content == search
        answer = api.post("/v1/ask", json={"question": "what happened to the MQ-9 drone"}, headers=as_reader).json()
        assert without_commit(got["ask"].structured_content) == without_commit(answer)
        matched = api.get("/v1/match", params={"q": "drone*"}, headers=as_reader).json()
        assert got["match"].structured_content["matches"] == matched["matches"] and matched["matches"]
        periods = api.get("/v1/coverage", params={"q": "drone*", "by": "month"}, headers=as_reader).json()["periods"]
        assert got["coverage"].structured_content["periods"] == periods
        article = got["get_article"].structured_content
        assert article["article"]["article_id"] == search["hits"][0]["article_id"] and article["passages"]
        assert got["missing"].is_error and "no-such-article" in got["missing"].content[0].text


@pytest.mark.model
def test_newsarchive_mcp_over_stdio_with_the_real_model(real_seed_index: Path) -> None:
    """`newsarchive mcp` as a desktop assistant starts it, through the SDK's stdio client: the tools, and a
    Russian question answered from the Italian article."""
    import sys

    import anyio
    from mcp import Client, StdioServerParameters

    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "indexer.cli.main", "mcp", "--index-dir", str(real_seed_index)],
        env={**os.environ, "NEWSARCHIVE_LLM_URL": ""},
    )

    async def session() -> tuple[list[str], dict, dict]:
        async with Client(command, read_timeout_seconds=300) as client:
            tools = sorted(tool.name for tool in (await client.list_tools()).tools)
            search = await client.call_tool("search", {"query": "Что случилось с беспилотником MQ-9?", "k": 3})
            answer = await client.call_tool("ask", {"question": "Что случилось с беспилотником MQ-9?"})
            return tools, search.structured_content, answer.structured_content

    tools, search, answer = anyio.run(session)
    assert tools == ["ask", "coverage", "get_article", "match", "search"]
    expected = cli_json("search", "-k", "3", "--json", "Что случилось с беспилотником MQ-9?", "-d", real_seed_index)
    assert without_commit(search) == expected
    assert answer["found"] and "MQ-9" in answer["sources"][0]["text"]
