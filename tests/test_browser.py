"""The app as a person sees it: served by Streamlit, driven in headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.model
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("streamlit did not become healthy")


def _serve(index: Path, **environment: str):
    """The app on a free port over ``index`` (with ``environment`` set), until the generator is closed."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "search_app" / "streamlit_app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env={**os.environ, "NEWSARCHIVE_INDEX_DIR": str(index), **environment},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def app_url(real_seed_index: Path):
    yield from _serve(real_seed_index)


@pytest.fixture(scope="module")
def stories_app_url(real_stories_index: Path):
    yield from _serve(real_stories_index)


@pytest.fixture(scope="module")
def generating_app_url(real_seed_index: Path):
    """The app with a language model configured: a scripted endpoint (tests/test_app.py's reply)."""
    from tests.chat_server import ChatServer
    from tests.test_app import generated_reply

    server = ChatServer(generated_reply)
    try:
        yield from _serve(real_seed_index, NEWSARCHIVE_LLM_URL=server.url, NEWSARCHIVE_LLM_MODEL="scripted")
    finally:
        server.close()


def _open(playwright, url: str, question: str):
    """A browser and a page of the app at ``url`` with ``question`` typed in, ready to ask."""
    from playwright.sync_api import expect

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    box = page.get_by_label("Question")
    expect(box).to_be_visible(timeout=120_000)  # the first load also loads the model
    box.fill(question)
    return browser, page


def test_question_to_cited_answer_in_the_browser(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = _open(playwright, app_url, "what happened to the MQ-9 drone")
        started = time.perf_counter()
        page.get_by_role("button", name="Ask", exact=True).click()
        answer = page.locator(".na-answer")
        expect(answer).to_be_visible(timeout=60_000)
        seconds = time.perf_counter() - started
        expect(answer).to_contain_text("MQ-9")
        expect(answer).to_contain_text("[1]")
        card = page.locator(".na-meta").filter(has_text="[1]").first
        expect(card).to_contain_text("¶ 7")
        expect(page.get_by_text("Retrieved in")).to_be_visible()  # the page has finished rendering
        page.screenshot(path=str(ARTIFACTS / "app-answer.png"), full_page=True)
        browser.close()
    (ARTIFACTS / "app-answer-seconds.txt").write_text(f"{seconds:.2f}\n")
    print(f"question to rendered answer: {seconds:.2f} s; screenshot in {ARTIFACTS / 'app-answer.png'}")


def test_a_story_told_elsewhere_and_the_timeline_in_the_browser(stories_app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = _open(playwright, stories_app_url, "What did the Pentagon release after the drone crash?")
        page.get_by_role("button", name="Ask", exact=True).click()
        also = page.locator(".na-also").first
        expect(also).to_be_visible(timeout=60_000)
        expect(also).to_contain_text("Also in: Corriere del Porto (it) 2023-03-16")
        expect(page.locator(".na-also a").first).to_have_attribute("href", re.compile(r"^https://"))
        page.get_by_text("On a timeline").click()
        days = page.locator(".na-day")
        expect(days.first).to_have_text("Tuesday 14 March 2023", timeout=30_000)
        assert days.all_inner_texts()[:2] == ["Tuesday 14 March 2023", "Thursday 16 March 2023"]
        assert set(days.all_inner_texts()[2:]) <= {"Undated"}  # the seed article, which has no date, comes last
        page.screenshot(path=str(ARTIFACTS / "app-timeline.png"), full_page=True)
        browser.close()


@pytest.fixture(scope="module")
def dated_app_url(tmp_path_factory: pytest.TempPathFactory, real_model):
    from indexer.ingest.index import index_paths

    directory = tmp_path_factory.mktemp("dated-app") / "archive"
    index_paths([ROOT / "tests" / "fixtures" / "dated" / "articles.jsonl"], directory, embedder=real_model)
    yield from _serve(directory)


def test_explore_charts_coverage_and_a_period_opens_its_articles(dated_app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(f"{dated_app_url}/explore?q=drone&by=month")
        expect(page.get_by_text("dated articles match")).to_be_visible(timeout=120_000)
        expect(page.get_by_label("Exact query", exact=True).and_(page.locator("input"))).to_have_value("drone")
        chart = page.locator(".vega-embed").first
        expect(chart).to_be_visible(timeout=30_000)
        expect(page.locator(".na-meta")).to_have_count(6)  # every match, the undated one too
        # A click on February's bar (the middle one of three; one match of five in January) lists February's.
        box = chart.bounding_box()  # the bars stand on the x axis at 2/3 of the chart's height; February's is 1 high
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.6)
        expect(page.locator(".na-meta")).to_have_count(1, timeout=30_000)
        expect(page.locator(".na-meta").first).to_contain_text("Droni sul porto di Odessa")
        expect(page).to_have_url(re.compile(r"period=2025-02-01"))
        page.screenshot(path=str(ARTIFACTS / "app-explore.png"), full_page=True)
        # The URL alone shows the same view.
        again = browser.new_page(viewport={"width": 1280, "height": 1400})
        again.goto(page.url)
        expect(again.locator(".na-meta")).to_have_count(1, timeout=120_000)
        expect(again.locator(".na-meta").first).to_contain_text("Droni sul porto di Odessa")
        browser.close()


def test_a_verified_generated_answer_in_the_browser(generating_app_url: str) -> None:
    """Screenshot: test-artifacts/app-generated-answer.png, the verified sentence with its quote highlighted, and
    the sentence the verifier removed counted below it."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = _open(playwright, generating_app_url, "What happened to the MQ-9 drone?")
        page.get_by_role("button", name="Ask", exact=True).click()
        answer = page.locator(".na-answer")
        expect(answer).to_be_visible(timeout=60_000)
        expect(answer).to_contain_text("US forces said they had to abandon an MQ-9 drone")
        expect(answer).not_to_contain_text("missile")
        removed = page.get_by_text("1 sentence removed: not found in their sources")
        expect(removed).to_be_visible()
        removed.click()
        expect(page.locator(".na-removed")).to_contain_text("its quote is not in source 1")
        expect(page.locator(".na-passage mark").first).to_contain_text("abbandonare un drone MQ-9 Breacher")
        expect(page.get_by_text("Retrieved in")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "app-generated-answer.png"), full_page=True)
        browser.close()
