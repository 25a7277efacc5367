"""The PostgreSQL store (pgvector HNSW) against the embedded FAISS index at 10k, 100k and 1M sentences:
dense query latency and recall@64, build and switch time, and the lexical query, in one run.

    nice .venv/bin/python benchmarks/pgvector_scaling.py --sizes 10000 100000 1000000 --ef-search 1000 400 --fts

Not run in CI. The PostgreSQL server is a throwaway one started here with pgserver (as the tests
do; shared_buffers 4 GB, fsync off), unless --database-url names one (it must be migrated).

Data. The squad-dev corpus (48 Wikipedia articles, ~10k sentences) is indexed with the packaged
model (kept under --work). A size N is reached with whole copies of it (so N is rounded to a
multiple of the corpus's sentence count): copy 0 is the real index; in every further copy each
sentence's vector is replaced by an embedding-shaped one: a blend of its own real embedding
(weight 0.6-1.0) and a second random real sentence embedding, plus Gaussian noise (sd 0.02 per
dimension), renormalised (as benchmarks/faiss_scaling.py --seed-vectors makes them). Texts,
passages and the BM25 postings are the corpus's, repeated per copy (BM25 weights not recomputed:
the lexical figures measure posting-list lengths that grow with N, not new words).
Queries are real squad-dev question embeddings: --queries timed ones (dev questions), after a
warm-up pass over as many other questions (test questions).

Measured per size, both stores in the same process on the same vectors:
- dense query at k = 64: per-question wall time through the driver (pgvector: one SELECT on the
  pinned version's partition; FAISS: index.search with 1 thread, as the bot), p50 and p95;
  recall@64 = share of the exact top 64 (brute-force inner product in numpy) found; recall@10 = share
  of the exact top 10 among the first 10 returned;
- build: FAISS graph (bot.index.make_faiss) against the PostgreSQL write (COPY of every row, the
  HNSW and postings indexes) and the pointer switch;
- lexical: BM25 best 64 sentences for the question's words, PostgreSQL (stored postings) against
  the embedded word index (bot.words.Postings.bm25 + the same top-k selection).
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bot.db import migrate  # noqa: E402
from bot.index import SentenceIndex, make_faiss  # noqa: E402
from bot.service import QAService  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.split import Passage, Sentence  # noqa: E402
from bot.store_pg import DEFAULT_EF_SEARCH, HNSW_EF_CONSTRUCTION, HNSW_M, PgStore  # noqa: E402
from bot.tokens import TokenVectors  # noqa: E402
from bot.words import Postings, WordIndex, terms  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
K = 64
TIE = 0.01  # near_recall: a neighbour within this cosine of the exact 64th counts as found


@dataclass
class Row:
    """Figures for one corpus size."""

    sentences: int
    faiss_build_s: float
    pg_write_s: float  # COPY + HNSW + postings index, one transaction
    pg_switch_ms: float
    faiss_p50_ms: float
    faiss_p95_ms: float
    faiss_recall: float
    pg_p50_ms: float  # at the first --ef-search
    pg_p95_ms: float
    pg_recall: float
    lexical_mem_p50_ms: float
    lexical_mem_p95_ms: float
    lexical_pg_p50_ms: float
    lexical_pg_p95_ms: float
    lexical_same: float  # share of questions whose BM25 best sets are equal in both stores
    pg_mb: float  # sentences partition with its HNSW index, and the postings
    faiss_mb: float
    pg_sweep: dict | None = None  # ef_search -> [p50 ms, p95 ms, recall@64, recall@64 within TIE cosine]
    faiss_near_recall: float | None = None
    faiss_recall10: float | None = None  # the first 10 returned against the exact 10
    pg_recall10: float | None = None
    fts_build_s: float | None = None  # --fts: PostgreSQL full-text search as the lexical side instead
    fts_p50_ms: float | None = None
    fts_p95_ms: float | None = None
    fts_overlap: float | None = None  # share of BM25's best 64 also in ts_rank's best 64


def squad_dev() -> Path:
    local = ROOT / "benchmarks" / "data" / "squad-dev"
    return local if (local / "corpus").is_dir() else ROOT.parent / "shared" / "benchmarks" / "squad-dev"


def questions(folder: Path, count: int) -> tuple[list[str], list[str]]:
    """`count` dev questions to time and `count` test questions to warm up with."""

    def read(name: str) -> list[str]:
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["q"] for line in lines if line.strip()]

    return read("questions-dev.jsonl")[:count], read("questions-test.jsonl")[:count]


def blended(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One copy's vectors: each real embedding blended with another random one, plus noise."""
    n = len(base)
    mix = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
    other = base[rng.integers(0, n, n)]
    out = mix * base + (1 - mix) * other + 0.02 * rng.standard_normal(base.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def tile_postings(postings: Postings, copies: int) -> Postings:
    """The postings of `copies` copies of the documents (copy c's documents are offset by c * size)."""
    counts = np.diff(postings.indptr)
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts * copies, out=indptr[1:])
    offsets = (np.arange(copies, dtype=np.int64) * postings.size)[:, None]
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    weights = np.empty(int(indptr[-1]), dtype=np.float32)
    for j in range(len(counts)):
        block = slice(postings.indptr[j], postings.indptr[j + 1])
        out = slice(indptr[j], indptr[j + 1])
        indices[out] = (postings.indices[block][None, :] + offsets).ravel()
        weights[out] = np.tile(postings.weights[block], copies)
    return Postings(postings.vocabulary, indptr, indices, weights, postings.size * copies)


def scaled(base: SentenceIndex, copies: int, rng: np.random.Generator, tokens: bool = False) -> SentenceIndex:
    """`copies` copies of the index (see the module docstring); the FAISS index is left to the caller.
    With `tokens`, the sentences' token vectors are repeated per copy too (as the texts are)."""
    n, m = len(base.sentences), len(base.passages)
    vectors = np.concatenate([base.vectors] + [blended(base.vectors, rng) for _ in range(1, copies)])
    articles, sentences, passages = {}, [], []
    for c in range(copies):
        suffix = "" if c == 0 else f"#{c}"
        for doc, a in base.articles.items():
            articles[doc + suffix] = replace(a, doc=doc + suffix)
        sentences += [
            Sentence(s.doc + suffix, s.paragraph, s.sentence, s.text, s.passage + c * m) for s in base.sentences
        ]
        passages += [Passage(p.doc + suffix, p.paragraph, p.first + c * n, p.last + c * n) for p in base.passages]
    w = base.words
    words = WordIndex(
        tile_postings(w.sentences, copies),
        tile_postings(w.passages, copies),
        np.tile(w.term_counts, copies),
        np.tile(w.has_number, copies),
        np.tile(w.has_time, copies),
        tile_postings(w.names, copies),
        np.tile(w.name_counts, copies),
    )
    manifest = {**base.manifest, "sentences": len(sentences), "benchmark_copies": copies}
    repeated = None
    if tokens and base.tokens is not None:
        t = base.tokens
        starts = np.concatenate(
            [t.starts[:-1] + c * int(t.starts[-1]) for c in range(copies)] + [[copies * int(t.starts[-1])]]
        )
        repeated = TokenVectors(np.tile(t.codes, (copies, 1)), np.tile(t.scales, copies), starts.astype(np.int64))
    manifest["tokens"] = repeated is not None  # what the store reads to expect token vectors
    placeholder = faiss.IndexFlatIP(vectors.shape[1])  # SentenceIndex would build one otherwise
    return SentenceIndex(
        articles, sentences, passages, vectors, manifest, words=words, faiss_index=placeholder, tokens=repeated
    )


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[list[set[int]], np.ndarray]:
    """The exact k nearest by inner product (brute force, in chunks), and each query's k-th best score."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        scores = queries @ vectors[start : start + 200_000].T
        ids = np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), 0)
        scores, ids = np.concatenate([best_scores, scores], 1), np.concatenate([best_ids, ids], 1)
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)
    return [set(row.tolist()) for row in best_ids], best_scores.min(axis=1)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def embedded_best(postings: Postings, words: list[str], k: int) -> set[int]:
    """BM25's k best as bot.retrieve.Retriever.words picks them (ties kept)."""
    bm = postings.bm25(words)
    best = np.flatnonzero(bm)
    if len(best) > k:
        best = best[bm[best] >= np.partition(bm[best], len(best) - k)[len(best) - k]]
    return set(best.tolist())


def measure(
    store: PgStore,
    base: SentenceIndex,
    copies: int,
    timed: np.ndarray,
    warm: np.ndarray,
    texts: list[str],
    memory: str,
    rng: np.random.Generator,
    fts: bool,
    ef_values: list[int],
    build_threads: int,
    faiss_too: bool = True,
) -> Row:
    index = scaled(base, copies, rng)
    n = len(index.sentences)
    print(f"{n:,} sentences: building FAISS ...", file=sys.stderr, flush=True)
    faiss.omp_set_num_threads(build_threads)
    t0 = time.perf_counter()
    graph = make_faiss(index.vectors if faiss_too else index.vectors[:1000])  # --skip-faiss: a token one
    faiss_build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)  # searches: one thread, as the bot
    print(f"{n:,} sentences: writing the PostgreSQL version ...", file=sys.stderr, flush=True)
    with store.building() as build:
        t0 = time.perf_counter()
        version = build.write(index, memory)
        pg_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        build.switch(version)
        pg_switch = time.perf_counter() - t0
        build.drop_old()
    exact, kth = exact_top(index.vectors, timed, K)
    exact10, _ = exact_top(index.vectors, timed, 10)

    def recall(found: list[np.ndarray]) -> float:
        return float(np.mean([len(set(f.tolist()) & e) / K for f, e in zip(found, exact, strict=True)]))

    def recall10(found: list[np.ndarray]) -> float:
        """Share of the exact 10 nearest among the first 10 returned (both stores return best first)."""
        return float(np.mean([len(set(f[:10].tolist()) & e) / 10 for f, e in zip(found, exact10, strict=True)]))

    def near_recall(found: list[np.ndarray]) -> float:
        """Share of the k returned whose cosine is within TIE of the exact k-th best (near-ties count)."""
        return float(
            np.mean(
                [
                    np.count_nonzero(index.vectors[f[f >= 0]] @ q >= t - TIE) / K
                    for f, q, t in zip(found, timed, kth, strict=True)
                ]
            )
        )

    faiss_times, faiss_found = [], []
    for q in warm:
        graph.search(q.reshape(1, -1), K)
    for q in timed:
        t0 = time.perf_counter()
        _, ids = graph.search(q.reshape(1, -1), K)
        faiss_times.append(time.perf_counter() - t0)
        faiss_found.append(ids[0])
    lex_pg_times, lex_mem_times, same = [], [], []
    question_terms = [terms(t) for t in texts]
    sweep = {}
    with store.reading() as reader:
        assert reader.version == version
        for ef in ef_values:
            reader.connection.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            pg_times, pg_found = [], []
            for q in warm:
                reader.nearest(q, K)
            for q in timed:
                t0 = time.perf_counter()
                ids = reader.nearest(q, K)
                pg_times.append(time.perf_counter() - t0)
                pg_found.append(ids)
            sweep[ef] = [*percentiles(pg_times), recall(pg_found), near_recall(pg_found), recall10(pg_found)]
            print(
                f"  ef_search {ef}: p50/p95 {sweep[ef][0]:.2f}/{sweep[ef][1]:.2f} ms, recall@64 {sweep[ef][2]:.3f} "
                f"(within {TIE} cosine: {sweep[ef][3]:.3f})",
                file=sys.stderr,
                flush=True,
            )
        for words in question_terms[: len(question_terms) // 4]:  # warm-up
            reader.bm25_best(words, K)
        for words in question_terms:
            t0 = time.perf_counter()
            hits = reader.bm25_best(words, K)
            lex_pg_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            best = embedded_best(index.words.sentences, words, K)
            lex_mem_times.append(time.perf_counter() - t0)
            same.append(set(hits.ids.tolist()) == best)
        sizes = reader.connection.execute(
            "SELECT pg_total_relation_size(%s::regclass) + pg_total_relation_size(%s::regclass)",
            (f"sentences_v{version}", f"postings_v{version}"),
        ).fetchone()[0]
    f50, f95 = percentiles(faiss_times)
    p50, p95, pg_recall, _, pg_recall10 = sweep[ef_values[0]]
    lm50, lm95 = percentiles(lex_mem_times)
    lp50, lp95 = percentiles(lex_pg_times)
    row = Row(
        n,
        faiss_build,
        pg_write,
        pg_switch * 1000,
        f50,
        f95,
        recall(faiss_found),
        p50,
        p95,
        pg_recall,
        lm50,
        lm95,
        lp50,
        lp95,
        float(np.mean(same)),
        sizes / 1e6,
        len(faiss.serialize_index(graph)) / 1e6,
    )
    row.pg_sweep = sweep
    row.faiss_near_recall = near_recall(faiss_found)
    row.faiss_recall10, row.pg_recall10 = recall10(faiss_found), pg_recall10
    if fts:
        row.fts_build_s, row.fts_p50_ms, row.fts_p95_ms, row.fts_overlap = full_text(store, index, version, texts)
    return row


def full_text(
    store: PgStore, index: SentenceIndex, version: int, texts: list[str]
) -> tuple[float, float, float, float]:
    """The alternative lexical side: PostgreSQL full-text search (english configuration, GIN index,
    ts_rank over the question's words joined with OR), measured on a side table of the version."""
    import re

    from bot.words import STOPWORDS

    with store.reading() as reader:
        c = reader.connection
        t0 = time.perf_counter()
        c.execute(f"CREATE TEMP TABLE fts AS SELECT id, to_tsvector('english', text) AS tsv FROM sentences_v{version}")
        c.execute("CREATE INDEX ON fts USING gin (tsv)")
        c.execute("ANALYZE fts")
        build = time.perf_counter() - t0
        query = "SELECT id FROM fts, to_tsquery('english', %s) q WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 64"
        times, overlap = [], []
        for text in texts:
            words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]
            if not words:
                continue
            t0 = time.perf_counter()
            ids = {r[0] for r in c.execute(query, (" | ".join(words),))}
            times.append(time.perf_counter() - t0)
            best = embedded_best(index.words.sentences, terms(text), K)
            overlap.append(len(ids & best) / max(len(best), 1))
        c.execute("DROP TABLE fts")
    p50, p95 = percentiles(times)
    return build, p50, p95, float(np.mean(overlap))


def start_server(folder: Path):
    """A throwaway PostgreSQL with pgvector (pgserver), configured for this benchmark."""
    import pgserver
    import psycopg

    server = pgserver.get_server(folder / "data", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        for setting, value in (
            ("shared_buffers", "4GB"),  # pgvector's advice: the HNSW index in memory
            ("fsync", "off"),
            ("synchronous_commit", "off"),  # a throwaway server
            ("max_parallel_maintenance_workers", "1"),  # 2 cores: the HNSW build's leader and one worker
            ("max_wal_size", "8GB"),
        ):
            connection.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
    server.cleanup()  # stop, then start again to take shared_buffers
    return pgserver.get_server(folder / "data", cleanup_mode="stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "citebot-pgbench",
        help="where the squad-dev index is kept (reused)",
    )
    parser.add_argument("--database-url", help="a migrated PostgreSQL to use instead of a throwaway one")
    parser.add_argument(
        "--ef-search",
        type=int,
        nargs="+",
        default=[DEFAULT_EF_SEARCH],
        help="hnsw.ef_search values to measure (>= 64); the first fills the main table",
    )
    parser.add_argument("--build-memory", default="4GB", help="maintenance_work_mem for the HNSW build")
    parser.add_argument("--skip-faiss", action="store_true", help="measure pgvector only (FAISS figures meaningless)")
    parser.add_argument("--m", type=int, default=HNSW_M, help="HNSW m of the pgvector index")
    parser.add_argument(
        "--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION, help="HNSW ef_construction of the pgvector index"
    )
    parser.add_argument("--build-threads", type=int, default=1, help="FAISS threads for the graph build")
    parser.add_argument("--fts", action="store_true", help="also measure full-text search (GIN) as the lexical side")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    folder = squad_dev()
    service = QAService(Settings(_env_file=None, corpus_dir=folder / "corpus", index_dir=args.work / "squad-index"))
    service.open()
    base = service.answerer.index
    timed_texts, warm_texts = questions(folder, args.queries)
    timed = service.encoder.encode(timed_texts).astype(np.float32)
    warm = service.encoder.encode(warm_texts).astype(np.float32)
    n0 = len(base.sentences)
    pg_folder = None
    server = None
    if args.database_url:
        url = args.database_url
    else:
        pg_folder = Path(tempfile.mkdtemp(prefix="citebot-pgbench-"))
        server = start_server(pg_folder)
        url = server.get_uri()
        migrate(url)
    rng = np.random.default_rng(0)
    rows = []
    try:
        if min(args.ef_search) < K:
            raise ValueError(f"--ef-search values must be at least {K}, got {args.ef_search}")
        if max(args.ef_search) > 1000:
            raise ValueError(f"pgvector's hnsw.ef_search is at most 1000, got {args.ef_search}")
        with PgStore(
            url, ef_search=args.ef_search[0], hnsw_m=args.m, hnsw_ef_construction=args.ef_construction
        ) as store:
            for size in args.sizes:
                copies = max(1, round(size / n0))
                rows.append(
                    measure(
                        store,
                        base,
                        copies,
                        timed,
                        warm,
                        timed_texts,
                        args.build_memory,
                        rng,
                        args.fts,
                        args.ef_search,
                        args.build_threads,
                        not args.skip_faiss,
                    )
                )
                r = rows[-1]
                print(json.dumps(asdict(r)), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.cleanup()
        if pg_folder is not None:
            shutil.rmtree(pg_folder, ignore_errors=True)
    print(
        f"ef_search {args.ef_search[0]}, k {K}, {args.queries} questions; HNSW m {args.m}, ef_construction {args.ef_construction}\n"
    )
    print(
        "| sentences | FAISS build | PG write | PG switch | FAISS p50 / p95 | FAISS recall@64 / @10 | pgvector p50 / p95 | pgvector recall@64 / @10 | PG size | FAISS size |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.sentences:,} | {r.faiss_build_s:.1f} s | {r.pg_write_s:.1f} s | {r.pg_switch_ms:.1f} ms "
            f"| {r.faiss_p50_ms:.2f} / {r.faiss_p95_ms:.2f} ms | {r.faiss_recall:.3f} / {r.faiss_recall10:.3f} "
            f"| {r.pg_p50_ms:.2f} / {r.pg_p95_ms:.2f} ms | {r.pg_recall:.3f} / {r.pg_recall10:.3f} "
            f"| {r.pg_mb:,.0f} MB | {r.faiss_mb:,.0f} MB |"
        )
    print("\n| sentences | lexical, embedded p50 / p95 | lexical, PostgreSQL p50 / p95 | same best sets |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.sentences:,} | {r.lexical_mem_p50_ms:.2f} / {r.lexical_mem_p95_ms:.2f} ms "
            f"| {r.lexical_pg_p50_ms:.2f} / {r.lexical_pg_p95_ms:.2f} ms | {r.lexical_same:.3f} |"
        )
    print(
        f"\n| sentences | hnsw.ef_search | pgvector p50 / p95 | pgvector recall@64 | within {TIE} cosine | FAISS within {TIE} |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        for ef, (p50, p95, rec, near, _) in r.pg_sweep.items():
            print(
                f"| {r.sentences:,} | {ef} | {p50:.2f} / {p95:.2f} ms | {rec:.3f} | {near:.3f} | {r.faiss_near_recall:.3f} |"
            )
    if args.fts:
        print("\n| sentences | full-text (GIN) build | full-text query p50 / p95 | BM25 best found by ts_rank's 64 |")
        print("|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r.sentences:,} | {r.fts_build_s:.1f} s | {r.fts_p50_ms:.2f} / {r.fts_p95_ms:.2f} ms | {r.fts_overlap:.3f} |"
            )
    print(json.dumps({"ef_search": args.ef_search, "k": K, "queries": args.queries, "rows": [asdict(r) for r in rows]}))


if __name__ == "__main__":
    main()
