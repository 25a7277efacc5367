"""Open the index for the settings, answer from it, and rebuild it without losing the old one.

Serving never needs torch: questions are embedded by the ONNX export of the model kept beside
the index (`bot.onnx_encoder`). Whether to build is decided by `bot.lifecycle`. With the
default encoder, builds run in a child process, so the serving process keeps its start time
and memory and never imports torch; it then loads the new index from disk and swaps it in.
A custom `encoder_factory` (tests, other engines) builds in this process, and serving uses
the ONNX export of the model if there is one, else the factory's encoder.

With DATABASE_URL the index lives in PostgreSQL (bot.store_pg): the service serves the current
version question by question from the database (bot.serve_pg: only the candidates' rows are
read; the version stays pinned while it is served), and watches the database (LISTEN, and a
cheap poll of the version pointer) so that a version published by any process (another
replica's /reindex, a `python -m bot index`) is swapped in without a restart, and the old
version's pin released.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .answer import Answerer
from .encoder import Encoder, SentenceTransformerEncoder
from .helper import HelperThread
from .index import BuildReport, SentenceIndex, read_manifest
from .lifecycle import BuildProcess, IndexJob, Progress, ensure_index, unchanged_report, update_index
from .onnx_encoder import OnnxEncoder, OnnxProblem, onnx_dir
from .serve_pg import DatabaseIndex, DatabaseRetriever
from .settings import Settings
from .store_pg import PgStore, VersionWatcher

log = logging.getLogger(__name__)

# With DATABASE_URL: a replaced version stays pinned this long (questions in flight finish on it)
RELEASE_AFTER_SECONDS = 30.0


def limit_threads(threads: int) -> None:
    """Use at most `threads` threads for FAISS searches and BLAS in this process (ENCODER_THREADS).

    On a small shared machine FAISS's default (all cores, spinning OpenMP workers) makes a
    flat search many times slower when other work is running; OpenBLAS's workers (a question's
    token-vector matches are small matrix products) spin on the core the encoder's helper
    thread runs on, which cost bulk answering ~0.3 s per 256 questions.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def share_malloc_arenas() -> bool:
    """Let this process's threads share one glibc malloc arena, unless MALLOC_ARENA_MAX says otherwise.

    By default glibc gives each thread that allocates (the encoder's helper thread, the event
    loop's worker threads) an arena of its own, and memory freed there stays mapped: a serving
    process measured 359 MB at its peak after bursts of questions, and 315 MB with one arena, at
    the same speed. Call before starting threads. False where the C library is not glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:  # glibc has read it at start
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


class QAService:
    """The current Answerer for a corpus; `reindex` swaps in a new one whole, or keeps the old."""

    def __init__(self, settings: Settings, encoder_factory: Callable[[], Encoder] | None = None) -> None:
        self.settings = settings
        self._custom_factory = encoder_factory  # cannot cross a process boundary: builds run here
        self._encoder_factory = encoder_factory or (
            lambda: SentenceTransformerEncoder(settings.embedding_model, settings.encoder_threads)
        )
        self._factory_encoder: Encoder | None = None  # made only when something needs it
        self._encoder: Encoder | None = None  # the serving encoder
        self._answerer: Answerer | None = None
        self._index: SentenceIndex | DatabaseIndex | None = None  # what _answerer serves, with its manifest
        self._lock = threading.Lock()  # one rebuild at a time in this process
        self._swap_lock = threading.Lock()  # one swap at a time (a rebuild's, or the version watcher's)
        url = settings.database_url
        self._database_url = url.get_secret_value() if url is not None else None
        self._store: PgStore | None = None  # with DATABASE_URL: where the index is read from
        self._watcher: VersionWatcher | None = None
        self.version: int | None = None  # with DATABASE_URL: the database version being served
        # with DATABASE_URL: how long a replaced version stays pinned, so that questions still
        # being answered from it finish before it may be dropped
        self.release_after = RELEASE_AFTER_SECONDS
        self._releases: list[tuple[threading.Timer, DatabaseIndex]] = []
        self._builds = BuildProcess()
        self._helper = HelperThread("question-words")  # scores words while the encoder runs (Answerer)
        self.started = time.monotonic()
        self.questions_answered = 0

    @property
    def encoder(self) -> Encoder:
        """The encoder questions are embedded with: the model's ONNX export, else the factory's."""
        if self._encoder is None:
            self._encoder = self._serving_encoder()
        return self._encoder

    @property
    def answerer(self) -> Answerer:
        if self._answerer is None:
            raise RuntimeError("QAService.open() must be called first")
        return self._answerer

    @property
    def index(self) -> SentenceIndex | DatabaseIndex:
        """The saved index being served, with its manifest (checksums, when it was built)."""
        if self._index is None:
            raise RuntimeError("QAService.open() must be called first")
        return self._index

    @property
    def corpus_dir(self) -> Path:
        return self.settings.corpus_dir

    def _make_factory_encoder(self) -> Encoder:
        if self._factory_encoder is None:
            self._factory_encoder = self._encoder_factory()
        return self._factory_encoder

    def _serving_encoder(self) -> Encoder:
        model = self.settings.embedding_model
        try:
            return OnnxEncoder(onnx_dir(self.settings.index_dir, model), model, self.settings.encoder_threads)
        except OnnxProblem as problem:
            log.info("serving with the %s encoder (%s)", model, problem)
        return self._make_factory_encoder()

    def _build(self, job: IndexJob, progress: Progress | None) -> BuildReport | None:
        """Where builds run: in a child process, or here with a custom encoder factory."""
        if self._custom_factory is None:
            return self._builds.run(job, progress)
        return update_index(job, self._make_factory_encoder, progress)

    def open(self, rebuild: bool = True, progress: Progress | None = None) -> BuildReport | None:
        """Load the index (rebuilding it when missing or stale, if allowed); the build's report, if any."""
        limit_threads(self.settings.encoder_threads)
        share_malloc_arenas()
        report = ensure_index(IndexJob.of(self.settings), self._build, progress, build=rebuild)
        self._swap_in()
        if self._database_url is not None and self._watcher is None:
            self._watcher = VersionWatcher(self._database_url, self.refresh)
            self._watcher.start()
        return report

    def _swap_in(self) -> bool:
        """Serve the saved index and the best encoder, unless they are what serves already;
        True when something new was swapped in."""
        with self._swap_lock:
            if not isinstance(self._encoder, OnnxEncoder):  # an export may exist now
                self._encoder = self._serving_encoder()
            current = self._answerer
            previous = self._index
            if current is not None and previous is not None and self._saved_is_served():
                if current.encoder is self._encoder:
                    return False
                index = previous
            else:
                index = self._load()
            self._index = index
            if isinstance(index, DatabaseIndex):
                self._answerer = Answerer(
                    index,
                    self._encoder,
                    self.settings.max_citations,
                    retriever=DatabaseRetriever(self._pg_store(), index.pin),
                    min_confidence=self.settings.answer_confidence,
                )
            else:
                self._answerer = Answerer(
                    index,
                    self._encoder,
                    self.settings.max_citations,
                    helper=self._helper,
                    min_confidence=self.settings.answer_confidence,
                )
            if isinstance(previous, DatabaseIndex) and previous is not index:
                self._let_go_later(previous)
            return True

    def _let_go_later(self, index: DatabaseIndex) -> None:
        """Release a replaced version after `release_after` seconds (at once when 0)."""
        if self.release_after <= 0:
            self._let_go(index)
            return
        timer = threading.Timer(self.release_after, self._let_go, args=(index,))
        timer.daemon = True
        self._releases = [(t, i) for t, i in self._releases if t.is_alive()] + [(timer, index)]
        timer.start()

    def _let_go(self, index: DatabaseIndex) -> None:
        """Release a version and drop the database versions no process serves any more (the
        last process to let go of a version drops it)."""
        import psycopg

        index.close()
        try:
            dropped = self._pg_store().drop_unused()
        except psycopg.Error as exc:  # the next build drops them instead
            log.warning("could not drop old index versions: %s", exc)
            return
        if dropped:
            log.info("dropped index versions no process serves: %s", dropped)

    def _saved_is_served(self) -> bool:
        """Whether the index serving now is the saved one (INDEX_DIR's, or the database's current version)."""
        if self._database_url is None:
            assert self._index is not None
            saved = read_manifest(self.settings.index_dir).manifest
            return self._index.manifest.get("checksums") == saved.get("checksums")
        return self._pg_store().current() == self.version

    def _load(self) -> SentenceIndex | DatabaseIndex:
        """The saved index: from INDEX_DIR (into memory), or the database's current version (pinned)."""
        if self._database_url is None:
            return SentenceIndex.load(self.settings.index_dir)
        store = self._pg_store()
        index = DatabaseIndex(store, store.pin())
        self.version = index.version
        log.info("serving index version %d from the database (%d sentences)", self.version, index.pin.sentences)
        return index

    def _pg_store(self) -> PgStore:
        if self._store is None:
            assert self._database_url is not None
            self._store = PgStore(self._database_url)
        return self._store

    def refresh(self) -> bool:
        """Serve the database's current version if another process made a new one current
        (called by the version watcher); True when it was swapped in."""
        if self._answerer is None:
            return False  # not opened yet: open() loads whatever is current
        if self._saved_is_served():  # one read of the version pointer
            return False
        return self._swap_in()

    def reindex(self, progress: Progress | None = None) -> BuildReport:
        """Refresh from the corpus folder; on any failure the previous index keeps serving.

        An article that cannot be read at all fails the rebuild (rather than silently dropping
        it from the index); a failed rebuild leaves no half-written build folder behind.
        """
        with self._lock:
            started = time.perf_counter()
            report = ensure_index(IndexJob.of(self.settings), self._build, progress)
            self._swap_in()
            if report is None:
                report = unchanged_report(IndexJob.of(self.settings))
            report.seconds = time.perf_counter() - started
            log.info("reindexed: %s", report.summary())
            return report

    def stop_builds(self) -> None:
        """Shutting down: end a running build process at once (the old index stays) and start no other."""
        self._builds.stop()

    def close(self) -> None:
        """Stop watching the database for new versions and close its connections (DATABASE_URL)."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for timer, replaced in self._releases:  # nothing is answered any more: let go of them now
            timer.cancel()
            replaced.close()
        self._releases = []
        if isinstance(self._index, DatabaseIndex):
            self._index.close()
        if self._store is not None:
            self._store.close()
            self._store = None
