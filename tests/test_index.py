"""The saved index and its lifecycle: manifest, checksums, atomic save, never answering from a
stale index, and one build at a time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.answer import Answerer
from bot.corpus import CorpusError, load_corpus
from bot.index import CURRENT, MANIFEST, META, VECTORS, WORDS_FILE, IndexProblem, SentenceIndex, sha256_file
from bot.lifecycle import IndexJob, ensure_index, update_index
from bot.words import WordIndex

from .fakes import FakeEncoder

RUN_HINT = "python -m bot index"


class OtherModel(FakeEncoder):
    """Another embedding model: different name and dimension."""

    name = "other-model"
    dimension = 32


def _open(corpus_dir: Path, index_dir: Path, encoder=FakeEncoder, rebuild: bool = True):
    """The lifecycle as the service runs it in process: the saved index, and the build's report."""
    job = IndexJob(corpus_dir, index_dir, encoder.name)
    report = ensure_index(job, lambda j, progress: update_index(j, encoder, progress), build=rebuild)
    return SentenceIndex.load(index_dir), report


def _build_dir(index_dir: Path) -> Path:
    return index_dir / (index_dir / CURRENT).read_text(encoding="utf-8").strip()


def _ask(index: SentenceIndex, question: str):
    return Answerer(index, FakeEncoder()).answer(question)


@pytest.fixture
def built(small_corpus, tmp_path):
    """The small corpus indexed with the fake encoder and saved."""
    index_dir = tmp_path / "index"
    index, report = _open(small_corpus, index_dir)
    assert report is not None  # there was no index: it was built
    return small_corpus, index_dir, index


# --- what is saved ---------------------------------------------------------------------------


def test_manifest_records_model_dimension_corpus_fingerprint_and_build_time(built):
    small_corpus, index_dir, _ = built
    manifest = json.loads((_build_dir(index_dir) / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["model"] == FakeEncoder.name
    assert manifest["dimension"] == FakeEncoder.dimension
    assert manifest["corpus"] == load_corpus(small_corpus).fingerprint()
    assert set(manifest["corpus"]) == {"harbour.md"}
    assert datetime.fromisoformat(manifest["built_at"]).tzinfo is not None
    assert set(manifest["checksums"]) >= {VECTORS, META}


def test_metadata_holds_sentences_and_passages_with_positions(built):
    _, index_dir, _ = built
    meta = json.loads((_build_dir(index_dir) / META).read_text(encoding="utf-8"))
    rows = [(s["doc"], s["paragraph"], s["sentence"], s["text"]) for s in meta["sentences"]]
    assert ("harbour.md", 2, 2, "About 40,000 visitors are expected over three days.") in rows
    assert len(meta["passages"]) == 3  # one per paragraph of the small article
    assert meta["articles"][0]["title"] == "Harbour festival opens"


def test_saved_index_loads_back_identically(built):
    _, index_dir, index = built
    loaded = SentenceIndex.load(index_dir)
    assert loaded.sentences == index.sentences
    assert loaded.passages == index.passages
    assert loaded.articles == index.articles
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    question = "How many visitors are expected?"
    assert _ask(loaded, question) == _ask(index, question)


def test_the_word_index_is_saved_with_the_index_and_scores_the_same(built):
    _, index_dir, index = built
    assert WORDS_FILE in json.loads((_build_dir(index_dir) / MANIFEST).read_text(encoding="utf-8"))["checksums"]
    loaded = SentenceIndex.load(index_dir).words
    assert loaded is not None and index.words is not None
    words = ["visitor", "festiv", "visitor", "unknownword"]  # stemmed; a repeated word counts again
    for saved, built_now in ((loaded.sentences, index.words.sentences), (loaded.passages, index.words.passages)):
        np.testing.assert_array_equal(saved.bm25(words), built_now.bm25(words))
    best = index.sentences[int(loaded.sentences.bm25(["visitor"]).argmax())].text
    assert best == "About 40,000 visitors are expected over three days."
    np.testing.assert_array_equal(loaded.term_counts, index.words.term_counts)
    # what kind of facts each sentence holds: "About 40,000 visitors ..." a number, no date
    visitors = [s.text for s in index.sentences].index(best)
    assert loaded.has_number[visitors] and not loaded.has_time[visitors]
    fireworks = next(i for i, s in enumerate(index.sentences) if "Sunday" in s.text)
    assert loaded.has_time[fireworks]  # "... ends on Sunday with fireworks over the bay."
    assert loaded.names.count(["anna", "berg"], [1.0, 1.0])[0].max() == 2  # "Mayor Anna Berg cut the ribbon ..."
    np.testing.assert_array_equal(loaded.name_counts, index.words.name_counts)


def test_an_index_of_an_older_format_is_refused_then_rebuilt(built):
    small_corpus, index_dir, index = built
    build_dir = _build_dir(index_dir)
    manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["format"] = 2  # saved before the word index was required
    (build_dir / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexProblem, match=RUN_HINT):
        SentenceIndex.load(index_dir)
    rebuilt, report = _open(small_corpus, index_dir)
    assert report is not None and report.sentences == len(index.sentences)
    assert _ask(rebuilt, "Who cut the ribbon?") == _ask(index, "Who cut the ribbon?")


def test_a_word_index_of_other_sentences_is_refused(built):
    _, index_dir, index = built
    build_dir = _build_dir(index_dir)
    WordIndex.build(["Only one sentence here."], [(0, 0)]).save(build_dir / WORDS_FILE)
    manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["checksums"][WORDS_FILE] = sha256_file(build_dir / WORDS_FILE)
    (build_dir / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexProblem, match=f"not {len(index.sentences)}"):
        SentenceIndex.load(index_dir)


def test_an_up_to_date_index_is_loaded_not_rebuilt(built):
    small_corpus, index_dir, _ = built
    before = _build_dir(index_dir)
    _, report = _open(small_corpus, index_dir)
    assert report is None
    assert _build_dir(index_dir) == before


# --- missing, stale, mismatched ------------------------------------------------------------


def test_missing_index_says_what_to_run(small_corpus, tmp_path):
    with pytest.raises(IndexProblem, match=RUN_HINT):
        _open(small_corpus, tmp_path / "index", rebuild=False)
    with pytest.raises(IndexProblem, match=RUN_HINT):
        SentenceIndex.load(tmp_path / "index")


def test_changed_article_is_never_answered_from_the_old_index(built):
    small_corpus, index_dir, _ = built
    article = small_corpus / "harbour.md"
    article.write_text(
        article.read_text(encoding="utf-8").replace("40,000 visitors", "95,000 visitors"),
        encoding="utf-8",
    )
    with pytest.raises(IndexProblem, match=RUN_HINT):
        _open(small_corpus, index_dir, rebuild=False)

    index, report = _open(small_corpus, index_dir)
    assert report is not None and report.changed == ["harbour.md"]
    answer = _ask(index, "How many visitors are expected over three days?")
    assert "95,000" in answer.citations[0].text
    assert not any("40,000" in s.text for s in index.sentences)
    # and the rebuilt index is what is now on disk
    assert not any("40,000" in s.text for s in SentenceIndex.load(index_dir).sentences)


def test_added_and_removed_articles_trigger_a_rebuild(built):
    small_corpus, index_dir, _ = built
    (small_corpus / "zoo.txt").write_text(
        "Zoo gets pandas\n\nTwo giant pandas arrived at the city zoo on Tuesday.\n", encoding="utf-8"
    )
    index, report = _open(small_corpus, index_dir)
    assert report is not None and report.added == ["zoo.txt"]
    assert "pandas" in _ask(index, "When did the giant pandas arrive at the zoo?").citations[0].text

    (small_corpus / "zoo.txt").unlink()
    index, report = _open(small_corpus, index_dir)
    assert report is not None and report.removed == ["zoo.txt"]
    assert set(index.articles) == {"harbour.md"}
    assert all(s.doc == "harbour.md" for s in index.sentences)


def test_index_built_with_another_model_is_refused_or_rebuilt(built):
    small_corpus, index_dir, _ = built
    with pytest.raises(IndexProblem) as problem:
        _open(small_corpus, index_dir, encoder=OtherModel, rebuild=False)
    assert FakeEncoder.name in str(problem.value) and OtherModel.name in str(problem.value)
    assert RUN_HINT in str(problem.value)

    index, report = _open(small_corpus, index_dir, encoder=OtherModel)
    assert report is not None and report.embedded == report.sentences  # nothing reused
    assert index.model == OtherModel.name and index.vectors.shape[1] == OtherModel.dimension


def test_unchanged_sentences_are_not_embedded_again(built):
    small_corpus, index_dir, _ = built
    article = small_corpus / "harbour.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nThe parade was moved to Saturday.\n", encoding="utf-8")
    _, report = _open(small_corpus, index_dir)
    assert report is not None and report.sentences == 5
    assert report.embedded == 1


# --- corrupt files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [VECTORS, META, "sentences.faiss", WORDS_FILE])
def test_truncated_index_file_is_detected_by_checksum(built, name):
    small_corpus, index_dir, _ = built
    path = _build_dir(index_dir) / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexProblem) as problem:
        SentenceIndex.load(index_dir)
    assert name in str(problem.value) and "corrupt" in str(problem.value)
    assert RUN_HINT in str(problem.value)
    # opening rebuilds it, and the rebuilt index loads cleanly
    index, report = _open(small_corpus, index_dir)
    assert report is not None
    assert SentenceIndex.load(index_dir).sentences == index.sentences


def test_flipped_byte_in_metadata_is_detected(built):
    _, index_dir, _ = built
    path = _build_dir(index_dir) / META
    data = path.read_bytes().replace(b"40,000", b"90,000")
    path.write_bytes(data)
    with pytest.raises(IndexProblem, match="corrupt"):
        SentenceIndex.load(index_dir)


@pytest.mark.parametrize("damage", ["manifest deleted", "manifest not JSON", "pointer to nothing"])
def test_unreadable_index_says_what_to_run(built, damage):
    _, index_dir, _ = built
    if damage == "manifest deleted":
        (_build_dir(index_dir) / MANIFEST).unlink()
    elif damage == "manifest not JSON":
        (_build_dir(index_dir) / MANIFEST).write_text("{not json", encoding="utf-8")
    else:
        (index_dir / CURRENT).write_text("build-gone", encoding="utf-8")
    with pytest.raises(IndexProblem, match=RUN_HINT):
        SentenceIndex.load(index_dir)


# --- atomic save -----------------------------------------------------------------------------


def test_a_refresh_replaces_the_old_build_and_removes_it(built):
    small_corpus, index_dir, _ = built
    old = _build_dir(index_dir)
    (small_corpus / "harbour.md").write_text(
        (small_corpus / "harbour.md").read_text(encoding="utf-8") + "\nMore news.\n", encoding="utf-8"
    )
    _open(small_corpus, index_dir)
    new = _build_dir(index_dir)
    assert new != old and not old.exists()
    assert [p.name for p in index_dir.iterdir() if p.name.startswith("build-")] == [new.name]


def test_a_failed_save_leaves_the_previous_index_in_place(built, monkeypatch):
    small_corpus, index_dir, index = built
    before = _build_dir(index_dir)

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(OSError):
        index.save(index_dir)
    monkeypatch.undo()
    assert _build_dir(index_dir) == before
    assert [p for p in index_dir.iterdir() if p.name.startswith("build-")] == [before]
    assert SentenceIndex.load(index_dir).sentences == index.sentences


# --- building --------------------------------------------------------------------------------


def test_bad_files_are_skipped_and_named_while_the_rest_is_indexed(small_corpus, tmp_path):
    (small_corpus / "empty.md").write_text("", encoding="utf-8")
    (small_corpus / "latin1.txt").write_bytes("Caf\u00e9\n\nThe caf\u00e9 opened.\n".encode("latin-1"))
    index, report = _open(small_corpus, tmp_path / "index")
    assert set(index.articles) == {"harbour.md"}
    assert report.articles == 1
    assert any("empty.md" in m for m in report.skipped)
    assert any("latin1.txt" in m for m in report.skipped)
    summary = report.summary()
    assert "1 article," in summary and "empty.md" in summary and "latin1.txt" in summary


def test_a_corpus_with_no_usable_article_cannot_be_indexed(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    with pytest.raises(CorpusError, match="no .txt or .md file"):
        _open(folder, tmp_path / "index")
    (folder / "empty.md").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty.md"):
        _open(folder, tmp_path / "index")
    assert not (tmp_path / "index" / CURRENT).exists()


def test_held_out_articles_are_gone_from_the_copy(built, tmp_path):
    small_corpus, _, _ = built
    (small_corpus / "zoo.txt").write_text(
        "Zoo gets pandas\n\nTwo giant pandas arrived at the city zoo on Tuesday.\n", encoding="utf-8"
    )
    index, _ = _open(small_corpus, tmp_path / "index2")
    held = index.without({"zoo.txt"})
    assert set(held.articles) == {"harbour.md"}
    assert [s.text for s in held.sentences] == [s.text for s in index.sentences if s.doc == "harbour.md"]
    assert "zoo.txt" not in held.fingerprint()
    with pytest.raises(ValueError, match="not in the index"):
        index.without({"nope.md"})


def test_the_service_answers_from_the_changed_article_after_reopening(fake_settings, fake_service):
    """The same check through QAService, the path the CLI and the bot take."""
    from bot.service import QAService

    question = "How many visitors are expected over three days?"
    assert "40,000" in fake_service.answerer.answer(question).citations[0].text
    article = fake_settings.corpus_dir / "harbour.md"
    article.write_text(
        article.read_text(encoding="utf-8").replace("40,000 visitors", "95,000 visitors"), encoding="utf-8"
    )
    reopened = QAService(fake_settings, encoder_factory=FakeEncoder)
    report = reopened.open()
    assert report is not None and report.changed == ["harbour.md"]
    assert "95,000" in reopened.answerer.answer(question).citations[0].text
    # changed again: refused with what to run when rebuilding is not allowed
    article.write_text(article.read_text(encoding="utf-8") + "\nMore news.\n", encoding="utf-8")
    with pytest.raises(IndexProblem, match=RUN_HINT):
        QAService(fake_settings, encoder_factory=FakeEncoder).open(rebuild=False)
