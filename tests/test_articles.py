"""Reading articles: titles, paragraphs and headings, metadata, JSONL records and the problems bad input gives."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InputProblem
from indexer.reading.article import Article, markdown_paragraphs, plain_paragraphs
from indexer.reading.inputs import Ignored, count_articles, jsonl_parts, read_articles, read_lines
from tests.conftest import SEED

HEADINGS = (
    "Ripresa delle linee telefoniche militari per allentare tensioni tra Mosca e Washington",
    "Nessun passo avanti nei colloqui di pace di Abu Dhabi",
    "Zelenskyy chiede garanzie di sicurezza",
)


def read_all(*paths: Path) -> list[Article | InputProblem]:
    return list(read_articles(paths))


def read_one(path: Path) -> Article:
    (item,) = read_all(path)
    assert isinstance(item, Article), item
    return item


def read_problem(path: Path) -> InputProblem:
    (item,) = read_all(path)
    assert isinstance(item, InputProblem), item
    return item


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# The seed article: one paragraph per line, three short unpunctuated lines as section headings.


@pytest.fixture(scope="module")
def seed() -> Article:
    return read_one(SEED)


@pytest.fixture(scope="module")
def seed_lines() -> list[str]:
    return SEED.read_text(encoding="utf-8").split("\n")


def test_seed_title_is_first_line(seed: Article, seed_lines: list[str]) -> None:
    assert seed.title == seed_lines[0].strip()
    assert seed.title.startswith("Gli Stati Uniti e la Russia hanno concordato di riprendere")
    assert seed.title not in seed.text


def test_seed_paragraphs_are_the_body_lines_except_headings(seed: Article, seed_lines: list[str]) -> None:
    expected = [line.strip() for line in seed_lines[1:] if line.strip() and line.strip() not in HEADINGS]
    assert len(seed.paragraphs) == len(expected) == 17
    assert [seed.text[p.start : p.end] for p in seed.paragraphs] == expected


def test_seed_headings_label_the_paragraphs_below_them(seed: Article, seed_lines: list[str]) -> None:
    expected_headings = []
    heading = None
    for line in (line.strip() for line in seed_lines[1:]):
        if line in HEADINGS:
            heading = line
        elif line:
            expected_headings.append(heading)
    assert [p.heading for p in seed.paragraphs] == expected_headings
    assert expected_headings[:3] == [None, None, None]  # before the first heading
    assert set(expected_headings) == {None, *HEADINGS}


def test_seed_paragraph_spans_are_stripped_file_lines(seed: Article, seed_lines: list[str]) -> None:
    stripped_lines = {line.strip() for line in seed_lines}
    for paragraph in seed.paragraphs:
        text = seed.text[paragraph.start : paragraph.end]
        assert text
        assert text == text.strip()
        assert text in stripped_lines
        assert text not in HEADINGS


def test_article_id_is_the_stem_and_reading_is_stable(seed: Article) -> None:
    again = read_one(SEED)
    assert seed.article_id == SEED.stem == again.article_id
    assert seed.content_hash == again.content_hash
    assert seed == again


def test_content_hash_follows_the_text(tmp_path: Path) -> None:
    path = write(tmp_path / "story.txt", "A title\nThe mayor opened the bridge.\n")
    before = read_one(path)
    write(path, "A title\nThe mayor closed the bridge.\n")
    after = read_one(path)
    assert after.article_id == before.article_id == "story"
    assert after.content_hash != before.content_hash
    write(path, "A title\nThe mayor opened the bridge.\n")
    assert read_one(path).content_hash == before.content_hash


def test_content_hash_follows_metadata(tmp_path: Path) -> None:
    path = write(tmp_path / "story.txt", "A title\nBody.\n")
    before = read_one(path)
    write(tmp_path / "story.meta.json", json.dumps({"source": "Reuters"}))
    assert read_one(path).content_hash != before.content_hash


# Plain text layout.

HARD_WRAPPED = """Bridge reopens after two years

The old bridge over the river reopened on Monday after two years
of repairs, the city said, and traffic was back to normal by the
evening rush hour.

Engineers replaced the steel cables and the deck, which had been
damaged by the flood of 2021.
"""


def test_hard_wrapped_blocks_are_one_paragraph_each(tmp_path: Path) -> None:
    article = read_one(write(tmp_path / "wrapped.txt", HARD_WRAPPED))
    blocks = HARD_WRAPPED.strip().split("\n\n")[1:]
    assert [article.text[p.start : p.end] for p in article.paragraphs] == blocks
    assert [p.heading for p in article.paragraphs] == [None, None]


def test_hard_wrapped_block_ending_lines_with_punctuation_stays_together(tmp_path: Path) -> None:
    """The same layout, where no line could pass for a heading: each block is one paragraph spanning its lines."""
    text = "Title\n\nFirst line of the block,\nsecond line of it.\n\nAnother block;\nwith two lines.\n"
    article = read_one(write(tmp_path / "wrapped.txt", text))
    assert [article.text[p.start : p.end] for p in article.paragraphs] == [
        "First line of the block,\nsecond line of it.",
        "Another block;\nwith two lines.",
    ]


def test_blank_separated_heading_block_labels_what_follows(tmp_path: Path) -> None:
    text = "Title\n\nIntro sentence.\n\nThe Aftermath\n\nFirst after.\n\nSecond after.\n"
    article = read_one(write(tmp_path / "sections.txt", text))
    assert [article.text[p.start : p.end] for p in article.paragraphs] == [
        "Intro sentence.",
        "First after.",
        "Second after.",
    ]
    assert [p.heading for p in article.paragraphs] == [None, "The Aftermath", "The Aftermath"]


def test_title_only_file_is_one_paragraph_of_its_title(tmp_path: Path) -> None:
    article = read_one(write(tmp_path / "short.txt", "Just a headline\n"))
    assert article.title == "Just a headline"
    assert [article.text[p.start : p.end] for p in article.paragraphs] == ["Just a headline"]


def test_leading_whitespace_only_line_is_skipped_before_the_title(tmp_path: Path) -> None:
    article = read_one(write(tmp_path / "indented.txt", "   \nThe real title\nThe body.\n"))
    assert article.title == "The real title"


# Markdown.


def test_markdown_title_sections_and_paragraphs(tmp_path: Path) -> None:
    text = (
        "# Floods in the valley\n"
        "\n"
        "Rain fell for three days\n"
        "without a break.\n"
        "\n"
        "## Rescue\n"
        "\n"
        "Boats reached the village.\n"
        "\n"
        "Helicopters followed.\n"
        "### Costs ###\n"
        "Damage is estimated at millions.\n"
    )
    article = read_one(write(tmp_path / "floods.md", text))
    assert article.article_id == "floods"
    assert article.title == "Floods in the valley"
    assert [(article.text[p.start : p.end], p.heading) for p in article.paragraphs] == [
        ("Rain fell for three days\nwithout a break.", None),
        ("Boats reached the village.", "Rescue"),
        ("Helicopters followed.", "Rescue"),
        ("Damage is estimated at millions.", "Costs"),
    ]


# Metadata.


def test_front_matter_metadata(tmp_path: Path) -> None:
    text = (
        "---\n"
        "id: floods-2023\n"
        "source: Reuters\n"
        "url: https://example.com/floods\n"
        "published: 2023-03-14\n"
        "language: en\n"
        "---\n"
        "# Floods\n"
        "\n"
        "Water everywhere.\n"
    )
    article = read_one(write(tmp_path / "floods.md", text))
    assert article.article_id == "floods-2023"
    assert article.title == "Floods"
    assert (article.source, article.url, article.language) == ("Reuters", "https://example.com/floods", "en")
    assert article.published == datetime(2023, 3, 14, tzinfo=timezone.utc)
    assert article.published.tzinfo is not None
    assert "---" not in article.text


def test_sidecar_metadata_and_aware_date(tmp_path: Path) -> None:
    path = write(tmp_path / "bridge.txt", "Bridge reopens\nTraffic is back.\n")
    meta = {
        "id": "bridge-1",
        "source": "ANSA",
        "url": "https://example.com/b",
        "published": "2024-01-02T03:04:05+02:00",
        "language": "it",
        "unknown": "ignored",
    }
    write(tmp_path / "bridge.meta.json", json.dumps(meta))
    article = read_one(path)
    assert article.article_id == "bridge-1"
    assert (article.source, article.url, article.language) == ("ANSA", "https://example.com/b", "it")
    assert article.published == datetime(2024, 1, 2, 1, 4, 5, tzinfo=timezone.utc)
    assert article.published.utcoffset() == timedelta(hours=2)


def test_sidecar_wins_over_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path / "x.md", "---\nsource: From front matter\nlanguage: en\n---\n# T\n\nBody.\n")
    write(tmp_path / "x.meta.json", json.dumps({"source": "From sidecar"}))
    article = read_one(path)
    assert (article.source, article.language) == ("From sidecar", "en")


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2023-03-14", datetime(2023, 3, 14, tzinfo=timezone.utc)),
        ("2023-03-14T10:30:00", datetime(2023, 3, 14, 10, 30, tzinfo=timezone.utc)),
        ("2023-03-14T10:30:00Z", datetime(2023, 3, 14, 10, 30, tzinfo=timezone.utc)),
        ("14 March 2023", datetime(2023, 3, 14, tzinfo=timezone.utc)),
    ],
)
def test_published_dates_become_aware_datetimes(tmp_path: Path, published: str, expected: datetime) -> None:
    path = write(tmp_path / "d.txt", "T\nBody.\n")
    write(tmp_path / "d.meta.json", json.dumps({"published": published}))
    article = read_one(path)
    assert article.published == expected
    assert article.published.tzinfo is not None


def test_unreadable_date_is_a_problem_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "d.md", "---\npublished: not a date\n---\n# T\n\nBody.\n")
    problem = read_problem(path)
    assert str(path) in str(problem)
    assert "published" in problem.reason


# JSONL.


def jsonl(*records: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


def test_jsonl_one_article_per_line(tmp_path: Path) -> None:
    record = {
        "id": "n1",
        "title": "Markets rally",
        "text": "Stocks rose.\nBonds fell.",
        "source": "Wire",
        "url": "https://example.com/n1",
        "published": "2022-05-01",
        "language": "en",
    }
    path = write(tmp_path / "feed.jsonl", jsonl(record, {"id": "n2", "title": "Second", "text": "Only body."}))
    first, second = read_all(path)
    assert isinstance(first, Article) and isinstance(second, Article)
    assert (first.article_id, first.title, first.source, first.url, first.language) == (
        "n1",
        "Markets rally",
        "Wire",
        "https://example.com/n1",
        "en",
    )
    assert first.published == datetime(2022, 5, 1, tzinfo=timezone.utc)
    assert [first.text[p.start : p.end] for p in first.paragraphs] == ["Stocks rose.", "Bonds fell."]
    assert (second.article_id, second.title, second.text) == ("n2", "Second", "Only body.")


def test_jsonl_bad_lines_are_problems_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.jsonl",
        jsonl(
            {"id": "ok1", "text": "Fine."},
            "this is not json",
            "",
            {"id": "no-text", "title": "Missing text"},
            {"text": "No id given."},
            ["a", "list"],
        ),
    )
    items = read_all(path)
    problems = {item.line: item for item in items if isinstance(item, InputProblem)}
    articles = [item for item in items if isinstance(item, Article)]
    assert set(problems) == {2, 4, 6}
    assert "not JSON" in problems[2].reason
    assert '"text"' in problems[4].reason
    assert all(f"{path}:{line}" in str(problem) for line, problem in problems.items())
    assert [a.article_id for a in articles] == ["ok1", "feed-5"]
    assert articles[1].title == "No id given."


def test_a_jsonl_file_is_read_a_line_at_a_time_and_a_bad_line_spoils_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    lines = [json.dumps({"id": f"a{n}", "text": f"Articolo numero {n}."}).encode() for n in range(3)]
    path.write_bytes(b"\n".join([lines[0], '{"id": "latin", "text": "Perché sì."}'.encode("latin-1"), *lines[1:]]))
    items = read_articles([path])
    assert next(items).article_id == "a0"
    rest = list(items)
    problems = [item for item in rest if isinstance(item, InputProblem)]
    assert [(p.line, "not valid UTF-8" in p.reason) for p in problems] == [(2, True)]
    assert [item.article_id for item in rest if isinstance(item, Article)] == ["a1", "a2"]
    assert count_articles([path, tmp_path / "missing.txt"]) == 4  # lines, read or not; a problem counts nothing


def test_jsonl_id_with_slash_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.jsonl", jsonl({"id": "a/b", "text": "x"}, {"id": "fine", "text": "y"}))
    problem, article = read_all(path)
    assert isinstance(problem, InputProblem) and problem.line == 1
    assert str(path) in str(problem) and "'a/b'" in str(problem)
    assert isinstance(article, Article) and article.article_id == "fine"


def test_jsonl_bad_date_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.jsonl", jsonl({"id": "x", "text": "y", "published": "soon-ish"}))
    problem = read_problem(path)
    assert problem.line == 1 and f"{path}:1" in str(problem) and "published" in problem.reason


# Whole-file problems.


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n\t\n", "empty"),
        ("binary.txt", b"Title\n\x00\x01\x02binary", "binary"),
        ("latin1.txt", "Titolo\nPerché sì.\n".encode("latin-1"), "UTF-8"),
        ("empty.jsonl", b"\n", "empty"),
    ],
)
def test_unreadable_files_are_problems(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    problem = read_problem(path)
    assert problem.path == str(path)
    assert str(problem).startswith(str(path))
    assert reason in problem.reason


def test_utf8_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffTitolo\r\nPrimo paragrafo.\r\nSecondo.\r\n".encode())
    article = read_one(path)
    assert article.title == "Titolo"
    assert [article.text[p.start : p.end] for p in article.paragraphs] == ["Primo paragrafo.", "Secondo."]


def test_unsupported_suffix_given_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path / "report.pdf", "not really a pdf")
    problem = read_problem(path)
    assert str(path) in str(problem) and ".txt" in problem.reason


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.txt"
    problem = read_problem(path)
    assert str(path) in str(problem) and "no such" in problem.reason


def test_duplicate_id_first_file_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a.txt", "First\nBody one.\n")
    second = write(tmp_path / "b.md", "---\nid: a\n---\n# Second\n\nBody two.\n")
    for paths, winner, loser in [((tmp_path,), first, second), ((second, first), second, first)]:
        article, problem = read_all(*paths)
        assert isinstance(article, Article) and article.path == str(winner) and article.article_id == "a"
        assert isinstance(problem, InputProblem) and problem.path == str(loser)
        assert "duplicate" in problem.reason and str(winner) in problem.reason


def test_problems_do_not_stop_the_batch(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "A\nBody.\n")
    (tmp_path / "b.txt").write_bytes(b"")
    write(tmp_path / "c.txt", "C\nBody.\n")
    items = read_all(tmp_path, tmp_path / "missing.md")
    assert [i.article_id for i in items if isinstance(i, Article)] == ["a", "c"]
    assert sorted(Path(i.path).name for i in items if isinstance(i, InputProblem)) == ["b.txt", "missing.md"]


def test_folders_are_walked_recursively_naming_what_they_ignore_but_hidden_files_and_sidecars(tmp_path: Path) -> None:
    write(tmp_path / "top.txt", "Top\nBody.\n")
    write(tmp_path / "top.meta.json", json.dumps({"source": "S"}))
    write(tmp_path / "sub" / "deeper" / "inner.md", "# Inner\n\nBody.\n")
    write(tmp_path / "sub" / "feed.JSONL", jsonl({"id": "j1", "text": "Body."}))
    write(tmp_path / "sub" / "notes.pdf", "ignored in folders")
    write(tmp_path / ".hidden" / "secret.txt", "Secret\nBody.\n")
    write(tmp_path / "sub" / ".draft.txt", "Draft\nBody.\n")
    items = read_all(tmp_path)
    ignored = [i for i in items if isinstance(i, Ignored)]
    assert [(Path(i.path).name, i.reason) for i in ignored] == [("notes.pdf", "not an article file (.pdf)")]
    articles = [i for i in items if not isinstance(i, Ignored)]
    assert all(isinstance(i, Article) for i in articles), items
    assert sorted(i.article_id for i in articles) == ["inner", "j1", "top"]
    assert next(i for i in articles if i.article_id == "top").source == "S"


# Properties of the paragraph splitters.

_LINE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\t", "# Heading", "## Sub ##", "#", "Short heading", "A sentence. Another!", "  x  "]),
)
_BODIES = st.one_of(st.text(), st.lists(_LINE, max_size=12).map("\n".join))


@settings(max_examples=300, deadline=None, database=None)
@given(_BODIES)
def test_paragraph_spans_are_sound(body: str) -> None:
    for split in (plain_paragraphs, markdown_paragraphs):
        paragraphs = split(body)
        previous_end = 0
        for p in paragraphs:
            assert previous_end <= p.start < p.end <= len(body)
            text = body[p.start : p.end]
            assert text == text.strip()
            previous_end = p.end


@pytest.mark.parametrize("lines", [1, 2, 3, 7])
def test_a_jsonl_file_read_in_parts_reads_as_it_does_whole(tmp_path: Path, lines: int) -> None:
    path = tmp_path / "dump.jsonl"
    rows = [json.dumps({"id": f"a{n}", "title": f"T{n}", "text": f"Testo numero {n}.\rancora"}) for n in range(5)]
    rows[2] = "{not json"
    path.write_bytes(("\n".join(rows[:4]) + "\n\n" + rows[4]).encode())  # a blank line, no final newline
    parts = list(jsonl_parts(path, lines))
    assert [part.first for part in parts] == list(range(1, 7, lines))
    in_parts = [str(item) if isinstance(item, InputProblem) else item for p in parts for item in read_lines(p)]
    whole = [str(item) if isinstance(item, InputProblem) else item for item in read_articles([path])]
    assert in_parts == whole and len(whole) == 5


def test_a_jsonl_file_that_cannot_be_cut_says_why(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"\n\n")
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\x01")
    assert [str(p) for p in jsonl_parts(tmp_path / "empty.jsonl", 10)][-1].endswith("empty file")
    assert [str(p) for p in jsonl_parts(tmp_path / "binary.jsonl", 10)] == [
        f"{tmp_path}/binary.jsonl: binary file, not text"
    ]
