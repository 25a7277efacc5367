"""The index lifecycle and serving with DATABASE_URL, against the suite's own PostgreSQL
(tests/postgres.py): builds publish versions, a running service notices a version another
process published, one build at a time across processes, and the same answers as the
embedded store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.db import DatabaseProblem, connect, migrate
from bot.lifecycle import IndexJob
from bot.service import QAService
from bot.settings import Settings
from bot.store_pg import PgStore

from .conftest import ROOT, WIKI_CORPUS
from .fakes import FakeEncoder
from .test_cli import CliFakeEncoder

LIBRARY = """# Library reopens

The city library reopened on Monday after a two-year renovation.

The new reading room seats 300 people. A rooftop garden is open in summer.
"""

WIKI_QUESTIONS = [
    "Who discovered oxygen?",
    "How large is the Amazon rainforest?",
    "What share of the atmosphere is oxygen?",
    "Which nations hold parts of the Amazon basin?",
    "When was oxygen first isolated?",
    "What is the capital of Australia?",
    "How many species of insects live in the Amazon?",
    "Who named the element oxygen?",
    "What colour is liquid oxygen?",
    "Which river drains the Amazon basin?",
]

# `python -m bot index` as another process would run it, with the fast fake encoder
BUILD_SCRIPT = """
import logging, sys
from pathlib import Path
from bot.lifecycle import IndexJob, update_index
from tests.fakes import FakeEncoder
logging.basicConfig(level=logging.WARNING, format="%(message)s")
job = IndexJob(Path(sys.argv[1]), Path(sys.argv[2]), FakeEncoder.name, database_url=sys.argv[3])
report = update_index(job, FakeEncoder)
print("built", report.sentences if report else "nothing", flush=True)
"""


def build_in_another_process(corpus: Path, index_dir: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD_SCRIPT, str(corpus), str(index_dir), url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    """Wait until `condition()` holds (the watcher runs on its own thread); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


def best_sentence(service: QAService, question: str) -> str:
    """The sentence ranked first for the question (cited, or the best related one when declined)."""
    answer = service.answerer.answer(question)
    return (answer.citations or answer.related)[0].text


@pytest.fixture
def migrated(database_url: str) -> str:
    migrate(database_url)
    return database_url


def pg_settings(corpus: Path, index_dir: Path, url: str, model: str = FakeEncoder.name) -> Settings:
    return Settings(_env_file=None, corpus_dir=corpus, index_dir=index_dir, embedding_model=model, database_url=url)


@pytest.fixture
def pg_service(small_corpus: Path, tmp_path: Path, migrated: str) -> Iterator[QAService]:
    service = QAService(pg_settings(small_corpus, tmp_path / "pg-index", migrated), encoder_factory=FakeEncoder)
    service.release_after = 0  # let go of a replaced version at once (the default waits for questions in flight)
    yield service
    service.close()


def test_a_service_builds_into_the_database_and_answers_as_the_embedded_one(
    pg_service: QAService, fake_service: QAService, migrated: str
) -> None:
    report = pg_service.open()
    assert report is not None and report.sentences == len(fake_service.index.sentences)
    with PgStore(migrated) as store:
        assert store.current() == pg_service.version == 1
    assert not (pg_service.settings.index_dir / "CURRENT").exists()  # nothing written to INDEX_DIR
    for question in ("When does the festival end?", "Who cut the ribbon?", "How many visitors are expected?"):
        assert pg_service.answerer.answer(question) == fake_service.answerer.answer(question)
    # what /add, /stats and /articles read of the served index, from the database
    from bot.ingest import sentence_counts
    from bot.telegram.format import stats_html

    assert sentence_counts(pg_service, ["harbour.md", "none.md"]) == {"harbour.md": 4, "none.md": 0}
    assert "Articles: 1\nSentences: 4" in stats_html(pg_service, 0)
    assert [a.title for a in pg_service.answerer.index.articles.values()] == ["Harbour festival opens"]


def test_reindex_publishes_a_new_version_reusing_the_databases_vectors(
    pg_service: QAService, small_corpus: Path, migrated: str
) -> None:
    first = pg_service.open()
    assert first is not None
    (small_corpus / "library.md").write_text(LIBRARY, encoding="utf-8")
    report = pg_service.reindex()
    assert report.added == ["library.md"]
    assert report.embedded == report.sentences - first.sentences  # the harbour article's vectors were reused
    assert pg_service.version == 2
    assert "renovation" in best_sentence(pg_service, "When did the library reopen?")
    with PgStore(migrated) as store:
        assert store.versions() == [2]  # version 1 was read into memory, not pinned: dropped
    unchanged = pg_service.reindex()
    assert unchanged.embedded == 0 and pg_service.version == 2  # nothing changed: no new version


def test_a_version_of_an_older_format_is_rebuilt_not_served(pg_service: QAService, migrated: str) -> None:
    """Words are matched as this version reads them (e.g. without accents): an older version is
    replaced by a rebuild, not answered from."""
    from bot.lifecycle import Action, decide

    pg_service.open()
    with connect(migrated, autocommit=True) as connection:
        connection.execute("UPDATE index_versions SET manifest = jsonb_set(manifest, '{format}', '4')")
    plan = decide(IndexJob.of(pg_service.settings))
    assert plan.action is Action.REBUILD and "format 4" in plan.reason and "python -m bot index" in plan.reason
    fresh = QAService(pg_service.settings, encoder_factory=FakeEncoder)
    try:
        assert fresh.open() is not None  # built again
        assert fresh.version == 2
        assert "ribbon" in best_sentence(fresh, "Who cut the ribbon?")
    finally:
        fresh.close()


def test_a_running_service_answers_from_a_version_another_process_published(
    pg_service: QAService, small_corpus: Path, tmp_path: Path, migrated: str
) -> None:
    pg_service.open()
    question = "How many people does the reading room seat?"
    assert "300" not in best_sentence(pg_service, question)
    (small_corpus / "library.md").write_text(LIBRARY, encoding="utf-8")
    build = build_in_another_process(small_corpus, tmp_path / "other-index", migrated)
    out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    wait_for(lambda: pg_service.version == 2, "the service to swap in version 2")
    assert "300" in best_sentence(pg_service, question)
    with PgStore(migrated) as store:
        assert store.versions() == [2]  # the old version was dropped: the service holds no pin on it


def test_one_build_at_a_time_across_processes(small_corpus: Path, tmp_path: Path, migrated: str) -> None:
    with PgStore(migrated) as store:
        with store.building():  # this process builds; another one starts
            build = build_in_another_process(small_corpus, tmp_path / "other-index", migrated)
            assert build.stderr is not None
            assert "waiting for it to finish" in build.stderr.readline()
            assert store.current() is None and build.poll() is None  # it waits, having written nothing
        out, _ = build.communicate(timeout=120)
        assert build.returncode == 0 and out.strip() == "built 4"
        assert store.current() == 1


def test_index_command_publishes_to_the_database(
    small_corpus: Path, tmp_path: Path, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.encoder

    monkeypatch.setattr(bot.encoder, "SentenceTransformerEncoder", CliFakeEncoder)
    args = ["--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "index"), "--model", "fake", "index"]
    result = CliRunner().invoke(cli, args, env={"DATABASE_URL": migrated})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Indexed 1 article, 4 sentences (4 embedded) in ")
    assert result.output.rstrip().endswith("-> the database (DATABASE_URL), version 1")
    assert migrated not in result.output
    status = CliRunner().invoke(cli, ["db", "status"], env={"DATABASE_URL": migrated})
    assert "version 1: 4 sentences (current)" in status.output


def test_an_unmigrated_database_is_named_with_what_to_run(
    small_corpus: Path, tmp_path: Path, database_url: str
) -> None:
    service = QAService(pg_settings(small_corpus, tmp_path / "index", database_url), encoder_factory=FakeEncoder)
    with pytest.raises(DatabaseProblem, match="python -m bot db migrate"):
        service.open()


def test_serving_from_the_database_gives_the_embedded_stores_answers(
    wiki_service: QAService, real_encoder, tmp_path: Path, migrated: str
) -> None:
    """The real model over the Wikipedia articles, answered question by question from the
    database (only the candidates' rows read, the ranking in Python): the same cited sentences,
    scores, confidence and declines as the embedded store."""
    import shutil

    from bot.onnx_encoder import onnx_dir
    from bot.serve_pg import DatabaseRetriever

    model = wiki_service.settings.embedding_model
    export = onnx_dir(wiki_service.settings.index_dir, model)
    if export.is_dir():  # serve with the session's ONNX export (~10 s to make again)
        shutil.copytree(export, onnx_dir(tmp_path / "index", model))
    service = QAService(
        pg_settings(WIKI_CORPUS, tmp_path / "index", migrated, model), encoder_factory=lambda: real_encoder
    )
    with PgStore(migrated) as store:  # the embedded index's own vectors: no second embedding of the articles
        store.publish(wiki_service.index)
    try:
        assert service.open() is None  # the database's version is up to date with the articles
        assert service.version == 1 and isinstance(service.answerer.retriever, DatabaseRetriever)
        assert service.answerer.retriever.projection is not None  # the token vectors are in the database too
        assert list(service.index.sentences) == wiki_service.index.sentences
        questions = wiki_questions(wiki_service.index)
        embedded = wiki_service.answerer.answer_many(questions)
        from_database = service.answerer.answer_many(questions)
        assert sum(a.answered for a in embedded) >= 5 and sum(not a.answered for a in embedded) >= 2
        for ours, theirs in zip(from_database, embedded, strict=True):
            assert ours == theirs
        passage = wiki_service.answerer.passage(embedded[0].citations[0].sentence_id)
        assert service.answerer.passage(embedded[0].citations[0].sentence_id) == passage
    finally:
        service.close()


def wiki_questions(index) -> list[str]:
    """The questions above, also typed in lower case, and one made of words of every fifth sentence
    (some answerable, some not)."""
    made = [f"What about {' '.join(s.text.split()[:7])}?" for s in index.sentences[::5]]
    typed = [q.lower() for q in WIKI_QUESTIONS]
    return WIKI_QUESTIONS + typed + made + ["How tall is the Eiffel Tower?", "Who won the 1998 World Cup?"]


def test_the_job_never_shows_the_database_url() -> None:
    job = IndexJob(Path("c"), Path("i"), "m", database_url="postgresql://u:secret@h/db")
    assert "secret" not in repr(job)


def test_eval_hold_out_says_it_needs_the_embedded_index(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"q": "When does the festival end?", "any": ["Sunday"], "doc": "harbour.md"}\n')
    result = CliRunner().invoke(
        cli, ["eval", str(questions), "--hold-out", "1"], env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    )
    assert result.exit_code == 1
    assert "--hold-out works on the embedded index: run it with DATABASE_URL unset." in result.output


def test_a_served_version_is_kept_until_its_last_reader_lets_go(pg_service: QAService, migrated: str) -> None:
    pg_service.open()
    with PgStore(migrated) as store:
        pin = store.pin()  # a second replica serving version 1
        index = store.load()
        assert store.publish(index) == 2  # the build could not drop version 1: two replicas serve it
        assert store.versions() == [1, 2]
        wait_for(lambda: pg_service.version == 2, "the service to swap in version 2")
        assert store.versions() == [1, 2]  # the other replica still serves it
        pin.release()
        assert store.drop_unused() == [1]
        assert store.versions() == [2]


def test_ask_answers_from_the_database(
    small_corpus: Path, tmp_path: Path, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.encoder
    import bot.service

    monkeypatch.setattr(bot.encoder, "SentenceTransformerEncoder", CliFakeEncoder)
    monkeypatch.setattr(bot.service, "SentenceTransformerEncoder", CliFakeEncoder)
    flags = ["--corpus-dir", str(small_corpus), "--index-dir", str(tmp_path / "index"), "--model", "fake"]
    env = {"DATABASE_URL": migrated}
    assert CliRunner().invoke(cli, [*flags, "index"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, [*flags, "ask", "--json", "When does the festival end?"], env=env)
    assert result.exit_code == 0, result.output
    assert "fireworks over the bay" in result.output
    with PgStore(migrated) as store:
        store.publish(store.load())
        assert store.versions() == [2]  # the finished command pins nothing: the next build dropped version 1


def test_questions_in_flight_finish_on_the_version_they_started_on(
    small_corpus: Path, tmp_path: Path, migrated: str
) -> None:
    service = QAService(pg_settings(small_corpus, tmp_path / "pg-index", migrated), encoder_factory=FakeEncoder)
    try:
        service.open()
        in_flight = service.answerer  # a question being answered while /add reindexes
        (small_corpus / "library.md").write_text(LIBRARY, encoding="utf-8")
        service.reindex()
        assert service.version == 2
        with PgStore(migrated) as store:
            assert store.versions() == [1, 2]  # still pinned for the questions in flight
        assert in_flight.answer("When does the festival end?").citations  # read from version 1
    finally:
        service.close()
    with PgStore(migrated) as store:
        assert store.drop_unused() == [1]  # closed: let go of at once


def test_a_rebuild_from_the_database_reuses_the_token_vectors(wiki_service: QAService, migrated: str) -> None:
    """What a build over a stored version reuses includes each sentence's token vectors, unchanged."""
    with PgStore(migrated) as store:
        store.publish(wiki_service.index)
        stored = store.known_vectors()
    assert stored is not None
    ours, theirs = stored.known_tokens(), wiki_service.index.known_tokens()
    assert ours.keys() == theirs.keys() and len(ours) > 0
    for key, (codes, scales) in theirs.items():
        assert np.array_equal(ours[key][0], codes) and np.array_equal(ours[key][1], scales)
