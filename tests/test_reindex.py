"""Reindexing: only changed articles are re-embedded, nothing loads a model when nothing changed,
and the default service rebuilds in a child process while the serving process stays torch-free."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.corpus import load_corpus
from bot.encoder import ModelError
from bot.index import LazyEncoder, SentenceIndex
from bot.lifecycle import BuildProcess, IndexJob
from bot.service import QAService
from bot.settings import Settings

from .conftest import ROOT
from .fakes import FakeEncoder

SECOND_ARTICLE = """# Library reopens

The city library reopened on Monday after a two-year renovation.

The new reading room seats 300 people. A rooftop garden is open in summer.
"""


class RecordingEncoder(FakeEncoder):
    """The fake encoder, remembering every text it was asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts)


@pytest.fixture
def two_article_settings(small_corpus: Path, tmp_path: Path) -> Settings:
    (small_corpus / "library.md").write_text(SECOND_ARTICLE, encoding="utf-8")
    return Settings(
        _env_file=None, corpus_dir=small_corpus, index_dir=tmp_path / "index", embedding_model=FakeEncoder.name
    )


def test_one_changed_article_reembeds_only_that_article(two_article_settings: Settings):
    encoder = RecordingEncoder()
    service = QAService(two_article_settings, encoder_factory=lambda: encoder)
    first = service.open()
    assert first is not None and first.embedded == first.sentences
    encoder.texts.clear()
    changed = SECOND_ARTICLE + "\nA cafe on the ground floor sells coffee from local roasters.\n"
    (two_article_settings.corpus_dir / "library.md").write_text(changed, encoding="utf-8")

    report = service.reindex()

    assert report.changed == ["library.md"] and not report.added and not report.removed
    # only the new sentence was encoded (possibly with its article title in front)
    assert len(encoder.texts) == 1 and report.embedded == 1
    assert encoder.texts[0].endswith("A cafe on the ground floor sells coffee from local roasters.")
    answer = service.answerer.answer("What does the cafe sell?")
    assert answer.citations and "coffee" in answer.citations[0].text


def test_unchanged_reindex_encodes_nothing(two_article_settings: Settings):
    encoder = RecordingEncoder()
    service = QAService(two_article_settings, encoder_factory=lambda: encoder)
    service.open()
    calls = list(encoder.calls)
    report = service.reindex()
    assert report.embedded == 0 and report.articles == 2 and encoder.calls == calls
    assert service.answerer.answer("How many people does the reading room seat?").citations


def test_build_never_creates_the_encoder_when_every_sentence_is_known(two_article_settings: Settings):
    corpus = load_corpus(two_article_settings.corpus_dir)
    previous, _ = SentenceIndex.build(corpus, FakeEncoder())

    def must_not_load() -> FakeEncoder:
        raise AssertionError("the encoder was created although nothing needed embedding")

    lazy = LazyEncoder(must_not_load, FakeEncoder.name, FakeEncoder.dimension)
    index, report = SentenceIndex.build(corpus, lazy, previous)
    assert report.embedded == 0 and not lazy.loaded
    np.testing.assert_array_equal(index.vectors, previous.vectors)


def test_rebuild_process_reports_its_errors_as_the_same_type(small_corpus: Path, tmp_path: Path):
    settings = Settings(
        _env_file=None,
        corpus_dir=small_corpus,
        index_dir=tmp_path / "index",
        embedding_model=str(tmp_path / "no-model"),
    )
    with pytest.raises(ModelError, match="no-model"):
        BuildProcess().run(IndexJob.of(settings))


def test_default_service_reindexes_in_a_child_process_without_torch(wiki_service, tmp_path: Path):
    """The serving process answers from the new index after /reindex and never imports torch."""
    corpus = tmp_path / "corpus"
    index = tmp_path / "index"
    shutil.copytree(wiki_service.settings.corpus_dir, corpus)
    shutil.copytree(wiki_service.settings.index_dir, index)  # index and ONNX export, as built
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bot.service import QAService\n"
        "from bot.settings import Settings\n"
        f"s = Settings(_env_file=None, corpus_dir={str(corpus)!r}, index_dir={str(index)!r})\n"
        "service = QAService(s)\n"
        "service.open(rebuild=False)\n"
        "unchanged = service.reindex()\n"
        "article = Path(s.corpus_dir) / 'oxygen.md'\n"
        "article.write_text(article.read_text(encoding='utf-8') + "
        "'\\n\\nThe zorblax isotope of oxygen was named by the imaginary chemist Quintus Pell.\\n', encoding='utf-8')\n"
        "changed = service.reindex()\n"
        "answer = service.answerer.answer('Who named the zorblax isotope?')\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'unchanged': unchanged.embedded, 'embedded': changed.embedded,\n"
        "                  'changed': changed.changed, 'cited': [c.text for c in answer.citations]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["unchanged"] == 0
    assert result["embedded"] == 1 and result["changed"] == ["oxygen.md"]
    assert result["cited"] and "Quintus Pell" in result["cited"][0]


FIRST_ARTICLE = """# Tram line opens

The new tram line to the airport opened on Tuesday. It has eleven stops.
"""

SECOND_NEW_ARTICLE = """# Museum roof repaired

The museum's glass roof was repaired after the storm. Repairs cost two million euros.
"""


class GatedEncoder:
    """The real model, except that the first encode waits until the test opens the gate."""

    def __init__(self, encoder, entered: threading.Event, gate: threading.Event) -> None:
        self.encoder, self.entered, self.gate = encoder, entered, gate
        self.name, self.dimension = encoder.name, encoder.dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(300)
        return self.encoder.encode(texts)


def test_index_command_during_a_rebuild_waits_and_neither_build_is_lost(news_service, real_encoder, tmp_path: Path):
    """`python -m bot index` while the bot rebuilds: it waits for the bot's build, then refreshes
    from it; the bot keeps answering throughout and picks the newer build up on its next reindex."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(news_service.settings.corpus_dir, corpus)
    shutil.copytree(news_service.settings.index_dir, index)  # index and ONNX export, as built
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=index)
    entered, gate = threading.Event(), threading.Event()
    service = QAService(settings, encoder_factory=lambda: GatedEncoder(real_encoder, entered, gate))
    service.open()
    (corpus / "tram.md").write_text(FIRST_ARTICLE, encoding="utf-8")
    reports: list = []
    rebuild = threading.Thread(target=lambda: reports.append(service.reindex()))
    rebuild.start()
    try:
        assert entered.wait(120)  # the bot's rebuild holds the index lock, half-way through
        (corpus / "museum.md").write_text(SECOND_NEW_ARTICLE, encoding="utf-8")
        command = subprocess.Popen(
            [sys.executable, "-m", "bot", "--corpus-dir", str(corpus), "--index-dir", str(index), "index"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert command.stderr is not None
        waiting = ""
        for line in command.stderr:
            if "waiting for it to finish" in line:
                waiting = line
                break
        assert waiting, "the index command did not wait for the running build"
        assert service.answerer.answer("Where did Kim step onto a red carpet?").citations  # still serving
    finally:
        gate.set()
        rebuild.join()
    out, err = command.communicate(timeout=300)
    assert command.returncode == 0, err
    assert reports and reports[0].added == ["tram.md"]  # the bot's build
    final = SentenceIndex.load(index)
    assert {"tram.md", "museum.md"} <= set(final.articles)  # the command's build, on top of the bot's
    museum = sum(1 for s in final.sentences if s.doc == "museum.md")
    assert f"({museum} embedded)" in out  # only its own article was embedded: the bot's build was reused
    assert [p.name for p in index.iterdir() if p.name.startswith("build-")] == [
        (index / "CURRENT").read_text(encoding="utf-8").strip()
    ]
    again = service.reindex()  # the bot serves the newer build without embedding anything
    assert again.embedded == 0
    assert "museum.md" in service.answerer.index.articles
    answer = service.answerer.answer("How much did the museum roof repairs cost?")
    assert answer.citations and "two million" in answer.citations[0].text
