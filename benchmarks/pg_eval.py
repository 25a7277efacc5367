"""The same evaluation from the embedded store and from PostgreSQL (DATABASE_URL), in one run:
eval counts side by side, how many answers differ at all, and the time per question.

    nice .venv/bin/python benchmarks/pg_eval.py [--work /tmp/citebot-pg-eval] [--database-url URL]

Not run in CI. Suites: wikinews-qa dev and squad-dev dev (benchmarks/data). Each corpus is
indexed once with the packaged model into --work (reused on later runs), answered from that
embedded index, then the very same index (its vectors, not a second embedding) is published
as a version in PostgreSQL and a QAService with DATABASE_URL answers from it question by
question (bot.serve_pg: pgvector's nearest, BM25's best from the stored postings, only the
candidates' rows read; the ranking in Python). The PostgreSQL server is a throwaway one
started here with pgserver, unless --database-url names one (a fresh database per suite is
created in it, so the role needs CREATEDB).

An answer "differs" when anything in it differs: the decision, a cited sentence, a score in
the fourth decimal, the confidence. Differences can come only from pgvector's HNSW returning
other nearest sentences than FAISS (exact up to 4,000 sentences, HNSW above) and are listed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bot.answer import Answer, clean_question
from bot.db import migrate
from bot.evaluate import Report, evaluate, read_items
from bot.service import QAService
from bot.settings import Settings
from bot.store_pg import PgStore

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "wikinews-qa dev": ("wikinews-qa", "questions-dev.jsonl"),
    "squad-dev dev": ("squad-dev", "questions-dev.jsonl"),
}


def fresh_database(server_url: str) -> str:
    import psycopg

    name = f"eval_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    head, _, tail = server_url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


def timed_eval(service: QAService, items) -> tuple[Report, float]:
    started = time.perf_counter()
    report = evaluate(service.answerer, items)
    return report, (time.perf_counter() - started) / len(items) * 1000


def counts(report: Report) -> str:
    return (
        f"right {report.right}/{report.answerable}, wrong {report.wrong}, missed {report.missed}, "
        f"declined {report.declined}/{report.unanswerable}, MRR {report.mrr:.4f}"
    )


def run_suite(name: str, data: Path, work: Path, server_url: str) -> list[str]:
    folder, questions = SUITES[name]
    corpus = data / folder / "corpus"
    items = read_items(data / folder / questions)
    index_dir = work / folder
    embedded = QAService(Settings(_env_file=None, corpus_dir=corpus, index_dir=index_dir))
    embedded.open()
    url = fresh_database(server_url)
    migrate(url)
    with PgStore(url) as store:
        store.publish(embedded.index)  # SentenceIndex in memory: its very vectors
    database = QAService(Settings(_env_file=None, corpus_dir=corpus, index_dir=index_dir, database_url=url))
    try:
        if database.open() is not None:
            raise SystemExit("the published version did not match the corpus (it was rebuilt)")
        e_report, e_ms = timed_eval(embedded, items)
        d_report, d_ms = timed_eval(database, items)
        questions_ = [clean_question(i.question) for i in items]
        e_answers = embedded.answerer.answer_many(questions_)
        d_answers = database.answerer.answer_many(questions_)
        differ = [(e, d) for e, d in zip(e_answers, d_answers, strict=True) if e != d]
    finally:
        database.close()
    lines = [
        f"## {name} ({len(items)} questions, {len(embedded.index.sentences)} sentences)",
        f"- embedded:   {counts(e_report)}; {e_ms:.1f} ms a question (eval, batches of 64)",
        f"- PostgreSQL: {counts(d_report)}; {d_ms:.1f} ms a question",
        f"- P@1 {e_report.p_at_1:.4f} vs {d_report.p_at_1:.4f}; decline rate {e_report.decline_rate:.4f} vs "
        f"{d_report.decline_rate:.4f}; answers that differ in anything: {len(differ)}",
    ]
    for e, d in differ[:10]:
        lines.append(
            f"  - {e.question!r}: embedded {'answered' if e.answered else 'declined'} "
            f"{[c.sentence_id for c in e.citations or e.related]}, PostgreSQL "
            f"{'answered' if d.answered else 'declined'} {[c.sentence_id for c in d.citations or d.related]}; "
            f"confidence {e.confidence:.6f} vs {d.confidence:.6f}; scores {scores(e)} vs {scores(d)}"
        )
    return lines


def scores(answer: Answer) -> list[float]:
    """The scores of an answer's cited (or, declined, related) sentences, as `ask --json` gives them."""
    return [c.score for c in answer.citations or answer.related]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "citebot-pg-eval")
    parser.add_argument("--database-url", help="a PostgreSQL server with pgvector (default: a throwaway pgserver)")
    parser.add_argument("--suite", choices=sorted(SUITES), action="append", help="default: every suite")
    args = parser.parse_args()
    server = folder = None
    if args.database_url:
        server_url = args.database_url
    else:
        import pgserver

        folder = Path(tempfile.mkdtemp(prefix="citebot-pg-eval-"))
        server = pgserver.get_server(folder / "data", cleanup_mode="stop")
        server_url = server.get_uri()
    try:
        lines: list[str] = []
        for name in args.suite or list(SUITES):
            lines += run_suite(name, args.data, args.work, server_url)
        print("\n".join(lines))
    finally:
        if server is not None:
            server.cleanup()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
