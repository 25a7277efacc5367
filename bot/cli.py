"""Command line: a thin layer over the answering library."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from pydantic import ValidationError

from .settings import Settings, setting_warnings

if TYPE_CHECKING:
    from tqdm import tqdm

    from .answer import Answer, Answerer, QuestionError

log = logging.getLogger("bot")


class Failure(click.ClickException):
    """A domain error shown as one line, exit code 1."""


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _os_failure(exc: OSError) -> Failure:
    """A file-system error as one line that says what to check."""
    return Failure(f"{exc} (check that CORPUS_DIR is readable and INDEX_DIR is a writable folder)")


def _open(ctx: click.Context, rebuild: bool = True):
    """The QAService for the settings, with the index loaded (or rebuilt with a progress bar)."""
    from .answer import QuestionError  # noqa: F401  (import cost paid once here)
    from .corpus import CorpusError
    from .db import DatabaseProblem
    from .encoder import ModelError
    from .index import IndexProblem
    from .service import QAService

    service = QAService(_settings(ctx))
    ctx.call_on_close(service.close)  # DATABASE_URL: stop watching for versions, let go of the one served
    bar = _ProgressBar("embedding sentences")
    try:
        report = service.open(rebuild=rebuild, progress=bar)
    except (CorpusError, IndexProblem, ModelError, DatabaseProblem) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:  # e.g. the rebuild could not save the index
        raise _os_failure(exc) from None
    finally:
        bar.close()
    if report is not None:
        click.echo(f"Index built: {report.summary()}", err=True)
    return service


def _on_terminal() -> bool:
    """Whether a person watches stderr (progress is shown only then)."""
    return sys.stderr.isatty()


class _ProgressBar:
    """Progress of an index build on stderr, for a person at a terminal; silent otherwise.

    A line per step ("loading the model ... 12.9 s"), and a tqdm bar while sentences are embedded.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm | None = None
        self.shown = _on_terminal()
        self.step_label: str | None = None
        self.step_started = 0.0

    def step(self, label: str) -> None:
        self._end_step()
        self._close_bar()
        self.step_label, self.step_started = label, time.monotonic()
        if self.shown:
            click.echo(f"{label} ...", err=True, nl=False)

    def _end_step(self) -> None:
        if self.step_label is not None and self.shown:
            click.echo(f" {time.monotonic() - self.step_started:.1f} s", err=True)
        self.step_label = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self._end_step()
            self.bar = tqdm(total=total, desc=self.label, unit="sent", file=sys.stderr, disable=not self.shown)
        self.bar.update(done - self.bar.n)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self._end_step()
        self._close_bar()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Folder of articles (CORPUS_DIR).")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Where the index is kept (INDEX_DIR).")
@click.option("--model", help="Embedding model: package name or local folder (EMBEDDING_MODEL).")
@click.option(
    "-v", "--verbose", is_flag=True, help="Log the bot's own steps to stderr (LOG_LEVEL=DEBUG: libraries' too)."
)
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, model: str | None, verbose: bool) -> None:
    """Answer questions about news articles with cited sentences."""
    overrides: dict[str, Any] = {
        k: v for k, v in (("corpus_dir", corpus_dir), ("index_dir", index_dir), ("embedding_model", model)) if v
    }
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # its "could not parse" line: said below, with the file
    for warning in setting_warnings(Path(".env"), os.environ):
        click.echo(f"Warning: {warning}", err=True)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise Failure(f"Invalid settings: {problems}") from None
    debug = settings.log_level.strip().upper() == "DEBUG"
    logging.basicConfig(  # libraries (faiss's loader, httpx, ...) below WARNING only with LOG_LEVEL=DEBUG
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose and not debug:
        logging.getLogger("bot").setLevel(logging.INFO)
    ctx.obj = {"settings": settings}


@cli.command()
@click.pass_context
def index(ctx: click.Context) -> None:
    """Build or refresh the index of the corpus folder."""
    from .corpus import CorpusError
    from .db import DatabaseProblem
    from .encoder import ModelError
    from .index import IndexProblem
    from .lifecycle import IndexJob, unchanged_report, update_index
    from .onnx_encoder import OnnxProblem

    settings = _settings(ctx)
    bar = _ProgressBar("embedding sentences")
    job = IndexJob.of(settings)
    try:
        # decides under the index folder's lock; also makes the ONNX export that serving encodes with
        report = update_index(job, progress=bar) or unchanged_report(job)
    except (CorpusError, ModelError, IndexProblem, OnnxProblem, ValueError, DatabaseProblem) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise _os_failure(exc) from None
    finally:
        bar.close()
    assert report is not None  # build=True always reports
    for problem in report.skipped:  # each said once, here; the summary counts them
        click.echo(f"Warning: skipped {problem}", err=True)
    counted = dataclasses.replace(report, skipped=[])
    skipped = f"; skipped {len(report.skipped)} (see above)" if report.skipped else ""
    if job.database_url is None:
        click.echo(f"Indexed {counted.summary()}{skipped} -> {settings.index_dir}")
    else:
        from .store_pg import current_manifest

        version = current_manifest(job.database_url)[0]
        click.echo(f"Indexed {counted.summary()}{skipped} -> the database (DATABASE_URL), version {version}")


# Lines of standard input answered together at most: whatever has arrived, up to this many.
CHUNK = 256


class _Lines:
    """The lines of a stream, read by a thread and handed out in chunks of what has arrived.

    A chunk never waits for more input than its first line, so a person typing (or a slow pipe)
    gets each answer at once, while a file piped in is answered in big batches.
    """

    def __init__(self, stream: TextIO) -> None:
        self._queue: queue.SimpleQueue[str | BaseException | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(stream,), name="stdin-lines", daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        try:
            for line in stream:
                self._queue.put(line)
        except (OSError, ValueError) as exc:  # e.g. input that is not text in the locale's encoding
            self._queue.put(exc)
        self._queue.put(None)

    def _take(self, wait: bool) -> str | None:
        item = self._queue.get() if wait else self._queue.get_nowait()
        if isinstance(item, BaseException):
            raise Failure(f"cannot read standard input ({item}): send UTF-8 text, one question per line")
        return item

    def chunks(self, size: int) -> Iterator[list[str]]:
        """Lists of up to `size` non-blank lines (newline removed), waiting only for the first."""
        ended = False
        while not ended:
            chunk: list[str] = []
            line = self._take(wait=True)
            while line is not None:
                if line.strip():
                    chunk.append(line.rstrip("\r\n"))
                if len(chunk) >= size:
                    break
                try:
                    line = self._take(wait=False)
                except queue.Empty:
                    break
            ended = line is None
            if chunk:
                yield chunk


def _answers(answerer: Answerer, texts: list[str]) -> Iterator[tuple[str, Answer | QuestionError]]:
    """(text, Answer or QuestionError) for each text, in order, answered in batches (the batched path)."""
    from .answer import QuestionError, clean_question

    problems: list[QuestionError | None] = []
    usable: list[str] = []
    for text in texts:
        try:
            usable.append(clean_question(text))
            problems.append(None)
        except QuestionError as exc:
            problems.append(exc)
    answers = (answer for batch in answerer.answer_batches(usable) for answer in batch)
    for text, problem in zip(texts, problems, strict=True):
        yield text, problem if problem is not None else next(answers)


@cli.command()
@click.argument("question", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question, one per line.")
@click.pass_context
def ask(ctx: click.Context, question: tuple[str, ...], as_json: bool) -> None:
    """Answer QUESTION, or one question per line from standard input."""
    from .answer import QuestionError
    from .render import to_json, to_terminal

    lines = None if question else _Lines(sys.stdin)  # reads while the index loads
    service = _open(ctx)
    chunks = lines.chunks(CHUNK) if lines is not None else iter([[" ".join(question)]])
    out = sys.stdout
    failed = False
    for chunk in chunks:
        for text, result in _answers(service.answerer, chunk):
            if isinstance(result, QuestionError):
                failed = True
                if as_json:
                    click.echo(
                        json.dumps(
                            {
                                "question": text,
                                "answered": False,
                                "answer": str(result),
                                "citations": [],
                                "error": str(result),
                            },
                            ensure_ascii=False,
                        )
                    )
                else:
                    click.echo(f"Error: {result}", err=True)
                continue
            click.echo(to_json(result) if as_json else to_terminal(result))
            if not as_json and not question:
                click.echo()
            out.flush()  # each answer leaves as soon as it is made (a batch at a time)
    if failed and question:
        ctx.exit(1)


@cli.command()
@click.pass_context
def chat(ctx: click.Context) -> None:
    """Chat in the terminal: ask questions, get cited sentences (Ctrl-D or 'quit' ends)."""
    from .answer import QuestionError
    from .render import to_terminal

    service = _open(ctx)
    titles = ", ".join(a.title for a in service.answerer.index.articles.values())
    click.echo(f"Ask about: {titles}\nType a question (or 'quit').")
    stdin = sys.stdin
    interactive = stdin.isatty()  # piped questions get answers without prompts in between
    while True:
        if interactive:
            try:
                text = click.prompt("?", prompt_suffix=" ", default="", show_default=False)
            except (EOFError, click.Abort):
                click.echo()
                return
        else:
            text = stdin.readline()
            if not text:
                return
        if text.strip().lower() in ("quit", "exit", "q"):
            return
        if not text.strip():
            continue
        try:
            click.echo(to_terminal(service.answerer.answer(text)) + "\n")
        except QuestionError as exc:
            click.echo(f"{exc}\n")


@cli.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--hold-out",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave this many articles out of the index; their questions must be declined.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which articles --hold-out picks.")
@click.option("--failures", type=click.IntRange(min=0), default=0, help="Print this many failed questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.pass_context
def eval_(ctx: click.Context, file: Path, hold_out: int, seed: int, failures: int, as_json: bool) -> None:
    """Evaluate on FILE (JSON lines: q and any, or q and none): P@1, MRR, declines."""
    from .answer import Answerer
    from .evaluate import Item, evaluate, read_items

    try:
        items = read_items(file)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    if hold_out and _settings(ctx).database_url is not None:
        raise Failure("--hold-out works on the embedded index: run it with DATABASE_URL unset.")
    service = _open(ctx)
    answerer = service.answerer
    held: list[str] = []
    if hold_out:
        undocumented = [i.line for i in items if i.answerable and not i.doc]
        if undocumented:
            raise Failure(
                f'--hold-out needs the article of every answerable question: add "doc" (the article\'s file '
                f"name) to line {undocumented[0]} of {file}"
                + (f" and {len(undocumented) - 1} other lines" if len(undocumented) > 1 else "")
            )
        docs = sorted(answerer.index.articles)
        if hold_out >= len(docs):
            raise Failure(f"--hold-out {hold_out} would leave no article in the index ({len(docs)} articles)")
        held = sorted(random.Random(seed).sample(docs, hold_out))
        answerer = Answerer(
            answerer.index.without(set(held)),
            answerer.encoder,
            answerer.max_citations,
            helper=answerer.helper,
            min_confidence=answerer.min_confidence,
        )
        items = [Item(i.question, () if i.doc in held else i.gold, i.doc, i.line) for i in items]
    report = evaluate(answerer, items)
    if as_json:
        click.echo(json.dumps({"file": str(file), "held_out": held, **report.as_dict()}))
    else:
        if held:
            click.echo(f"held out {len(held)} article{'s' if len(held) > 1 else ''}: {', '.join(held)}")
        for line in report.lines():
            click.echo(line)
    for failure in report.failures[:failures]:
        click.echo(json.dumps(failure, ensure_ascii=False), err=True)


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Serve Telegram: long polling, or a webhook when WEBHOOK_URL is set (stops on SIGTERM)."""
    from .telegram.logs import configure_logging
    from .telegram.token import TokenProblem, check_token

    settings = _settings(ctx)
    try:
        check_token(settings)
        redactor = configure_logging(settings)
    except (TokenProblem, ValueError) as exc:
        raise Failure(str(exc)) from None
    from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError

    from .db import DatabaseProblem
    from .telegram.app import run_bot  # the heavy imports, once the settings are known to be usable
    from .telegram.inbox import PollerBusy

    service = _open(ctx)
    try:
        run_bot(settings, service)
    except (DatabaseProblem, PollerBusy) as exc:
        raise Failure(redactor.redact(str(exc))) from None
    except Conflict as exc:
        raise Failure(
            redactor.redact(
                f"Another process is already polling Telegram for this bot (409 Conflict: {exc.message}). "
                "Stop it, or run several replicas in webhook mode (WEBHOOK_URL) sharing one DATABASE_URL."
            )
        ) from None
    except InvalidToken:
        raise Failure("Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized): check the token with @BotFather") from None
    except NetworkError as exc:
        raise Failure(
            redactor.redact(
                f"Cannot reach the Bot API at {settings.telegram_base_url} ({exc}): check the network "
                f"connection (and TELEGRAM_BASE_URL), then run again"
            )
        ) from None
    except TelegramError as exc:  # e.g. a garbled getMe answer, or another instance polling (409)
        raise Failure(redactor.redact(f"The Bot API at TELEGRAM_BASE_URL failed: {exc}")) from None


@cli.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """Serve Telegram when TELEGRAM_BOT_TOKEN is set, else open the terminal chat."""
    if _settings(ctx).telegram_bot_token is not None and "run" in cli.commands:
        ctx.invoke(cli.commands["run"])
    else:
        ctx.invoke(chat)


@cli.command()
@click.option(
    "--corpus",
    "corpus",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Corpus folder to benchmark (default: CORPUS_DIR).",
)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON lines with q (and doc): questions for latency and bursts; topped up from sentences.",
)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Rounds for latency and bursts."
)
@click.option(
    "--build-repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Rounds for builds and reindexes (use 1 on big corpora).",
)
@click.option("--latency-questions", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--burst", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--eval",
    "eval_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also evaluate FILE with torch and with ONNX vectors (figures must be equal).",
)
@click.option("--no-txtai", is_flag=True, help="Skip the txtai comparison.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep the work files here.")
@click.option(
    "--sections",
    default="build,serve,compare,eval",
    show_default=True,
    help="Which parts to run: build (child builds, reindex), serve (fresh serving processes, and the "
    "bulk figure), bulk (only `ask --json` with --burst questions on stdin), compare (in-process build, "
    "txtai), eval.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    corpus: Path | None,
    questions: Path | None,
    repeats: int,
    build_repeats: int,
    latency_questions: int,
    burst: int,
    eval_file: Path | None,
    no_txtai: bool,
    work_dir: Path | None,
    sections: str,
) -> None:
    """Benchmark answering, bursts, builds, reindex, start-up and memory; prints a table and a JSON line."""
    bench_module = _bench_module(needs_txtai=not no_txtai and "compare" in sections)
    BenchConfig, run_bench = bench_module.BenchConfig, bench_module.run_bench

    settings = _settings(ctx)
    try:
        config = BenchConfig(
            corpus_dir=corpus or settings.corpus_dir,
            questions_file=questions,
            model=settings.embedding_model,
            threads=settings.encoder_threads,
            repeats=repeats,
            build_repeats=build_repeats,
            latency_questions=latency_questions,
            burst=burst,
            txtai=not no_txtai,
            eval_file=eval_file,
            work_dir=work_dir,
            sections=frozenset(part.strip() for part in sections.split(",") if part.strip()),
        )
    except ValueError as exc:
        raise Failure(str(exc)) from None
    try:
        result = run_bench(config, progress=lambda message: click.echo(f"bench: {message}", err=True))
    except ValueError as exc:  # e.g. too few questions for the corpus: say what to give instead
        raise Failure(f"{exc} (give --questions FILE, or smaller --burst and --latency-questions)") from None
    click.echo(result.table())
    for key, value in result.facts.items():
        click.echo(f"- {key}: {json.dumps(value)}")
    click.echo(result.json_line())


def _installed(module: str) -> bool:
    """Whether an optional module (an extra's) can be imported."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _bench_module(needs_txtai: bool):
    """benchmarks/bench.py of the clone this package runs from, once its dependencies are there."""
    import importlib.util

    from .index import IndexProblem
    from .lifecycle import require_build_extra

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
    if not path.is_file():
        raise Failure(f"The benchmark is not installed ({path} is missing): run it from a clone of the repository.")
    try:
        require_build_extra()  # it builds indexes and serves with torch as a baseline
    except IndexProblem as exc:
        raise Failure(str(exc)) from None
    if needs_txtai and not _installed("txtai"):
        raise Failure(
            "bench compares with txtai, which is not installed: run it with --no-txtai, or install "
            "the bench extra (.venv/bin/pip install -e '.[bench]')"
        )
    spec = importlib.util.spec_from_file_location("citebot_bench", path)
    if spec is None or spec.loader is None:
        raise Failure(f"The benchmark {path} cannot be loaded as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# --- news in: links, files and feeds (bot.ingest) -----------------------------------------------


def _tty_progress(total: int, label: str):
    """A tqdm bar on stderr when it is a terminal; silent otherwise."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="item", file=sys.stderr, leave=False, disable=not sys.stderr.isatty())


def _echo_outcome(outcome) -> None:
    if outcome.saved is None:
        click.echo(f"not added: {outcome.source}: {outcome.reason}", err=True)


def _reindex_and_report(ctx: click.Context, outcomes: list) -> None:
    """Reindex once if anything changed, then print one line per article saved."""
    from .index import IndexProblem
    from .ingest import reindex, sentence_counts

    saved = [o.saved for o in outcomes if o.saved is not None]
    if not saved:
        return
    service = ctx.obj.get("service") or _open(ctx)
    ctx.obj["service"] = service  # `feeds` polls again and again: load the index and model once
    if any(s.status != "unchanged" for s in saved):
        bar = _ProgressBar("embedding sentences") if sys.stderr.isatty() else None
        try:
            reindex(service, bar)
        except (IndexProblem, ValueError, RuntimeError) as exc:
            raise Failure(f"The articles are saved but the reindex failed: {exc}") from None
        except OSError as exc:
            raise _os_failure(exc) from None
        finally:
            if bar is not None:
                bar.close()
    counts = sentence_counts(service, [s.name for s in saved])
    for article in saved:
        click.echo(f"{article.status}: {article.title} ({counts.get(article.name, 0)} sentences) -> {article.name}")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.pass_context
def add(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Add articles from web links (fetched, extracted) or .txt/.md files, then reindex once."""
    from .ingest import FetchRefused, Ingester, Outcome

    settings = _settings(ctx)
    ingester = Ingester(settings)
    outcomes = []
    with _tty_progress(len(sources), "adding") as bar:
        for source in sources:
            try:
                if "://" in source:
                    outcome = Outcome(source, saved=ingester.add_url(source))
                else:
                    outcome = Outcome(source, saved=ingester.add_file(Path(source)))
            except FetchRefused as exc:
                outcome = Outcome(source, reason=str(exc))
            _echo_outcome(outcome)
            outcomes.append(outcome)
            bar.update()
    _reindex_and_report(ctx, outcomes)
    if any(o.saved is None for o in outcomes):
        ctx.exit(1)


@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once and exit (else poll every FEED_POLL_MINUTES).")
@click.pass_context
def feeds(ctx: click.Context, once: bool) -> None:
    """Poll the RSS/Atom feeds (FEEDS and those added with /feed add), add new articles, reindex."""
    import time

    from .ingest import FeedError, Ingester

    settings = _settings(ctx)
    ingester = Ingester(settings)
    try:
        listed = ingester.feeds.feeds()
    except FeedError as exc:
        raise Failure(str(exc)) from None
    if not listed:
        raise Failure("No feeds to poll: set FEEDS (comma-separated feed URLs) or add one with /feed add in Telegram.")
    while True:
        with _tty_progress(0, "feed entries") as bar:

            def seen(outcome) -> None:
                _echo_outcome(outcome)
                bar.update()

            report = ingester.poll(progress=seen)
        for failed in report.failed_feeds:
            click.echo(f"feed failed: {failed.source}: {failed.reason}", err=True)
        _reindex_and_report(ctx, [o for o in report.saved_outcomes()])
        click.echo(f"Polled {len(listed)} feeds: {len(report.added)} new articles.")
        if once:
            return
        time.sleep(settings.feed_poll_minutes * 60)
        listed = ingester.feeds.feeds()


@cli.group()
def db() -> None:
    """The PostgreSQL store (DATABASE_URL): schema migrations and index versions."""


def _database_url(ctx: click.Context) -> str:
    secret = _settings(ctx).database_url
    if secret is None:
        raise Failure("DATABASE_URL is not set: set it to a PostgreSQL URL (see .env.example).")
    return secret.get_secret_value()


@db.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or update the tables in DATABASE_URL (safe to run again)."""
    from .db import DatabaseProblem
    from .db import migrate as run_migrations

    try:
        applied = run_migrations(_database_url(ctx))
    except DatabaseProblem as exc:
        raise Failure(str(exc)) from None
    if applied:
        click.echo(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        click.echo("The database is up to date.")


@db.command()
@click.pass_context
def publish(ctx: click.Context) -> None:
    """Copy the index in INDEX_DIR into DATABASE_URL as a new version and make it current."""
    from .db import DatabaseProblem
    from .index import IndexProblem, SentenceIndex
    from .store_pg import BuildInProgress, PgStore

    settings = _settings(ctx)
    url = _database_url(ctx)
    try:
        index = SentenceIndex.load(settings.index_dir)
        with PgStore(url) as store:
            version = store.publish(index)
            kept = store.versions()
    except (IndexProblem, DatabaseProblem, BuildInProgress) as exc:
        raise Failure(str(exc)) from None
    click.echo(f"Version {version} is current: {len(index.sentences)} sentences of {len(index.articles)} articles.")
    if len(kept) > 1:
        click.echo(f"Kept while still read: versions {', '.join(str(v) for v in kept if v != version)}.")


@db.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the migrations still to run and the stored index versions."""
    from .db import DatabaseProblem, pending

    url = _database_url(ctx)
    try:
        missing = pending(url)
    except DatabaseProblem as exc:
        raise Failure(str(exc)) from None
    if missing:
        click.echo(f"Pending migrations: {', '.join(missing)} (run `python -m bot db migrate`).")
        return
    from .store_pg import PgStore

    with PgStore(url) as store:
        current = store.current()
        versions = store.versions()
        sentences = store.sentence_counts()
    if current is None:
        click.echo("No index version yet (run `python -m bot index` with DATABASE_URL set).")
        return
    for version in versions:
        mark = "current" if version == current else "old"
        click.echo(f"version {version}: {sentences[version]} sentences ({mark})")


def main() -> None:
    cli(prog_name="python -m bot")
