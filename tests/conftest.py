"""Shared fixtures: the fake encoder, a small corpus, and the real packaged model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.encoder import SentenceTransformerEncoder
from bot.service import QAService
from bot.settings import Settings

from .fakes import FakeEncoder
from .postgres import database_url, postgres_url  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = ROOT / "corpus"  # the news article the bot ships with
# Two Wikipedia articles (CC BY-SA, as in SQuAD dev) for tests that ask about many facts
WIKI_CORPUS = ROOT / "tests" / "fixtures" / "wiki"

SMALL_ARTICLE = """---
title: Harbour festival opens
url: https://example.com/harbour
published: 2024-05-01
---

The harbour festival opened on Friday with a parade of tall ships.
PHOTO: REUTERS

Mayor Anna Berg cut the ribbon at the old customs house. About 40,000 visitors are expected over three days.

Share it

The festival ends on Sunday with fireworks over the bay.
"""


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A corpus folder with one short article."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "harbour.md").write_text(SMALL_ARTICLE, encoding="utf-8")
    return folder


@pytest.fixture
def fake_settings(small_corpus: Path, tmp_path: Path) -> Settings:
    """Settings over the small corpus, for the fake encoder, ignoring any .env."""
    return Settings(
        _env_file=None,
        corpus_dir=small_corpus,
        index_dir=tmp_path / "index",
        embedding_model=FakeEncoder.name,
    )


@pytest.fixture
def fake_service(fake_settings: Settings) -> QAService:
    """An opened QAService with the fake encoder over the small corpus."""
    service = QAService(fake_settings, encoder_factory=FakeEncoder)
    service.open()
    return service


@pytest.fixture(scope="session")
def real_encoder() -> SentenceTransformerEncoder:
    """The packaged all-MiniLM-L6-v2, loaded once per test session (offline)."""
    return SentenceTransformerEncoder()


def _real_service(corpus_dir: Path, index_dir: Path, encoder) -> QAService:
    settings = Settings(_env_file=None, corpus_dir=corpus_dir, index_dir=index_dir)
    service = QAService(settings, encoder_factory=lambda: encoder)
    service.open()
    return service


@pytest.fixture(scope="session")
def wiki_service(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> QAService:
    """The two Wikipedia fixture articles indexed with the real model, once per session."""
    return _real_service(WIKI_CORPUS, tmp_path_factory.mktemp("wiki-index"), real_encoder)


@pytest.fixture(scope="session")
def news_service(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> QAService:
    """The bundled corpus (the news article) indexed with the real model, once per session."""
    return _real_service(BUNDLED_CORPUS, tmp_path_factory.mktemp("news-index"), real_encoder)
