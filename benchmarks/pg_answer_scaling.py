"""Answering a question from PostgreSQL (bot.serve_pg) against the embedded store, at growing
archive sizes: per-question time of everything after the encoder (retrieval, ranking, decline),
and whether the two answer alike.

    nice .venv/bin/python benchmarks/pg_answer_scaling.py [--sizes 10000 100000] [--questions 200]

Not run in CI. The archive of each size is built as benchmarks/pgvector_scaling.py builds it
(whole copies of the squad-dev index, each further copy's vectors blended and perturbed real
embeddings; its texts and BM25 postings repeated), with its FAISS index as the bot would make
it (exact up to 4,000 sentences, HNSW above). The same SentenceIndex is published as a version
in a throwaway PostgreSQL (pgserver; or --database-url, migrated, with CREATEDB). Questions are
squad-dev dev questions, encoded once beforehand; --questions of them are timed after a warm-up
pass over as many test questions. Both stores answer in this process, one after the other.

"Same" counts the questions whose ranked answer (decision, cited sentence ids, confidence) is
identical; where they differ it is because FAISS's HNSW and pgvector's HNSW returned other
nearest sentences (BM25 and the ranking inputs are the same by construction, see
tests/test_index_pg.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pgvector_scaling import percentiles, questions, scaled, squad_dev, start_server  # noqa: E402

from bot.answer import Answerer, Encoded  # noqa: E402
from bot.db import migrate  # noqa: E402
from bot.index import SentenceIndex, make_faiss  # noqa: E402
from bot.serve_pg import DatabaseIndex, DatabaseRetriever  # noqa: E402
from bot.service import QAService  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store_pg import PgStore  # noqa: E402


def timed_ranks(answerer: Answerer, texts: list[str], encoded: Encoded, warm: list[str], warm_encoded: Encoded):
    for text, vector, tokens in zip(warm, *warm_encoded, strict=True):
        answerer.rank(text, vector, None, tokens)
    seconds, choices = [], []
    for text, vector, tokens in zip(texts, *encoded, strict=True):
        t0 = time.perf_counter()
        choices.append(answerer.rank(text, vector, None, tokens))
        seconds.append(time.perf_counter() - t0)
    return seconds, choices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "citebot-pg-eval" / "squad-dev")
    parser.add_argument("--database-url", help="a migrated PostgreSQL with pgvector (default: a throwaway pgserver)")
    args = parser.parse_args()
    folder = squad_dev()
    service = QAService(Settings(_env_file=None, corpus_dir=folder / "corpus", index_dir=args.work))
    service.open()
    base = service.index
    assert isinstance(base, SentenceIndex)
    encoder = service.answerer.encoder
    texts, warm = questions(folder, args.questions)
    # with their words' token vectors, as the bot encodes a question (the copies have token vectors too)
    encoded, warm_encoded = service.answerer.encode(texts), service.answerer.encode(warm)
    faiss.omp_set_num_threads(1)  # as the bot searches
    server = tmp = None
    if args.database_url:
        url = args.database_url
    else:
        tmp = Path(tempfile.mkdtemp(prefix="citebot-pg-answer-"))
        server = start_server(tmp)
        url = server.get_uri()
        migrate(url)
    lines = [
        "| sentences | embedded p50 / p95 ms | PostgreSQL p50 / p95 ms | same answers |",
        "|---|---|---|---|",
    ]
    try:
        with PgStore(url) as store:
            for size in args.sizes:
                copies = max(1, round(size / len(base.sentences)))
                built = scaled(base, copies, np.random.default_rng(copies), tokens=True)
                index = SentenceIndex(
                    built.articles,
                    built.sentences,
                    built.passages,
                    built.vectors,
                    built.manifest,
                    words=built.words,
                    faiss_index=make_faiss(built.vectors),
                    tokens=built.tokens,
                )
                print(f"{len(index.sentences):,} sentences: publishing ...", file=sys.stderr, flush=True)
                store.publish(index)
                embedded = Answerer(index, encoder)
                e_times, e_choices = timed_ranks(embedded, texts, encoded, warm, warm_encoded)
                database = DatabaseIndex(store, store.pin())
                try:
                    answerer = Answerer(database, encoder, retriever=DatabaseRetriever(store, database.pin))
                    d_times, d_choices = timed_ranks(answerer, texts, encoded, warm, warm_encoded)
                finally:
                    database.close()
                same = sum(
                    (e.answered, e.ids[:3], round(e.confidence, 6)) == (d.answered, d.ids[:3], round(d.confidence, 6))
                    for e, d in zip(e_choices, d_choices, strict=True)
                )
                e50, e95 = percentiles(e_times)
                d50, d95 = percentiles(d_times)
                lines.append(
                    f"| {len(index.sentences):,} | {e50:.1f} / {e95:.1f} | {d50:.1f} / {d95:.1f} | {same}/{len(texts)} |"
                )
                print(lines[-1], file=sys.stderr, flush=True)
                del index, built, embedded
    finally:
        if server is not None:
            server.cleanup()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
