"""Reading articles from files and URLs (text, Markdown, JSONL, HTML, feeds), with metadata and paragraphs."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.errors import InputProblem, Note
from indexer.reading import web
from indexer.reading.article import (
    METADATA_KEYS,
    Article,
    build_article,
    first_line,
    is_text,
    markdown_paragraphs,
    plain_paragraphs,
    printable_path,
    split_title,
)

SUFFIXES = (".txt", ".md", ".jsonl", *web.HTML_SUFFIXES, ".rss", ".atom")
# .xml is read as a feed when named; in a folder, only when it starts as a feed does: folders hold other XML too.
NAMED_SUFFIXES = (*SUFFIXES, ".xml")
SIDECAR = ".meta.json"  # a .txt or .md file's metadata, read with it
# No news article comes near this; a bigger file is a book, a dump or a mistake, and would take hours to embed.
MAX_ARTICLE_BYTES = 5_000_000
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.S)


class Ignored(Note):
    """A file in a folder that is not read, and why (a photo beside the articles, an XML file that is not a feed).

    A note for the run's output, not a failure: a folder may hold other files, and a run that met only these
    succeeds. Hidden files and ``*.meta.json`` sidecars are passed over without one.
    """

    label = "ignored"


def find_files(paths: Iterable[str | Path]) -> Iterator[Path | str | InputProblem]:
    """Expand files and folders into article files, in a stable order; URLs (``http(s)://``) pass through.

    Folders are walked recursively for the known suffixes, and for ``.xml`` files that start as an RSS or Atom
    feed does; every other file is :class:`Ignored`, except hidden files and ``*.meta.json`` sidecars. A file whose
    name is not valid UTF-8 cannot be stored by name: it is an :class:`InputProblem` (once per folder so named).
    """
    for given in paths:
        if isinstance(given, str) and web.is_url(given):
            yield given
            continue
        path = Path(given)
        if _bad_name(path):
            yield _misnamed(Path(), path.parts)
        elif path.is_dir():
            misnamed: set[str] = set()
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path).parts
                if any(part.startswith(".") for part in relative) or found.name.lower().endswith(SIDECAR):
                    continue
                if not found.is_file():
                    continue
                item = _walked(found)
                if isinstance(item, Ignored) or not _bad_name(found):
                    yield item
                elif (problem := _misnamed(path, relative)).path not in misnamed:
                    misnamed.add(problem.path)
                    yield problem
        elif path.is_file():
            if path.suffix.lower() in NAMED_SUFFIXES:
                yield path
            else:
                yield InputProblem(str(path), f"unsupported file type; expected one of {', '.join(NAMED_SUFFIXES)}")
        else:
            yield InputProblem(str(path), "no such file or folder")


def _walked(path: Path) -> Path | Ignored:
    """A file met in a folder: an article file, or why it is not read."""
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return path
    if suffix == ".xml":
        try:
            with path.open("rb") as file:
                start = file.read(4000)
        except OSError:
            return path  # reading it says what is wrong
        if web.looks_like_feed(start):
            return path
        return Ignored(printable_path(path), "XML that is not an RSS or Atom feed")
    return Ignored(printable_path(path), f"not an article file ({suffix or 'no suffix'})")


def _bad_name(path: Path) -> bool:
    return not is_text(str(path))  # the bytes of a name that is not UTF-8 come as surrogates


def _misnamed(root: Path, parts: tuple[str, ...]) -> InputProblem:
    """The problem of the first file or folder of ``root / parts`` whose name is not UTF-8."""
    where = root
    for part in parts:
        where = where / part
        if _bad_name(Path(part)):
            break
    kind = "folder" if where.is_dir() else "file"
    return InputProblem(printable_path(where), f"the {kind} name is not valid UTF-8, so it cannot be stored: rename it")


def count_articles(paths: Iterable[str | Path]) -> int:
    """About how many articles ``paths`` hold, without reading them: a line of a JSONL file, a file, a URL each
    (a feed holds more). For progress bars."""
    count = 0
    for item in find_files(paths):
        if isinstance(item, Path) and item.suffix.lower() == ".jsonl":
            try:
                with item.open("rb") as file:
                    count += sum(1 for line in file if line.strip())
            except OSError:
                pass  # read_articles reports it
        elif not isinstance(item, InputProblem):
            count += 1
    return count


def read_articles(paths: Iterable[str | Path]) -> Iterator[Article | InputProblem]:
    """Read every article below ``paths`` and at the URLs among them; what cannot be read is an :class:`InputProblem`.

    An article id met a second time in the same run is a problem too: the first article keeps it.
    """
    seen: dict[str, str] = {}
    for item in find_files(paths):
        if isinstance(item, InputProblem):
            yield item
            continue
        for article in read_item(item):
            if isinstance(article, Article):
                if article.article_id in seen:
                    article = InputProblem(
                        article.path,
                        f"duplicate article id {article.article_id!r} (first in {seen[article.article_id]})",
                        article.line,
                    )
                else:
                    seen[article.article_id] = f"{article.path}:{article.line}" if article.line else article.path
            yield article


def read_item(item: Path | str) -> Iterator[Article | InputProblem]:
    """The articles of one article file or URL (as :func:`find_files` gives them), or what is wrong."""
    return web.read_url(item) if isinstance(item, str) else _read_file(item)


def _read_file(path: Path) -> Iterator[Article | InputProblem]:
    if path.suffix.lower() == ".jsonl":
        yield from _read_jsonl(path)
        return
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_BYTES:
            yield InputProblem(str(path), f"{_too_large(size)}; split it into articles")
            return
        raw = path.read_bytes()
    except OSError as error:
        yield InputProblem(str(path), f"cannot read: {error.strerror or error}")
        return
    if b"\x00" in raw[:8192]:
        yield InputProblem(str(path), "binary file, not text")
        return
    suffix = path.suffix.lower()
    if suffix in web.HTML_SUFFIXES or suffix in web.FEED_SUFFIXES:  # bytes: they declare their own encoding
        yield from web.read_document(str(path), raw, feed=suffix in web.FEED_SUFFIXES)
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        yield InputProblem(str(path), f"not valid UTF-8 (byte {error.start}); save it as UTF-8")
        return
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        yield InputProblem(str(path), "empty file")
        return
    try:
        yield _read_document(path, text)
    except InputProblem as problem:
        yield problem


def _too_large(size: int) -> str:
    return f"too large for one article ({size / 1e6:.1f} MB; the limit is {MAX_ARTICLE_BYTES / 1e6:.0f} MB)"


def _read_document(path: Path, text: str) -> Article:
    """A ``.txt`` or ``.md`` file: optional front matter, a title, then the body."""
    meta = _sidecar_metadata(path)
    match = _FRONT_MATTER.match(text)
    if match:
        meta = {**_front_matter(path, match.group(1)), **meta}
        text = text[match.end() :]
    markdown = path.suffix.lower() == ".md"
    title, body = split_title(text, markdown)
    title = str(meta.get("title") or title)
    paragraphs = markdown_paragraphs(body) if markdown else plain_paragraphs(body)
    if not title:
        raise InputProblem(str(path), "no title: the first non-empty line should be the title")
    return build_article(path, meta, str(meta.get("id") or path.stem), title, body, paragraphs)


def _read_jsonl(path: Path) -> Iterator[Article | InputProblem]:
    """One article per line, read a line at a time: a dump of millions of articles is never in memory at once."""
    for line in _jsonl_lines(path):
        if isinstance(line, InputProblem):
            yield line
        else:
            yield from _read_jsonl_line(path, line[1], line[0])


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes, int] | InputProblem]:
    """(number, line, offset after it) of each line of a JSONL file, or what makes it unreadable as one."""
    try:
        with path.open("rb") as file:
            if b"\x00" in file.read(8192):
                yield InputProblem(str(path), "binary file, not text")
                return
            file.seek(0)
            empty, offset = True, 0
            for number, raw in enumerate(file, start=1):
                empty = empty and not raw.strip()
                offset += len(raw)
                yield number, raw, offset
    except OSError as error:
        yield InputProblem(str(path), f"cannot read: {error.strerror or error}")
        return
    if empty:
        yield InputProblem(str(path), "empty file")


@dataclass(frozen=True)
class Lines:
    """Lines from ``first`` (1-based) of a JSONL file, bytes ``start`` to ``end``: part of a file read apart."""

    path: Path
    start: int
    end: int
    first: int


def jsonl_parts(path: Path, lines: int) -> Iterator[Lines | InputProblem]:
    """A JSONL file cut every ``lines`` lines, to be read in parts (:func:`read_lines`); or why it cannot be."""
    start, first, end = 0, 1, 0
    for line in _jsonl_lines(path):
        if isinstance(line, InputProblem):
            if end > start:  # an error after some lines: those are still read, as a whole read does
                yield Lines(path, start, end, first)
                start = end
            yield line
            continue
        number, _, end = line
        if number - first + 1 == lines:
            yield Lines(path, start, end, first)
            start, first = end, number + 1
    if end > start:
        yield Lines(path, start, end, first)


def read_lines(part: Lines) -> Iterator[Article | InputProblem]:
    """The articles of part of a JSONL file, as :func:`read_articles` reads them from the whole file."""
    try:
        with part.path.open("rb") as file:
            file.seek(part.start)
            raws = list(io.BytesIO(file.read(part.end - part.start)))  # lines as iterating the file gives them
    except OSError as error:
        yield InputProblem(str(part.path), f"cannot read: {error.strerror or error}")
        return
    for number, raw in enumerate(raws, start=part.first):
        yield from _read_jsonl_line(part.path, raw, number)


def _read_jsonl_line(path: Path, raw: bytes, number: int) -> Iterator[Article | InputProblem]:
    if len(raw) > MAX_ARTICLE_BYTES:
        yield InputProblem(str(path), _too_large(len(raw)), number)
        return
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        yield InputProblem(str(path), f"not valid UTF-8 (byte {error.start} of the line); save it as UTF-8", number)
        return
    if not line.strip():
        return
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        yield InputProblem(str(path), f"not JSON ({error.msg})", number)
        return
    except RecursionError:
        yield InputProblem(str(path), "JSON nested too deeply to read", number)
        return
    except ValueError as error:  # a number of thousands of digits
        yield InputProblem(str(path), f"not JSON that can be read ({error})", number)
        return
    if not isinstance(record, dict):
        yield InputProblem(str(path), "not a JSON object", number)
        return
    body = record.get("text")
    if not isinstance(body, str) or not body.strip():
        yield InputProblem(str(path), 'no "text" (a non-empty string)', number)
        return
    body = body.replace("\r\n", "\n").strip()
    title = record.get("title") or first_line(body)
    meta = {key: record[key] for key in METADATA_KEYS if record.get(key) is not None}
    try:
        article_id = str(meta.get("id") or f"{path.stem}-{number}")
        yield build_article(path, meta, article_id, str(title), body, plain_paragraphs(body), number)
    except InputProblem as problem:
        yield problem


def _sidecar_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(path.stem + ".meta.json")
    if not sidecar.exists():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except RecursionError:
        raise InputProblem(str(sidecar), "cannot read metadata: JSON nested too deeply") from None
    except (OSError, ValueError) as error:
        raise InputProblem(str(sidecar), f"cannot read metadata: {error}") from None
    if not isinstance(meta, dict):
        raise InputProblem(str(sidecar), "metadata must be a JSON object")
    return {key: meta[key] for key in METADATA_KEYS if meta.get(key) is not None}


def _front_matter(path: Path, block: str) -> dict[str, Any]:
    import yaml

    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as error:
        raise InputProblem(str(path), f"front matter is not valid YAML ({error.__class__.__name__})") from None
    except RecursionError:
        raise InputProblem(str(path), "front matter is nested too deeply to read") from None
    if not isinstance(meta, dict):
        raise InputProblem(str(path), "front matter must be a mapping of key: value lines")
    return {key: meta[key] for key in METADATA_KEYS if meta.get(key) is not None}
