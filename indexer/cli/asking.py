"""Questions put to the archive: ``search``, ``ask``, and ``eval``, which measures how well they are answered."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import click

from indexer.cli import common  # common.filters: the name alone is the commands' **filters
from indexer.cli.common import (
    MODES,
    echo,
    emit,
    filter_options,
    index_dir_option,
    mode_option,
    model_option,
    plural,
    with_export_options,
)
from indexer.cli.counting import match
from indexer.terminal import inert_json


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("-k", "--top", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the query and its hits.")
@click.option("--match", "exact", is_flag=True, help="Every article QUERY matches exactly (the query language above).")
@click.option(
    "--sort", type=click.Choice(["date", "relevance"]), default="date", show_default=True, help="--match: the order."
)
@with_export_options
@mode_option
@filter_options
@index_dir_option
@model_option
def search(
    query: tuple[str, ...],
    k: int,
    as_json: bool,
    exact: bool,
    sort: str,
    as_csv: bool,
    parquet: Path | None,
    mode: str,
    index_dir: Path,
    model: str | None,
    **filters: Any,
) -> None:
    """Find the passages that best match QUERY, in any language; with --match, every article QUERY matches.

    Hybrid search ranks by meaning and adds evidence from matching words: all of them in passages in the query's
    language, and names, numbers and codes (MQ-9, COVID-19) in passages in other languages. A story that several
    outlets ran (copied, edited or translated) is shown in one article, with "also in:" naming the others.

    --match is exact, for counting: words (stemmed in each article's language), "quoted phrases", drone* (any word
    so beginning), AND (the default between terms), OR, NOT or -word, parentheses, and the fields source:,
    language:, author:, title: and published:2025-01-01..2025-03-31 (also a day, a month or a year). Each match
    comes with its cited passage, the one that best holds the query's words. --csv and --parquet export them.

    \b
    Example:
        newsarchive search what happened to the MQ-9 drone
        newsarchive search -k 3 --json "scambio di prigionieri"
        newsarchive search --match '"black sea" drone* -exercise published:2023-03' --csv > matches.csv
    """
    text = " ".join(query)
    if exact:
        match(text, sort, as_json, as_csv, parquet, index_dir, filters)
        return
    if as_csv or parquet:
        raise click.UsageError("--csv and --parquet export the articles of --match")
    from indexer.retrieval.archive import Archive
    from indexer.retrieval.search import search as run_search

    with Archive(index_dir, model=model) as archive:
        hits = run_search(archive, text, k=k, filters=common.filters(**filters), mode=mode)
    if as_json:
        emit(inert_json({"query": text, "mode": mode, "hits": [hit.to_dict() for hit in hits]}, indent=2))
        return
    if not hits:
        echo("No passages match.")
    width = min(shutil.get_terminal_size().columns, 100)
    for hit in hits:
        echo(" · ".join(hit.place()), bold=f"{hit.rank}. [{hit.score:.3f}] ")
        _echo_also_in(hit, "   ", width)
        echo(textwrap.fill(hit.text, width=width, initial_indent="   ", subsequent_indent="   ") + "\n")


@click.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer object as JSON.")
@click.option(
    "--llm",
    "llm_url",
    metavar="BASE_URL",
    help="Have a language model write the answer: an OpenAI-compatible endpoint, ending in /v1 (default: "
    "$NEWSARCHIVE_LLM_URL). Without one the answer is quoted, and nothing leaves this machine.",
)
@click.option(
    "--llm-model",
    metavar="NAME",
    help="The model to ask there (default: $NEWSARCHIVE_LLM_MODEL). A key, if it needs one, is read from "
    "$NEWSARCHIVE_LLM_API_KEY.",
)
@click.option(
    "--llm-timeout",
    type=click.FloatRange(0, 3600, min_open=True),
    default=120.0,  # indexer.answers.llm.TIMEOUT, repeated so that --help needs no httpx
    show_default=True,
    metavar="SECONDS",
    help="How long the model may take to reply; then the answer is the quoted one.",
)
@click.option(
    "--answer-language",
    metavar="CODE",
    help="The language the model answers in, an ISO 639-1 code such as ru (default: the question's).",
)
@click.option(
    "--translate",
    is_flag=True,
    help="With a model: also translate each cited passage written in another language than the answer "
    "(a machine translation, shown below the original).",
)
@mode_option
@filter_options
@index_dir_option
@model_option
def ask(
    question: tuple[str, ...],
    as_json: bool,
    llm_url: str | None,
    llm_model: str | None,
    llm_timeout: float,
    answer_language: str | None,
    translate: bool,
    mode: str,
    index_dir: Path,
    model: str | None,
    **filters: Any,
) -> None:
    """Answer QUESTION from the archive, each sentence citing the passages it comes from.

    By default the answer's sentences are quoted from the passages. With a language model (--llm), the answer is
    written in the question's language, and each of its sentences stands only on quotes found word for word in
    the passages it cites; when none does, or the model fails, the answer is the quoted one, with a line saying
    why. When nothing in the archive is relevant enough, says so instead of citing noise.

    \b
    Example:
        newsarchive ask what happened to the MQ-9 drone
        newsarchive ask --json "Quanti soldati ucraini sono stati uccisi?"
        newsarchive ask --llm http://127.0.0.1:11434/v1 --llm-model qwen2.5:7b "Что случилось с MQ-9?"
    """
    from indexer.answers.llm import Generator
    from indexer.retrieval.archive import Archive

    text = " ".join(question)
    generator = Generator.configured(llm_url, llm_model, llm_timeout)
    if (translate or answer_language) and generator is None:
        raise click.UsageError("--translate and --answer-language need a language model: --llm BASE_URL")
    with Archive(index_dir, model=model) as archive:
        if generator is None:
            from indexer.answers.quotes import ask as quoted

            answer = quoted(archive, text, filters=common.filters(**filters), mode=mode)
        else:
            from indexer.answers.generate import ask as generated

            answer = generated(
                archive, text, generator, filters=common.filters(**filters), mode=mode, language=answer_language
            )
    translations = _translations(generator, answer) if translate and generator is not None else {}
    if as_json:
        data = answer.to_dict()
        if translate:
            data["translations"] = {str(number): translated for number, translated in translations.items()}
        emit(inert_json(data, indent=2))
        return
    width = min(shutil.get_terminal_size().columns, 100)
    if generator is not None and answer.fallback:
        echo(f"Quoted answer: {answer.fallback}.", err=True)
    if not answer.found:
        echo("Nothing in the archive answers this closely enough.")
        return
    echo(textwrap.fill(answer.text(), width=width) + "\n")
    if answer.generated:
        removed = len(answer.removed_sentences)
        echo(f"Written by {generator.model} in {answer.generator['seconds']:.1f} s; every sentence quotes its sources.")
        if removed:
            echo(f"{plural(removed, 'sentence')} removed: not supported by the sources they cite.")
        echo()
    for source in answer.sources:
        echo(" · ".join(source.hit.place()), bold=f"[{source.number}] ")
        _echo_also_in(source.hit, "    ", width)
        echo(textwrap.fill(source.hit.text, width=width, initial_indent="    ", subsequent_indent="    "))
        if answer.generated:
            for start, end in source.highlights:
                echo(
                    textwrap.fill(
                        f"quoted: “{source.hit.text[start:end]}”",
                        width=width,
                        initial_indent="    ",
                        subsequent_indent="      ",
                    )
                )
        if source.number in translations:
            label = f"machine translation ({generator.model}): "
            echo(
                textwrap.fill(
                    label + translations[source.number], width=width, initial_indent="    ", subsequent_indent="    "
                )
            )
        echo()
    for rejected in answer.removed:
        what = f"“{rejected.sentence}”" + (f", citing source {rejected.citation[0]}" if rejected.citation else "")
        echo(textwrap.fill(f"removed: {what}: {rejected.reason}", width=width, subsequent_indent="  "))


def _translations(generator: Any, answer: Any) -> dict[int, str]:
    """Each cited passage in another language than the answer's, translated; a failure is one line each."""
    from indexer.answers.generate import translations

    found, failures = translations(generator, answer)
    for number, reason in failures.items():
        echo(f"[{number}] not translated: {reason}", err=True)
    return found


def _echo_also_in(hit: Any, indent: str, width: int) -> None:
    """The other outlets and languages that ran the hit's story."""
    if hit.also_in:
        line = "also in: " + "; ".join(hit.elsewhere())
        echo(textwrap.fill(line, width=width, initial_indent=indent, subsequent_indent=indent + "  "))


@click.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--limit", type=click.IntRange(1), help="Use only N questions (the first N, or N at random with --sample)."
)
@click.option("--sample", is_flag=True, help="With --limit: a random sample (fixed seed, so runs compare).")
@click.option(
    "--mode",
    "modes",
    type=click.Choice(MODES),
    multiple=True,
    help="Measure only this mode (repeatable; default: all).",
)
@click.option(
    "--by-language",
    is_flag=True,
    help="Also split the figures by question language and the answering article's language (en→ru, ...): the "
    "question's lang field, else detected.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@index_dir_option
@model_option
def evaluate(
    queries: Path,
    limit: int | None,
    sample: bool,
    modes: tuple[str, ...],
    by_language: bool,
    as_json: bool,
    index_dir: Path,
    model: str | None,
) -> None:
    """Measure retrieval quality with QUERIES, a JSONL file of {"id", "text", "gold": [article ids]} lines.

    Reports recall@1/5/10/100, MRR@10, nDCG@10 and queries per second for each search mode. Articles rank by
    their best passage. Questions are embedded once, in batches, for all modes. --by-language also reports them
    for each pair of question language and answering article's language (en→ru: English questions whose answer
    is in a Russian article).

    \b
    Example:
        newsarchive index bench/data/squad-it/passages.jsonl -d /tmp/squad
        newsarchive eval bench/data/squad-it/queries_en.jsonl -d /tmp/squad --limit 500 --sample
        newsarchive eval bench/data/squad-it/queries_en.jsonl -d /tmp/squad --by-language --mode dense
    """
    from indexer.retrieval.archive import Archive
    from indexer.retrieval.evaluate import evaluate as run_evaluation
    from indexer.retrieval.evaluate import evaluate_by_language, load_questions
    from indexer.retrieval.memory import keep_freed_memory

    keep_freed_memory()  # many questions, one process
    questions = load_questions(queries, limit, sample)
    with Archive(index_dir, model=model) as archive:
        if by_language:
            results = evaluate_by_language(archive, questions, modes or MODES)
        else:
            results = {mode: {"all": e} for mode, e in run_evaluation(archive, questions, modes or MODES).items()}
    figures = {mode: {pair: e.to_dict() for pair, e in pairs.items()} for mode, pairs in results.items()}
    overall = {mode: pairs["all"] for mode, pairs in figures.items()}
    if as_json:
        output = {"queries": str(queries), "questions": len(questions), "modes": overall}
        if by_language:
            output["by_language"] = {
                mode: {p: f for p, f in pairs.items() if p != "all"} for mode, pairs in figures.items()
            }
        emit(inert_json(output, indent=2))
        return
    echo(f"{queries}: {plural(len(questions), 'question')}")
    names = [name for name in next(iter(overall.values())) if name != "questions"]
    echo(f"{'mode':<10}" + "".join(f"{name:>20}" for name in names))
    for mode, values in overall.items():
        echo(f"{mode:<10}" + "".join(f"{values[name]:>20}" for name in names))
    if by_language:
        names = [name for name in names if name != "queries_per_second"]
        echo(f"\n{'mode':<10}{'languages':<14}{'questions':>10}" + "".join(f"{name:>12}" for name in names))
        for mode, pairs in figures.items():
            for pair, values in pairs.items():
                if pair != "all":
                    cells = "".join(f"{values[name]:>12}" for name in names)
                    echo(f"{mode:<10}{pair:<14}{values['questions']:>10}" + cells)
