"""The PostgreSQL store against the suite's own server (tests/postgres.py): migrations, versions
written and read back, the dense and lexical queries, the atomic switch and the build lock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.corpus import load_corpus
from bot.db import DatabaseProblem, migrate
from bot.index import SentenceIndex
from bot.store_pg import BuildInProgress, NoVersion, PgStore
from bot.words import WordIndex, terms

from .conftest import WIKI_CORPUS
from .fakes import FakeEncoder

QUESTIONS = [
    "Who discovered oxygen?",
    "How large is the Amazon rainforest?",
    "What share of the atmosphere is oxygen?",
    "Which nations hold parts of the Amazon basin?",
]


@pytest.fixture(scope="module")
def wiki_index() -> SentenceIndex:
    """The two Wikipedia articles, with random unit vectors (no ties, so nearest is well defined)."""
    index, _ = SentenceIndex.build(load_corpus(WIKI_CORPUS), FakeEncoder())
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal(index.vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return SentenceIndex(index.articles, index.sentences, index.passages, vectors, index.manifest, words=index.words)


@pytest.fixture
def store(database_url: str):
    migrate(database_url)
    with PgStore(database_url) as store:
        yield store


def _exact(index: SentenceIndex, vector: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(index.vectors @ vector), kind="stable")[:k]


def _bm25_best(index: SentenceIndex, question: str, k: int) -> tuple[set[int], np.ndarray]:
    """The embedded store's BM25 best (ties kept), as bot.retrieve.Retriever.words picks them."""
    bm = index.words.sentences.bm25(terms(question))
    best = np.flatnonzero(bm)
    if len(best) > k:
        best = best[bm[best] >= np.partition(bm[best], len(best) - k)[len(best) - k]]
    return set(best.tolist()), bm


def test_migrate_is_one_command_and_safe_to_run_again(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "migrate"], env={"DATABASE_URL": database_url})
    assert first.exit_code == 0, first.output
    assert "Applied 3 migration(s): 0001_store, 0002_telegram_state, 0003_token_vectors" in first.output
    again = runner.invoke(cli, ["db", "migrate"], env={"DATABASE_URL": database_url})
    assert again.exit_code == 0 and "up to date" in again.output


def test_migrate_without_a_database_url_says_what_to_set() -> None:
    result = CliRunner().invoke(cli, ["db", "migrate"], env={"DATABASE_URL": ""})
    assert result.exit_code == 1
    assert "DATABASE_URL is not set" in result.output


def test_an_unmigrated_database_is_refused_with_what_to_run(database_url: str) -> None:
    with pytest.raises(DatabaseProblem, match="python -m bot db migrate"):
        PgStore(database_url)


def test_an_empty_store_says_there_is_no_index_yet(store: PgStore) -> None:
    assert store.current() is None
    with pytest.raises(NoVersion), store.reading():
        pass


def test_a_written_version_reads_back_the_same(store: PgStore, wiki_index: SentenceIndex) -> None:
    version = store.publish(wiki_index)
    assert store.current() == version
    loaded = store.load()
    assert loaded.sentences == wiki_index.sentences
    assert loaded.passages == wiki_index.passages
    assert loaded.articles == wiki_index.articles
    assert loaded.manifest == wiki_index.manifest
    np.testing.assert_array_equal(loaded.vectors, wiki_index.vectors)
    for attribute in ("term_counts", "has_number", "has_time", "name_counts"):
        np.testing.assert_array_equal(getattr(loaded.words, attribute), getattr(wiki_index.words, attribute))
    for question in QUESTIONS:
        words = terms(question)
        np.testing.assert_allclose(
            loaded.words.sentences.bm25(words), wiki_index.words.sentences.bm25(words), rtol=1e-6
        )
        np.testing.assert_allclose(loaded.words.passages.bm25(words), wiki_index.words.passages.bm25(words), rtol=1e-6)


def test_the_dense_query_returns_the_exact_nearest_sentences(store: PgStore, wiki_index: SentenceIndex) -> None:
    store.publish(wiki_index)
    rng = np.random.default_rng(1)
    with store.reading() as reader:
        for _ in range(20):
            q = wiki_index.vectors[rng.integers(len(wiki_index.vectors))] + 0.3 * rng.standard_normal(
                wiki_index.vectors.shape[1]
            ).astype(np.float32)
            q /= np.linalg.norm(q)
            np.testing.assert_array_equal(reader.nearest(q, 64), _exact(wiki_index, q, 64))


def test_the_lexical_query_gives_the_embedded_stores_bm25_best(store: PgStore, wiki_index: SentenceIndex) -> None:
    store.publish(wiki_index)
    with store.reading() as reader:
        for question in QUESTIONS + ["oxygen oxygen atmosphere", "zzzunknownword"]:
            expected, bm = _bm25_best(wiki_index, question, 8)
            hits = reader.bm25_best(terms(question), 8)
            assert set(hits.ids.tolist()) == expected, question
            np.testing.assert_allclose(hits.scores, bm[hits.ids], rtol=1e-5)
            assert hits.best == pytest.approx(float(bm.max()), rel=1e-5)
        df = reader.document_frequency(["oxygen", "zzzunknownword"])
    assert df == {"oxygen": int(np.count_nonzero(wiki_index.words.sentences.bm25(["oxygen"]))), "zzzunknownword": 0}


def test_readers_see_the_old_or_the_new_version_never_a_mix(store: PgStore, wiki_index: SentenceIndex) -> None:
    first_doc = sorted(wiki_index.articles)[0]
    part = wiki_index.without({first_doc})
    words_of_part = WordIndex.build([s.text for s in part.sentences], [(p.first, p.last) for p in part.passages])
    smaller = SentenceIndex(
        part.articles, part.sentences, part.passages, part.vectors, part.manifest, words=words_of_part
    )
    question = wiki_index.vectors[len(wiki_index.vectors) - 1]
    words = terms(QUESTIONS[0])

    def expected(index: SentenceIndex) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(_exact(index, question, 16).tolist()), tuple(sorted(_bm25_best(index, QUESTIONS[0], 8)[0]))

    versions = {expected(wiki_index), expected(smaller)}
    assert len(versions) == 2  # the two versions answer differently
    store.publish(wiki_index)
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                with store.reading() as reader:
                    dense = tuple(reader.nearest(question, 16).tolist())
                    time.sleep(0.005)  # a switch and a drop may happen here
                    lexical = tuple(sorted(reader.bm25_best(words, 8).ids.tolist()))
                seen.append((dense, lexical))
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for index in (smaller, wiki_index, smaller):
        store.publish(index)  # writes, switches and drops the versions nobody reads
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors
    assert seen and set(seen) <= versions
    assert len(store.versions()) <= 2  # old versions were dropped (one may still have been pinned)
    assert store.load().sentences == smaller.sentences


def test_one_build_at_a_time(store: PgStore, wiki_index: SentenceIndex) -> None:
    with store.building():
        with pytest.raises(BuildInProgress, match="Another index build is running"):
            store.publish(wiki_index)
    assert store.versions() == []  # the refused build wrote nothing
    version = store.publish(wiki_index)  # the lock is free again
    assert store.current() == version


def test_publish_copies_the_built_index_into_the_database(database_url: str, small_corpus, tmp_path) -> None:
    from bot.index import SentenceIndex
    from bot.lifecycle import IndexJob, update_index

    index_dir = tmp_path / "index"
    update_index(IndexJob(small_corpus, index_dir, FakeEncoder.name), FakeEncoder)
    index = SentenceIndex.load(index_dir)
    env = {"DATABASE_URL": database_url, "INDEX_DIR": str(index_dir), "CORPUS_DIR": str(small_corpus)}
    runner = CliRunner()
    assert "Pending migrations: 0001_store" in runner.invoke(cli, ["db", "status"], env=env).output
    assert runner.invoke(cli, ["db", "migrate"], env=env).exit_code == 0
    assert "No index version yet" in runner.invoke(cli, ["db", "status"], env=env).output
    result = runner.invoke(cli, ["db", "publish"], env=env)
    assert result.exit_code == 0, result.output
    assert f"Version 1 is current: {len(index.sentences)} sentences of 1 articles." in result.output
    assert (
        f"version 1: {len(index.sentences)} sentences (current)" in runner.invoke(cli, ["db", "status"], env=env).output
    )
    with PgStore(database_url) as store:
        assert store.load().sentences == index.sentences


def test_publish_without_a_built_index_says_what_to_run(database_url: str, tmp_path) -> None:
    migrate(database_url)
    env = {"DATABASE_URL": database_url, "INDEX_DIR": str(tmp_path / "none")}
    result = CliRunner().invoke(cli, ["db", "publish"], env=env)
    assert result.exit_code == 1
    assert "python -m bot index" in result.output


def test_asking_for_more_neighbours_than_ef_search_still_returns_k(
    database_url: str, wiki_index: SentenceIndex
) -> None:
    migrate(database_url)
    with PgStore(database_url, ef_search=10) as store:
        store.publish(wiki_index)
        with store.reading() as reader:
            q = wiki_index.vectors[0]
            np.testing.assert_array_equal(reader.nearest(q, 64), _exact(wiki_index, q, 64))
