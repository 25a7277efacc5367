"""Open the index for the settings, answer from it, and rebuild it without losing the old one.

Serving never needs torch: questions are embedded by the ONNX export of the model kept beside
the index (`bot.onnx_encoder`). With the default encoder factory, everything that needs torch
(embedding sentences, exporting the model) runs in a child process, so the serving process keeps
its start time and memory; it then loads the new index from disk and swaps it in.
A custom `encoder_factory` (tests, other engines) builds in-process, and serving uses the
ONNX export of the model if there is one, else the factory's encoder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, TextIO

from .answer import Answerer
from .corpus import Corpus, CorpusError, load_corpus
from .encoder import Encoder, ModelError, SentenceTransformerEncoder
from .helper import HelperThread
from .index import (
    CURRENT, MANIFEST, BuildReport, IndexProblem, LazyEncoder, SentenceIndex, _remove_old_builds, open_index,
)
from .onnx_encoder import OnnxEncoder, OnnxProblem, configured_dimension, exportable, has_export, onnx_dir
from .progress import say_step
from .settings import Settings

log = logging.getLogger(__name__)

# Errors a rebuild process reports by name; the parent raises the same type with the message.
_CHILD_ERRORS: dict[str, type[Exception]] = {
    "CorpusError": CorpusError,
    "ModelError": ModelError,
    "IndexProblem": IndexProblem,
    "OSError": OSError,
    "OnnxProblem": OnnxProblem,
    "ValueError": ValueError,
}


def limit_threads(threads: int) -> None:
    """Use at most `threads` threads for FAISS searches in this process (ENCODER_THREADS).

    On a small shared machine FAISS's default (all cores, spinning OpenMP workers) makes one
    flat search over 10,000 sentences take ~40 ms instead of ~1 ms when other work is running.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    import faiss

    faiss.omp_set_num_threads(threads)


class QAService:
    """The current Answerer for a corpus; `reindex` swaps in a new one whole, or keeps the old."""

    def __init__(self, settings: Settings, encoder_factory: Callable[[], Encoder] | None = None) -> None:
        self.settings = settings
        self._in_process = encoder_factory is not None  # a custom factory cannot cross a process boundary
        self._encoder_factory = encoder_factory or (
            lambda: SentenceTransformerEncoder(settings.embedding_model, settings.encoder_threads)
        )
        self._factory_encoder: Encoder | None = None  # made only when something needs it
        self._encoder: Encoder | None = None  # the serving encoder
        self._answerer: Answerer | None = None
        self._lock = threading.Lock()  # one rebuild at a time
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

    def _needs_export(self) -> bool:
        model = self.settings.embedding_model
        return not has_export(self.settings.index_dir, model) and exportable(model)

    def _export_in_process(self) -> None:
        from .onnx_encoder import export_onnx

        encoder = self._make_factory_encoder()
        if isinstance(encoder, SentenceTransformerEncoder) and encoder.name == self.settings.embedding_model:
            try:
                export_onnx(encoder, self.settings.index_dir)
            except ModelError as exc:
                log.warning("serving with sentence-transformers: %s", exc)

    def open(self, rebuild: bool = True, progress: Callable[[int, int], None] | None = None) -> BuildReport | None:
        """Load the index (rebuilding it when missing or stale, if allowed)."""
        s = self.settings
        limit_threads(s.encoder_threads)
        report: BuildReport | None = None
        if self._in_process:
            index, report = open_index(
                s.corpus_dir, s.index_dir, self._make_factory_encoder, s.embedding_model, rebuild=rebuild, progress=progress
            )
            if rebuild and self._needs_export():
                self._export_in_process()
        else:
            try:
                index, _ = open_index(
                    s.corpus_dir, s.index_dir, self._make_factory_encoder, s.embedding_model, rebuild=False
                )
                if rebuild and self._needs_export():
                    try:
                        run_build_process(s, build=False, progress=progress)
                    except (ModelError, OnnxProblem, RuntimeError) as exc:  # serve with the factory's encoder
                        log.warning("could not export the model to ONNX: %s", exc)
            except IndexProblem as problem:
                if not rebuild:
                    raise
                log.info("rebuilding the index: %s", problem)
                report = run_build_process(s, build=True, progress=progress)
                index = SentenceIndex.load(s.index_dir)
        self._encoder = self._serving_encoder()
        self._answerer = Answerer(index, self._encoder, s.max_citations, helper=self._helper)
        return report

    def _unchanged(self, index: SentenceIndex, corpus: Corpus) -> bool:
        """True when the saved index is the one serving and matches the corpus, model and export."""
        s = self.settings
        if index.model != s.embedding_model or index.fingerprint() != corpus.fingerprint():
            return False
        if index.words is None:  # saved before the word index was: rebuild (nothing is re-embedded)
            return False
        try:
            build_dir = s.index_dir / (s.index_dir / CURRENT).read_text(encoding="utf-8").strip()
            saved = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if saved.get("checksums") != index.manifest.get("checksums"):
            return False
        return not self._needs_export() and not (
            isinstance(self._encoder, SentenceTransformerEncoder) and has_export(s.index_dir, s.embedding_model)
        )

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Rebuild from the corpus folder; on any failure the previous index keeps serving.

        An article that cannot be read at all fails the rebuild (rather than silently dropping
        it from the index); a failed rebuild leaves no half-written build folder behind.
        """
        with self._lock:
            try:
                return self._reindex(progress)
            except BaseException:
                discard_stray_builds(self.settings.index_dir)
                raise

    def _reindex(self, progress: Callable[[int, int], None] | None) -> BuildReport:
        started = time.perf_counter()
        s = self.settings
        previous = self._answerer.index if self._answerer else None
        corpus = load_corpus(s.corpus_dir)
        unreadable = [p.message for p in corpus.problems if p.unreadable]
        if unreadable:
            raise CorpusError("; ".join(unreadable) + " (fix or remove the file, then reindex)")
        if previous is not None and self._unchanged(previous, corpus):
            report = BuildReport(
                articles=len(corpus.articles),
                sentences=len(previous.sentences),
                embedded=0,
                seconds=time.perf_counter() - started,
                skipped=[p.message for p in corpus.problems],
            )
            log.info("reindexed (nothing changed): %s", report.summary())
            return report
        if self._in_process:
            encoder = LazyEncoder(self._make_factory_encoder, s.embedding_model)
            index, report = SentenceIndex.build(corpus, encoder, previous, progress)
            index.save(s.index_dir)
            if self._needs_export():
                self._export_in_process()
        else:
            report = run_build_process(s, build=True, progress=progress)
            index = SentenceIndex.load(s.index_dir)
            report.seconds = time.perf_counter() - started
        if not isinstance(self._encoder, OnnxEncoder):  # an export may exist now
            self._encoder = self._serving_encoder()
        self._answerer = Answerer(index, self._encoder, s.max_citations, helper=self._helper)
        log.info("reindexed: %s", report.summary())
        return report


def discard_stray_builds(index_dir: Path) -> None:
    """Remove build folders CURRENT does not point to (left by a rebuild killed half-way)."""
    if not index_dir.is_dir():
        return
    try:
        current = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        current = ""
    _remove_old_builds(index_dir, keep=current)


# --- the rebuild process ----------------------------------------------------------------------


@dataclass(frozen=True)
class BuildJob:
    """What a rebuild process is asked to do (sent as JSON on its standard input)."""

    corpus_dir: str
    index_dir: str
    model: str
    threads: int
    build: bool  # False: only export the model to ONNX


def build_index(job: BuildJob, progress: Callable[[int, int], None] | None = None) -> BuildReport | None:
    """Refresh the index (embedding only new sentences) and make sure the ONNX export exists.

    New sentences are embedded with the verified ONNX export when there is one (the same vectors
    as sentence-transformers, cosine >= 0.99999, without importing torch); sentence-transformers/
    torch are loaded only to embed before the first export, and to export.
    """
    index_dir = Path(job.index_dir)

    def make_encoder() -> Encoder:
        try:
            return OnnxEncoder(onnx_dir(index_dir, job.model), job.model, job.threads)
        except OnnxProblem:
            say_step(progress, f"loading the model {job.model}")
            return SentenceTransformerEncoder(job.model, job.threads)

    encoder = LazyEncoder(make_encoder, job.model, configured_dimension(job.model))
    report: BuildReport | None = None
    if job.build:
        say_step(progress, "reading the articles")
        corpus = load_corpus(Path(job.corpus_dir))
        try:
            previous: SentenceIndex | None = SentenceIndex.load(index_dir)
        except IndexProblem:
            previous = None
        index, report = SentenceIndex.build(corpus, encoder, previous, progress)
        say_step(progress, "writing the index")
        index.save(index_dir)
    if not has_export(index_dir, job.model) and exportable(job.model):
        from .onnx_encoder import export_onnx

        loaded = encoder.load() if encoder.loaded else None
        if not isinstance(loaded, SentenceTransformerEncoder):
            say_step(progress, f"loading the model {job.model}")
            loaded = SentenceTransformerEncoder(job.model, job.threads)
        try:
            say_step(progress, "exporting the model to ONNX (questions are encoded with it)")
            export_onnx(loaded, index_dir)
        except ModelError as exc:  # the index is saved; serving falls back to sentence-transformers
            log.warning("could not export the model to ONNX: %s", exc)
    return report


def run_build_process(
    settings: Settings, build: bool = True, progress: Callable[[int, int], None] | None = None
) -> BuildReport | None:
    """Run `build_index` in a fresh Python process and return its report (raises its errors)."""
    job = BuildJob(
        str(Path(settings.corpus_dir).resolve()),
        str(Path(settings.index_dir).resolve()),
        settings.embedding_model,
        settings.encoder_threads,
        build,
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-c", "from bot.service import _build_process_main; _build_process_main()"]
    report: BuildReport | None = None
    error: tuple[str, str] | None = None
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(asdict(job)))
        child.stdin.close()
        for line in child.stdout:
            message = json.loads(line)
            if "progress" in message and progress is not None:
                progress(*message["progress"])
            elif "step" in message:
                say_step(progress, message["step"])
            elif "report" in message:
                report = BuildReport(**message["report"]) if message["report"] else None
            elif "error" in message:
                error = (message["error"], message["message"])
        code = child.wait()
    if error is not None:
        raise _CHILD_ERRORS.get(error[0], RuntimeError)(error[1])
    if code != 0:
        raise RuntimeError(f"the index rebuild process failed (exit code {code}); see its messages above")
    return report


def _send(out: TextIO, message: dict) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class _ChildProgress:
    """The rebuild process's progress and steps, as JSON lines to the parent."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, done: int, total: int) -> None:
        _send(self.out, {"progress": [done, total]})

    def step(self, label: str) -> None:
        _send(self.out, {"step": label})


def _build_process_main() -> None:
    """Entry point of the rebuild process: a BuildJob on stdin, JSON lines on stdout."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    job = BuildJob(**json.loads(sys.stdin.read()))
    try:
        report = build_index(job, _ChildProgress(out))
    except tuple(_CHILD_ERRORS.values()) as exc:
        kind = next(name for name, cls in _CHILD_ERRORS.items() if isinstance(exc, cls))
        _send(out, {"error": kind, "message": str(exc)})
        return
    _send(out, {"report": asdict(report) if report is not None else None})
