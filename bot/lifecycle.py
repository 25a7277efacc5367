"""The index lifecycle: decide whether to use, refresh or rebuild the index, and do it safely.

`decide` is the one place that compares the corpus and the model with the saved manifest.
`update_index` carries the decision out under a lock on the index folder, so two builds
(the bot's /reindex and a `python -m bot index`, say) never write at once: the second waits,
then decides again from what the first saved. `BuildProcess` runs `update_index` in a child
process (multiprocessing, spawn) so that a serving process never imports torch, and can stop
it at once. Start, /reindex and /add go through `ensure_index`, which builds only when
`decide` says so; `python -m bot index`, itself a build process, runs `update_index`.

With DATABASE_URL set (`IndexJob.database_url`) the same lifecycle keeps the index in
PostgreSQL (bot.store_pg) instead of INDEX_DIR: `decide` compares with the current version's
manifest, a build holds the database's build lock (one build at a time across every process
on that database; a second waits, then decides again), reuses the vectors of the current
version, writes a new version, switches the pointer in one transaction and drops the versions
nobody reads. INDEX_DIR then holds only the ONNX export serving encodes with (and its lock).
"""

from __future__ import annotations

import enum
import fcntl
import importlib.util
import logging
import multiprocessing
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from .corpus import Corpus, CorpusError, load_corpus
from .corpus import unchanged as corpus_unchanged
from .db import DatabaseProblem
from .encoder import Encoder, ModelError
from .index import (
    FORMAT_VERSION,
    BuildReport,
    IndexProblem,
    LazyEncoder,
    Previous,
    SentenceIndex,
    current_build,
    read_manifest,
    sha256_file,
)
from .onnx_encoder import OnnxProblem, configured_dimension, exportable, has_export
from .progress import Progress, say_step
from .settings import Settings

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# What building needs beyond serving (the `build` extra of pyproject.toml), by import name.
BUILD_MODULES = ("bm25s", "pysbd", "torch", "sentence_transformers", "onnx")
BUILD_EXTRA_HINT = "pip install 'citebot[build]' (in a clone: pip install -e '.[build]')"
# Errors a build reports; they cross the process boundary as pickled objects.
BUILD_ERRORS = (CorpusError, ModelError, IndexProblem, OnnxProblem, OSError, ValueError, DatabaseProblem)


class Action(enum.Enum):
    USE = "use"  # the saved index matches the corpus and the model
    REFRESH = "refresh"  # the corpus changed: build again, reusing the vectors of known sentences
    REBUILD = "rebuild"  # no usable index (missing, corrupt, other format or model): build from scratch


@dataclass(frozen=True)
class Plan:
    """What `decide` found, and why."""

    action: Action
    reason: str
    export: bool  # the ONNX export serving encodes questions with is missing (and can be made)
    corpus: Corpus | None = None  # the corpus, when deciding had to parse it


@dataclass(frozen=True)
class IndexJob:
    """Which corpus, index and model (plain values, so that it crosses to a child process)."""

    corpus_dir: Path
    index_dir: Path
    model: str
    threads: int = 1
    database_url: str | None = field(default=None, repr=False)  # a secret: never in a log line

    @classmethod
    def of(cls, settings: Settings) -> IndexJob:
        url = settings.database_url
        return cls(
            Path(settings.corpus_dir).resolve(),
            Path(settings.index_dir).resolve(),
            settings.embedding_model,
            settings.encoder_threads,
            url.get_secret_value() if url is not None else None,
        )


class BuildStopped(RuntimeError):
    """The build process was stopped (the bot is shutting down); the previous index stays."""


def decide(job: IndexJob) -> Plan:
    """Use, refresh or rebuild: the saved manifest against the model and the corpus folder.

    The plan's reason is a sentence for the user that says what to run.
    """
    export = exportable(job.model) and not has_export(job.index_dir, job.model)
    hint = "run `python -m bot index` to"
    try:
        manifest = saved_manifest(job, verify=True)
    except (IndexProblem, OSError, KeyError) as problem:
        return Plan(Action.REBUILD, str(problem), export)
    if manifest.get("model") != job.model:
        return Plan(
            Action.REBUILD,
            f"The index was built with the model {manifest.get('model')!r} but "
            f"EMBEDDING_MODEL is {job.model!r}: {hint} rebuild it.",
            export,
        )
    if manifest.get("format") != FORMAT_VERSION:  # (an index folder's is checked as it is read)
        return Plan(
            Action.REBUILD,
            f"The index in the database has format {manifest.get('format')}, this version reads "
            f"{FORMAT_VERSION}: {hint} rebuild it.",
            export,
        )
    if corpus_unchanged(job.corpus_dir, manifest["corpus"]):
        return Plan(Action.USE, "the articles are unchanged", export)  # not even parsed
    corpus = load_corpus(job.corpus_dir)
    if corpus.fingerprint() == manifest["corpus"] and not any(p.unreadable for p in corpus.problems):
        return Plan(Action.USE, "the articles are unchanged", export, corpus)
    return Plan(
        Action.REFRESH,
        "The index does not match the articles in the corpus folder (added, changed or "
        f"removed files): {hint} refresh it.",
        export,
        corpus,
    )


def saved_manifest(job: IndexJob, verify: bool = False) -> dict:
    """The manifest of the index answering now: INDEX_DIR's (with `verify`, its files checked
    against their checksums), or with DATABASE_URL the current version's in the database.

    Raises IndexProblem when there is none (or it is corrupt), DatabaseProblem when the database
    cannot be used (unreachable, not migrated).
    """
    if job.database_url is not None:
        from .store_pg import NoVersion, current_manifest

        try:
            return current_manifest(job.database_url)[1]
        except NoVersion as exc:
            raise IndexProblem(str(exc)) from None
    build_dir, manifest = read_manifest(job.index_dir)
    if verify:
        for name, digest in manifest["checksums"].items():
            if sha256_file(build_dir / name) != digest:
                raise IndexProblem(
                    f"The index file {name} in {str(build_dir)!r} is corrupt (checksum mismatch): "
                    "run `python -m bot index` to rebuild it."
                )
    return manifest


class _Folder:
    """Where a build goes without DATABASE_URL: INDEX_DIR (a new build folder, CURRENT switched)."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def previous(self) -> Previous | None:
        try:
            return SentenceIndex.load(self.index_dir)
        except IndexProblem:
            return None

    def save(self, index: SentenceIndex) -> None:
        index.save(self.index_dir)
        _prune_builds(self.index_dir)


class _Database:
    """Where a build goes with DATABASE_URL: a new version, made current, old ones dropped."""

    def __init__(self, store, build) -> None:
        self.store = store
        self.build = build

    def previous(self) -> Previous | None:
        """The current version's vectors by text key (not its texts and postings)."""
        return self.store.known_vectors()

    def save(self, index: SentenceIndex) -> None:
        version = self.build.write(index)
        self.build.switch(version)
        dropped = self.build.drop_old()
        log.info("index version %d is current (dropped versions: %s)", version, dropped or "none")


@contextmanager
def _destination(job: IndexJob) -> Iterator[_Folder | _Database]:
    """The build's destination, holding its build lock (waiting while another build holds it)."""
    if job.database_url is None:
        yield _Folder(job.index_dir)
        return
    from .store_pg import PgStore

    with PgStore(job.database_url, max_connections=2) as store, store.building(wait=True) as build:
        yield _Database(store, build)


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's build lock (flock: released even when the holder is killed)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another build of %s is running; waiting for it to finish", index_dir)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def require_build_extra() -> None:
    """Raise IndexProblem, saying what to install, when the build dependencies are missing."""
    missing = [m for m in BUILD_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise IndexProblem(
            f"Building the index needs the build dependencies ({', '.join(missing)} missing): {BUILD_EXTRA_HINT}"
        )


def update_index(
    job: IndexJob, encoder_factory: Callable[[], Encoder] | None = None, progress: Progress | None = None
) -> BuildReport | None:
    """Carry out `decide`'s plan under the index lock; None when the saved index is used as it is.

    `encoder_factory` embeds new sentences (default: the model's ONNX export when there is one,
    else sentence-transformers). An article that cannot be read at all fails the build rather
    than silently leaving the index. Builds left half-written by a killed process are removed.
    """
    started = time.perf_counter()
    with index_lock(job.index_dir), _destination(job) as destination:
        _prune_builds(job.index_dir)
        plan = decide(job)
        report: BuildReport | None = None

        def load_model(factory: Callable[[], Encoder]) -> Callable[[], Encoder]:
            def load() -> Encoder:
                say_step(progress, f"loading the model {job.model}")
                return factory()

            return load

        if encoder_factory is None:  # the dimension from the model's config: no model loaded to reuse vectors
            encoder = LazyEncoder(load_model(_default_encoder(job)), job.model, configured_dimension(job.model))
        else:
            encoder = LazyEncoder(load_model(encoder_factory), job.model)
        if plan.action is not Action.USE:
            log.info("building the index (%s): %s", plan.action.value, plan.reason)
            require_build_extra()
            say_step(progress, "reading the articles")
            corpus = plan.corpus or load_corpus(job.corpus_dir)
            unreadable = [p.message for p in corpus.problems if p.unreadable]
            if unreadable:
                raise CorpusError("; ".join(unreadable) + " (fix or remove the file, then reindex)")
            previous = destination.previous() if plan.action is Action.REFRESH else None
            index, report = SentenceIndex.build(corpus, encoder, previous, progress)
            say_step(progress, "writing the index")
            destination.save(index)
            report.seconds = time.perf_counter() - started
        if plan.export:
            require_build_extra()
            say_step(progress, "exporting the model to ONNX")
            _export(job, encoder)
    return report


def _default_encoder(job: IndexJob) -> Callable[[], Encoder]:
    """New sentences are embedded with the verified ONNX export when there is one (the same
    vectors as sentence-transformers, without loading torch), else with sentence-transformers."""
    from .encoder import SentenceTransformerEncoder
    from .onnx_encoder import OnnxEncoder, onnx_dir

    def make() -> Encoder:
        try:
            return OnnxEncoder(onnx_dir(job.index_dir, job.model), job.model, job.threads)
        except OnnxProblem:
            return SentenceTransformerEncoder(job.model, job.threads)

    return make


def _export(job: IndexJob, encoder: LazyEncoder) -> None:
    """Export the model to ONNX for serving; on failure serving falls back to sentence-transformers."""
    from .encoder import SentenceTransformerEncoder
    from .onnx_encoder import export_onnx

    loaded = encoder.load() if encoder.loaded else None
    if not isinstance(loaded, SentenceTransformerEncoder) or loaded.name != job.model:
        loaded = SentenceTransformerEncoder(job.model, job.threads)  # torch: what the export is made from
    try:
        export_onnx(loaded, job.index_dir)
    except ModelError as exc:
        log.warning("could not export the model to ONNX: %s", exc)


def _prune_builds(index_dir: Path) -> None:
    """Remove build folders CURRENT does not name (the caller holds the lock, so none is being written)."""
    try:
        current = current_build(index_dir)
    except OSError:
        current = ""
    for child in index_dir.iterdir():
        if child.is_dir() and child.name.startswith("build-") and child.name != current:
            shutil.rmtree(child, ignore_errors=True)


def _discard_stray_builds(index_dir: Path) -> None:
    """After a build process died: remove what it left half-written, unless another build runs."""
    if not index_dir.is_dir():
        return
    with (index_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another build holds the lock; it prunes when it starts or ends
        _prune_builds(index_dir)


def unchanged_report(job: IndexJob) -> BuildReport:
    """The report of a build that had nothing to do: what the saved index holds."""
    manifest = saved_manifest(job)
    return BuildReport(articles=manifest["articles"], sentences=manifest["sentences"], embedded=0, seconds=0.0)


def ensure_index(
    job: IndexJob,
    run: Callable[[IndexJob, Progress | None], BuildReport | None],
    progress: Progress | None = None,
    build: bool = True,
) -> BuildReport | None:
    """Make the saved index fit `job`: nothing to do when `decide` says so, else `run` it
    (`update_index` here, or `BuildProcess.run` in a child); None when nothing was built.

    With `build=False` an index that does not fit raises IndexProblem, saying what to run.
    """
    plan = decide(job)
    if plan.action is Action.USE and not plan.export:
        return None
    if not build:
        if plan.action is Action.USE:
            return None  # serve with sentence-transformers until the export is made
        raise IndexProblem(plan.reason)
    return run(job, progress)


# --- the build process ------------------------------------------------------------------------


class BuildProcess:
    """Runs `update_index` in a fresh Python process (spawn); `stop` ends it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = False

    def run(self, job: IndexJob, progress: Progress | None = None) -> BuildReport | None:
        """Build in a child process and return its report; raises the child's error as is."""
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child_main, args=(job, sender), name="citebot-build", daemon=True)
        with self._lock:
            if self._stopping:
                raise BuildStopped("the bot is shutting down; the index was not rebuilt")
            process.start()
            self._process = process
        sender.close()
        log.info("building the index in process %d", process.pid)
        try:
            while True:
                try:
                    kind, value = receiver.recv()
                except EOFError:
                    process.join()
                    _discard_stray_builds(job.index_dir)
                    if self._stopping:
                        raise BuildStopped("the bot is shutting down; the previous index is kept") from None
                    raise RuntimeError(
                        f"the index build process failed (exit code {process.exitcode}); see its messages above"
                    ) from None
                if kind == "progress" and progress is not None:
                    progress(*value)
                elif kind == "step":
                    say_step(progress, value)
                elif kind == "error":
                    raise value
                elif kind == "done":
                    return value
        finally:
            receiver.close()
            process.join()
            with self._lock:
                self._process = None

    def stop(self) -> None:
        """Kill a running build (its lock goes with it; the old index stays) and refuse new ones."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is not None and process.is_alive():
            log.info("stopping the index build process %d", process.pid)
            process.kill()
            process.join()


class _Relay:
    """The build process's progress: embedding counts and named steps, sent to the parent."""

    def __init__(self, sender: Connection) -> None:
        self.sender = sender

    def __call__(self, done: int, total: int) -> None:
        self.sender.send(("progress", (done, total)))

    def step(self, label: str) -> None:
        self.sender.send(("step", label))


def _child_main(job: IndexJob, sender: Connection) -> None:
    """Entry point of the build process: progress, then the report or the error, through `sender`."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = update_index(job, progress=_Relay(sender))
    except BUILD_ERRORS as exc:
        sender.send(("error", exc))
        return
    sender.send(("done", report))
