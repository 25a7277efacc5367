"""Command line: a thin layer over the answering library."""

from __future__ import annotations

import json
import logging
import random
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from .settings import Settings

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
    from .encoder import ModelError
    from .index import IndexProblem
    from .service import QAService

    service = QAService(_settings(ctx))
    bar = _ProgressBar("embedding sentences")
    try:
        report = service.open(rebuild=rebuild, progress=bar)
    except (CorpusError, IndexProblem, ModelError) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:  # e.g. the rebuild could not save the index
        raise _os_failure(exc) from None
    finally:
        bar.close()
    if report is not None:
        click.echo(f"Index built: {report.summary()}", err=True)
    return service


class _ProgressBar:
    """tqdm on stderr, created on the first report."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit="sent", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Folder of articles (CORPUS_DIR).")
@click.option("--index-dir", type=click.Path(path_type=Path), help="Where the index is kept (INDEX_DIR).")
@click.option("--model", help="Embedding model: package name or local folder (EMBEDDING_MODEL).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.pass_context
def cli(ctx: click.Context, corpus_dir: Path | None, index_dir: Path | None, model: str | None, verbose: bool) -> None:
    """Answer questions about news articles with cited sentences."""
    overrides = {k: v for k, v in (("corpus_dir", corpus_dir), ("index_dir", index_dir), ("embedding_model", model)) if v}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise Failure(f"Invalid settings: {problems}") from None
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = {"settings": settings}


@cli.command()
@click.pass_context
def index(ctx: click.Context) -> None:
    """Build or refresh the index of the corpus folder."""
    from .corpus import CorpusError
    from .encoder import ModelError
    from .index import IndexProblem
    from .onnx_encoder import OnnxProblem
    from .service import BuildJob, build_index

    settings = _settings(ctx)
    bar = _ProgressBar("embedding sentences")
    job = BuildJob(
        str(settings.corpus_dir), str(settings.index_dir), settings.embedding_model,
        settings.encoder_threads, build=True,
    )
    try:
        report = build_index(job, bar)  # also makes the ONNX export that serving encodes with
    except (CorpusError, ModelError, IndexProblem, OnnxProblem, ValueError) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise _os_failure(exc) from None
    finally:
        bar.close()
    assert report is not None  # build=True always reports
    for problem in report.skipped:
        click.echo(f"warning: skipped {problem}", err=True)
    click.echo(f"Indexed {report.summary()} -> {settings.index_dir}")


def _questions(question: tuple[str, ...]):
    if question:
        yield " ".join(question)
        return
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\n")


@cli.command()
@click.argument("question", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question, one per line.")
@click.pass_context
def ask(ctx: click.Context, question: tuple[str, ...], as_json: bool) -> None:
    """Answer QUESTION, or one question per line from standard input."""
    from .answer import QuestionError
    from .render import to_json, to_terminal

    service = _open(ctx)
    failed = False
    for text in _questions(question):
        try:
            answer = service.answerer.answer(text)
        except QuestionError as exc:
            failed = True
            if as_json:
                click.echo(json.dumps({"question": text, "answered": False, "answer": str(exc), "citations": [], "error": str(exc)}, ensure_ascii=False))
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        click.echo(to_json(answer) if as_json else to_terminal(answer))
        if not as_json and not question:
            click.echo()
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
    while True:
        try:
            text = click.prompt("?", prompt_suffix=" ", default="", show_default=False)
        except (EOFError, click.Abort):
            click.echo()
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
@click.option("--hold-out", type=click.IntRange(min=0), default=0, show_default=True,
              help="Leave this many articles out of the index; their questions must be declined.")
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
    service = _open(ctx)
    answerer = service.answerer
    held: list[str] = []
    if hold_out:
        docs = sorted(answerer.index.articles)
        if hold_out >= len(docs):
            raise Failure(f"--hold-out {hold_out} would leave no article in the index ({len(docs)} articles)")
        held = sorted(random.Random(seed).sample(docs, hold_out))
        answerer = Answerer(answerer.index.without(set(held)), answerer.encoder, answerer.max_citations)
        items = [Item(i.question, () if i.doc in held else i.gold, i.doc) for i in items]
    report = evaluate(answerer, items)
    if as_json:
        click.echo(json.dumps({"file": str(file), "held_out": held, **report.as_dict()}))
    else:
        if held:
            click.echo(f"held out {len(held)} articles: {', '.join(held)}")
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
    from telegram.error import InvalidToken, NetworkError

    from .telegram.app import run_bot  # the heavy imports, once the settings are known to be usable

    service = _open(ctx)
    try:
        run_bot(settings, service)
    except InvalidToken:
        raise Failure("Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized): check the token with @BotFather") from None
    except NetworkError as exc:
        raise Failure(redactor.redact(f"Cannot reach the Bot API at TELEGRAM_BASE_URL: {exc}")) from None


@cli.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """Serve Telegram when TELEGRAM_BOT_TOKEN is set, else open the terminal chat."""
    if _settings(ctx).telegram_bot_token is not None and "run" in cli.commands:
        ctx.invoke(cli.commands["run"])
    else:
        ctx.invoke(chat)


@cli.command()
@click.option("--corpus", "corpus", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Corpus folder to benchmark (default: CORPUS_DIR).")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON lines with q (and doc): questions for latency and bursts; topped up from sentences.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True, help="Rounds for latency and bursts.")
@click.option("--build-repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Rounds for builds and reindexes (use 1 on big corpora).")
@click.option("--latency-questions", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--burst", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--eval", "eval_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also evaluate FILE with torch and with ONNX vectors (figures must be equal).")
@click.option("--no-txtai", is_flag=True, help="Skip the txtai comparison.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), help="Keep the work files here.")
@click.option("--sections", default="build,serve,compare,eval", show_default=True,
              help="Which parts to run: build (child builds, reindex), serve (fresh serving processes), "
                   "compare (in-process build, txtai), eval.")
@click.pass_context
def bench(ctx: click.Context, corpus: Path | None, questions: Path | None, repeats: int, build_repeats: int,
          latency_questions: int, burst: int, eval_file: Path | None, no_txtai: bool, work_dir: Path | None,
          sections: str) -> None:
    """Benchmark answering, bursts, builds, reindex, start-up and memory; prints a table and a JSON line."""
    from .bench import BenchConfig, run_bench

    settings = _settings(ctx)
    try:
        config = BenchConfig(
            corpus_dir=corpus or settings.corpus_dir, questions_file=questions, model=settings.embedding_model,
            threads=settings.encoder_threads, repeats=repeats, build_repeats=build_repeats,
            latency_questions=latency_questions, burst=burst, txtai=not no_txtai, eval_file=eval_file, work_dir=work_dir,
            sections=frozenset(part.strip() for part in sections.split(",") if part.strip()),
        )
    except ValueError as exc:
        raise Failure(str(exc)) from None
    result = run_bench(config, progress=lambda message: click.echo(f"bench: {message}", err=True))
    click.echo(result.table())
    for key, value in result.facts.items():
        click.echo(f"- {key}: {json.dumps(value)}")
    click.echo(result.json_line())


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
    from .ingest import reindex, sentence_counts
    from .index import IndexProblem

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
    from .db import DatabaseProblem, migrate as run_migrations

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
        click.echo("No index version yet (run `python -m bot index`, then `python -m bot db publish`).")
        return
    for version in versions:
        mark = "current" if version == current else "old"
        click.echo(f"version {version}: {sentences[version]} sentences ({mark})")


def main() -> None:
    cli(prog_name="python -m bot")
