"""Open the index for the settings, answer from it, and rebuild it without losing the old one."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from .answer import Answerer
from .corpus import load_corpus
from .encoder import Encoder, SentenceTransformerEncoder
from .index import BuildReport, SentenceIndex, open_index
from .settings import Settings

log = logging.getLogger(__name__)


class QAService:
    """The current Answerer for a corpus; `reindex` swaps in a new one whole, or keeps the old."""

    def __init__(self, settings: Settings, encoder_factory: Callable[[], Encoder] | None = None) -> None:
        self.settings = settings
        self._encoder_factory = encoder_factory or (
            lambda: SentenceTransformerEncoder(settings.embedding_model, settings.encoder_threads)
        )
        self._encoder: Encoder | None = None
        self._answerer: Answerer | None = None
        self._lock = threading.Lock()  # one rebuild at a time
        self.started = time.monotonic()
        self.questions_answered = 0

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self._encoder_factory()
        return self._encoder

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            raise RuntimeError("QAService.open() must be called first")
        return self._answerer

    @property
    def corpus_dir(self) -> Path:
        return self.settings.corpus_dir

    def open(self, rebuild: bool = True, progress: Callable[[int, int], None] | None = None) -> BuildReport | None:
        """Load the index (rebuilding it when missing or stale, if allowed)."""
        index, report = open_index(
            self.settings.corpus_dir,
            self.settings.index_dir,
            lambda: self.encoder,
            self.settings.embedding_model,
            rebuild=rebuild,
            progress=progress,
        )
        self._answerer = Answerer(index, self.encoder, self.settings.max_citations)
        return report

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Rebuild from the corpus folder; on any failure the previous index keeps serving."""
        with self._lock:
            previous = self._answerer.index if self._answerer else None
            corpus = load_corpus(self.settings.corpus_dir)
            index, report = SentenceIndex.build(corpus, self.encoder, previous, progress)
            index.save(self.settings.index_dir)
            self._answerer = Answerer(index, self.encoder, self.settings.max_citations)
            log.info("reindexed: %s", report.summary())
            return report
