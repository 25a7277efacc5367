"""The sentence store in PostgreSQL with pgvector (DATABASE_URL): index versions written in bulk,
a current-version pointer switched in one transaction, and the two queries the ranking needs.

- `PgStore.building()` holds the build lock (an advisory lock: one build at a time across all
  processes) and gives a `Build` that writes a version from a built `SentenceIndex` (COPY, then
  the HNSW and postings indexes in bulk), switches the pointer and drops old versions.
- `PgStore.reading()` pins the current version for one transaction (a shared advisory lock, so
  the version is not dropped under it) and gives a `Reader`: `nearest` (the k sentences nearest
  a question vector, pgvector HNSW on inner product of unit vectors) and `bm25_best` (the
  lexical evidence from the stored BM25 postings: the same numbers bot.words computes).

Each version's rows live in partitions of their own (`sentences_v<id>`, ...): queries name the
partition, so they use its HNSW index; dropping a version drops its partitions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .corpus import Article
from .db import LOCK_NAMESPACE, DatabaseProblem, connect, pending
from .index import SentenceIndex, embedding_text, text_key
from .split import Passage, Sentence
from .tokens import TokenVectors, pack, projection_for, unpack
from .words import Postings, WordIndex

log = logging.getLogger(__name__)

BUILD_LOCK = 2  # pg_advisory_lock(LOCK_NAMESPACE, BUILD_LOCK): one build at a time
VERSION_LOCKS = LOCK_NAMESPACE + 1  # pg_advisory_xact_lock_shared(VERSION_LOCKS, version): in use
CHANNEL = "citebot_index"  # NOTIFY'd with the new version's id when the pointer switches
TABLES = ("articles", "passages", "sentences", "postings")
# HNSW graph and search breadth, from benchmarks/pgvector_scaling.py at 1M sentences (2 cores):
# pgvector's defaults (m 16, ef_construction 64) reach only recall@64 0.87 at ef_search 800;
# m 24, ef_construction 96 with ef_search 1000 (pgvector's maximum) reach 0.954 at p50 8.6 ms.
# ef_search must be >= k: pgvector returns at most ef_search rows from an HNSW scan.
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 96
DEFAULT_EF_SEARCH = 1000


class BuildInProgress(RuntimeError):
    """Another process holds the build lock."""


class NoVersion(RuntimeError):
    """The database holds no index version yet; says what to run."""


@dataclass(frozen=True)
class LexicalHits:
    """BM25's best documents for a question's words (all tied at the k-th kept), best first."""

    ids: np.ndarray  # sentence (or passage) ids
    scores: np.ndarray  # their BM25 (float32)
    best: float  # the best BM25 (0.0 when no document holds any of the words)


def _partition(table: str, version: int):
    from psycopg import sql

    return sql.Identifier(f"{table}_v{int(version)}")


def _copy_text(value: str) -> str:
    """A value in COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def current_manifest(url: str) -> tuple[int, dict]:
    """The current version and its manifest (one short connection): what the lifecycle decides
    from. Raises NoVersion before the first build, DatabaseProblem when the database is not migrated."""
    missing = pending(url)
    if missing:
        raise DatabaseProblem(
            f"The database is not migrated ({', '.join(missing)} pending): run `python -m bot db migrate`."
        )
    with connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT v.id, v.manifest FROM current_version c JOIN index_versions v ON v.id = c.version"
        ).fetchone()
    if row is None:
        raise NoVersion("No index in the database yet: run `python -m bot index` to build it.")
    return int(row[0]), row[1]


class PgStore:
    """Index versions and queries over one PostgreSQL database (migrated: `python -m bot db migrate`)."""

    def __init__(
        self,
        url: str,
        ef_search: int = DEFAULT_EF_SEARCH,
        max_connections: int = 4,
        hnsw_m: int = HNSW_M,
        hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION,
    ) -> None:
        if not 1 <= ef_search <= 1000:
            raise ValueError(f"ef_search must be 1-1000 (pgvector's range), got {ef_search}")
        if not 2 <= hnsw_m <= 100 or hnsw_ef_construction < 2 * hnsw_m:
            raise ValueError(
                f"HNSW needs m in 2-100 and ef_construction >= 2 * m, got m={hnsw_m}, "
                f"ef_construction={hnsw_ef_construction}"
            )
        self.hnsw = (hnsw_m, hnsw_ef_construction)
        missing = pending(url)
        if missing:
            raise DatabaseProblem(
                f"The database is not migrated ({', '.join(missing)} pending): run `python -m bot db migrate`."
            )
        from psycopg_pool import ConnectionPool

        self.url = url
        self.ef_search = ef_search
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            configure=self._configure,
            open=True,
            kwargs={"autocommit": True},
        )

    def _configure(self, connection) -> None:
        from pgvector.psycopg import register_vector

        register_vector(connection)
        connection.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- versions ---------------------------------------------------------------------------

    def current(self) -> int | None:
        """The version readers answer from (None before the first switch)."""
        with self._pool.connection() as connection:
            row = connection.execute("SELECT version FROM current_version").fetchone()
        return None if row is None else int(row[0])

    def versions(self) -> list[int]:
        """Every stored version, oldest first."""
        with self._pool.connection() as connection:
            return [int(r[0]) for r in connection.execute("SELECT id FROM index_versions ORDER BY id")]

    def sentence_counts(self) -> dict[int, int]:
        """Sentences per stored version."""
        with self._pool.connection() as connection:
            return {int(v): int(n) for v, n in connection.execute("SELECT id, sentences FROM index_versions")}

    @contextmanager
    def building(self, wait: bool = False) -> Iterator[Build]:
        """Hold the build lock for a `Build`; when another process holds it, wait for it to end
        (`wait`) or raise BuildInProgress. The lock goes with the connection if the holder dies."""
        with connect(self.url, autocommit=True) as connection:
            got = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, BUILD_LOCK)).fetchone()[0]
            if not got and wait:
                log.warning("another index build is running on the database; waiting for it to finish")
                connection.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, BUILD_LOCK))
            elif not got:
                raise BuildInProgress(
                    "Another index build is running on this database; try again when it has finished."
                )
            try:
                yield Build(connection, *self.hnsw)
            finally:
                if not connection.closed:
                    connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, BUILD_LOCK))

    def drop_unused(self) -> list[int]:
        """Drop the old versions no process pins any more (a serving process that let go of one
        calls this); nothing when a build is running: that build drops them when it ends."""
        try:
            with self.building() as build:
                return build.drop_old()
        except BuildInProgress:
            return []

    def publish(self, index: SentenceIndex, maintenance_work_mem: str = "1GB") -> int:
        """Write `index` as a new version, make it current and drop the versions nobody reads."""
        with self.building() as build:
            version = build.write(index, maintenance_work_mem)
            build.switch(version)
            build.drop_old()
        return version

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """The current version, pinned for one transaction (it is not dropped while read)."""
        with self._pool.connection() as connection:
            with connection.transaction():
                version: int | None = None
                while True:
                    row = connection.execute(
                        "SELECT c.version, v.dimension FROM current_version c JOIN index_versions v ON v.id = c.version"
                    ).fetchone()
                    if row is None:
                        raise NoVersion("No index in the database yet: run `python -m bot index` to build it.")
                    if row[0] == version:
                        break  # still current now that it is pinned: a dropper skips it from here on
                    version, dimension = int(row[0]), int(row[1])
                    connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (VERSION_LOCKS, version))
                assert version is not None  # the loop ends only once a version is pinned
                yield Reader(connection, version, dimension, self.ef_search)

    def pin(self, version: int | None = None) -> Pin:
        """Keep a version (default: the current one) from being dropped until `Pin.release`: a
        shared advisory lock held by a connection of its own, for as long as a process serves it."""
        connection = connect(self.url, autocommit=True)
        try:
            wanted = version
            while True:
                row = connection.execute(
                    "SELECT v.id, v.dimension, v.sentences, v.manifest FROM index_versions v"
                    " WHERE v.ready AND v.id = COALESCE(%s, (SELECT version FROM current_version))",
                    (wanted,),
                ).fetchone()
                if row is None:
                    raise NoVersion(
                        "No index in the database yet: run `python -m bot index` to build it."
                        if wanted is None
                        else f"No index version {wanted} in the database."
                    )
                connection.execute("SELECT pg_advisory_lock_shared(%s, %s)", (VERSION_LOCKS, row[0]))
                still = connection.execute(
                    "SELECT v.id FROM index_versions v WHERE v.id = COALESCE(%s, (SELECT version FROM current_version))",
                    (wanted,),
                ).fetchone()
                if still is not None and still[0] == row[0]:  # not dropped or switched before the lock
                    return Pin(connection, int(row[0]), int(row[1]), int(row[2]), row[3])
                connection.execute("SELECT pg_advisory_unlock_shared(%s, %s)", (VERSION_LOCKS, row[0]))
        except BaseException:
            connection.close()
            raise

    @contextmanager
    def reader(self, version: int, dimension: int) -> Iterator[Reader]:
        """Queries over a version the caller keeps pinned (`pin`), on a pooled connection."""
        with self._pool.connection() as connection:
            yield Reader(connection, version, dimension, self.ef_search)

    def known_vectors(self) -> StoredVectors | None:
        """The current version's vectors by text key, for a rebuild to reuse (None before the first)."""
        try:
            with self.reading() as reader:
                return reader.known_vectors()
        except NoVersion:
            return None

    def load(self, version: int | None = None) -> SentenceIndex:
        """A stored version (default: the current one) as an in-memory SentenceIndex."""
        if version is None:
            with self.reading() as reader:
                return reader.load()
        with self._pool.connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (VERSION_LOCKS, version))
            row = connection.execute("SELECT dimension FROM index_versions WHERE id = %s", (version,)).fetchone()
            if row is None:
                raise NoVersion(f"No index version {version} in the database (versions: {self.versions()}).")
            return Reader(connection, version, int(row[0]), self.ef_search).load()


@dataclass
class StoredVectors:
    """A version's vectors by text key (bot.index.Previous): what a rebuild reuses, without
    reading the version's texts and postings."""

    model: str
    dimension: int
    keys: list[str]
    vectors: np.ndarray
    corpus: dict[str, str]
    tokens: list[bytes | None] = field(default_factory=list)  # per key, packed (bot.tokens.pack)

    def known_vectors(self) -> dict[str, np.ndarray]:
        return dict(zip(self.keys, self.vectors, strict=True))

    def known_tokens(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        projection = projection_for(self.model, self.dimension)
        if projection is None:
            return {}
        return {
            k: unpack(t, projection.dimension) for k, t in zip(self.keys, self.tokens, strict=True) if t is not None
        }

    def fingerprint(self) -> dict[str, str]:
        return dict(self.corpus)


@dataclass
class Pin:
    """A version kept from being dropped while its connection holds the shared lock (PgStore.pin)."""

    connection: Any  # a psycopg connection
    version: int
    dimension: int
    sentences: int
    manifest: dict

    def release(self) -> None:
        """Let the next build drop the version (closing the connection releases the lock)."""
        self.connection.close()


class Build:
    """Writes versions while its connection holds the build lock (see PgStore.building)."""

    def __init__(self, connection, hnsw_m: int = HNSW_M, hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION) -> None:
        self.connection = connection
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction

    def write(self, index: SentenceIndex, maintenance_work_mem: str = "1GB") -> int:
        """Write `index` as a new version in one transaction (not yet current); returns its id."""
        from psycopg import sql

        c = self.connection
        dimension = int(index.vectors.shape[1])
        words = index.words or WordIndex.build(
            [s.text for s in index.sentences], [(p.first, p.last) for p in index.passages]
        )
        with c.transaction():
            version = c.execute(
                "INSERT INTO index_versions (model, dimension, sentences, manifest) VALUES (%s, %s, %s, %s) RETURNING id",
                (index.model, dimension, len(index.sentences), json.dumps(index.manifest)),
            ).fetchone()[0]
            for table in TABLES:
                c.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                        _partition(table, version), sql.Identifier(table), sql.Literal(version)
                    )
                )
            self._copy_articles(version, index.articles.values())
            self._copy_passages(version, index.passages)
            self._copy_sentences(version, index, words)
            self._copy_postings(version, words)
            c.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem)))
            c.execute(
                sql.SQL(
                    "CREATE INDEX ON {} USING hnsw ((embedding::vector({})) vector_ip_ops) "
                    "WITH (m = {}, ef_construction = {})"
                ).format(
                    _partition("sentences", version),
                    sql.Literal(dimension),
                    sql.Literal(self.hnsw_m),
                    sql.Literal(self.hnsw_ef_construction),
                )
            )
            # (kind, term, doc): a word's postings, and its weight in given documents (bot.serve_pg)
            c.execute(sql.SQL("CREATE INDEX ON {} (kind, term, doc)").format(_partition("postings", version)))
            for table in TABLES:
                c.execute(sql.SQL("ANALYZE {}").format(_partition(table, version)))
            c.execute("UPDATE index_versions SET ready = true WHERE id = %s", (version,))
        return int(version)

    def _copy_articles(self, version: int, articles) -> None:
        from psycopg import sql

        columns = ("doc", "title", "paragraphs", "url", "published", "sha256", "place", "agency")
        query = sql.SQL("COPY {} (version, {}) FROM STDIN").format(
            _partition("articles", version), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.connection.cursor().copy(query) as copy:
            for a in articles:
                copy.write_row(
                    (version, a.doc, a.title, list(a.paragraphs), a.url, a.published, a.sha256, a.place, a.agency)
                )

    def _copy_passages(self, version: int, passages: Sequence[Passage]) -> None:
        from psycopg import sql

        query = sql.SQL("COPY {} (version, id, doc, paragraph, first, last) FROM STDIN").format(
            _partition("passages", version)
        )
        with self.connection.cursor().copy(query) as copy:
            for i, p in enumerate(passages):
                copy.write_row((version, i, p.doc, p.paragraph, p.first, p.last))

    def _copy_sentences(self, version: int, index: SentenceIndex, words: WordIndex) -> None:
        from psycopg import sql

        query = sql.SQL(
            "COPY {} (version, id, doc, paragraph, sentence, text, passage, text_key, embedding, "
            "term_count, name_count, has_number, has_time, tokens) FROM STDIN WITH (FORMAT BINARY)"
        ).format(_partition("sentences", version))
        titles = {doc: a.title for doc, a in index.articles.items()}
        vectors = np.ascontiguousarray(index.vectors, dtype=np.float32)
        term_counts = words.term_counts.tolist()
        name_counts = words.name_counts.tolist()
        has_number = words.has_number.tolist()
        has_time = words.has_time.tolist()
        with self.connection.cursor().copy(query) as copy:
            copy.set_types(
                [
                    "integer",
                    "integer",
                    "text",
                    "integer",
                    "integer",
                    "text",
                    "integer",
                    "text",
                    "vector",
                    "real",
                    "real",
                    "boolean",
                    "boolean",
                    "bytea",
                ]
            )
            tokens = index.tokens
            for i, s in enumerate(index.sentences):
                copy.write_row(
                    (
                        version,
                        i,
                        s.doc,
                        s.paragraph,
                        s.sentence,
                        s.text,
                        s.passage,
                        text_key(embedding_text(titles[s.doc], s.text)),
                        vectors[i],
                        term_counts[i],
                        name_counts[i],
                        has_number[i],
                        has_time[i],
                        pack(*tokens.sentence(i)) if tokens is not None else None,
                    )
                )

    def _copy_postings(self, version: int, words: WordIndex) -> None:
        from psycopg import sql

        query = sql.SQL("COPY {} (version, kind, term, doc, weight) FROM STDIN").format(_partition("postings", version))
        with self.connection.cursor().copy(query) as copy:
            for kind, postings in (("s", words.sentences), ("p", words.passages), ("n", words.names)):
                prefix = f"{version}\t{kind}\t"
                for term, j in postings.vocabulary.items():
                    start, stop = int(postings.indptr[j]), int(postings.indptr[j + 1])
                    head = prefix + _copy_text(term) + "\t"
                    docs = postings.indices[start:stop].tolist()
                    weights = postings.weights[start:stop].tolist()
                    copy.write("".join(f"{head}{d}\t{w!r}\n" for d, w in zip(docs, weights, strict=True)))

    def switch(self, version: int) -> None:
        """Make `version` the one every reader answers from (one UPDATE: readers see old or new)."""
        with self.connection.transaction():
            ready = self.connection.execute("SELECT ready FROM index_versions WHERE id = %s", (version,)).fetchone()
            if ready is None or not ready[0]:
                raise ValueError(f"version {version} is not a fully written index version")
            self.connection.execute(
                "INSERT INTO current_version (singleton, version) VALUES (true, %s) "
                "ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, switched_at = now()",
                (version,),
            )
            self.connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))

    def drop_old(self) -> list[int]:
        """Drop every version but the current one that no reader has pinned; returns those dropped."""
        from psycopg import sql

        dropped = []
        rows = self.connection.execute(
            "SELECT id FROM index_versions WHERE id <> COALESCE((SELECT version FROM current_version), -1) ORDER BY id"
        ).fetchall()
        for (version,) in rows:
            with self.connection.transaction():
                free = self.connection.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)", (VERSION_LOCKS, version)
                ).fetchone()[0]
                if not free:
                    continue  # a reader still answers from it: the next build drops it
                for table in TABLES:
                    self.connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_partition(table, version)))
                self.connection.execute("DELETE FROM index_versions WHERE id = %s", (version,))
            dropped.append(int(version))
        return dropped


class Reader:
    """Queries over one pinned version (see PgStore.reading)."""

    def __init__(self, connection, version: int, dimension: int, ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self.connection = connection
        self.version = version
        self.dimension = dimension
        self._ef_search = ef_search

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Ids of (up to) the k sentences nearest `vector` (unit length) by inner product, best first."""
        from psycopg import sql

        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if k > self._ef_search:  # an HNSW scan returns at most ef_search rows
            self.connection.execute(f"SET LOCAL hnsw.ef_search = {int(k)}")
            self._ef_search = k
        query = sql.SQL("SELECT id FROM {} ORDER BY embedding::vector({dim}) <#> %s::vector({dim}) LIMIT %s").format(
            _partition("sentences", self.version), dim=sql.Literal(self.dimension)
        )
        vector = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        rows = self.connection.execute(query, (vector, k)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def bm25_best(self, terms: Sequence[str], k: int, kind: str = "s", slack: float = 0.0) -> LexicalHits:
        """BM25's k best sentences ('s') or passages ('p') for the words (a repeated word counts
        again, as in bot.words), every document tied with the k-th kept; with `slack`, also those
        within that fraction below the k-th (so that a caller can redo the cut in its own arithmetic)."""
        from psycopg import sql

        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if kind not in ("s", "p"):
            raise ValueError(f"kind must be 's' (sentences) or 'p' (passages), got {kind!r}")
        if not 0.0 <= slack < 1.0:
            raise ValueError(f"slack must be in [0, 1), got {slack}")
        query = sql.SQL(
            "WITH scores AS ("
            " SELECT p.doc, sum(p.weight::float8) AS score FROM unnest(%(terms)s::text[]) AS q(term)"
            " JOIN {} p ON p.kind = %(kind)s AND p.term = q.term GROUP BY p.doc)"
            " SELECT doc, score FROM scores WHERE score >= COALESCE("
            "  (SELECT score FROM scores ORDER BY score DESC OFFSET %(skip)s LIMIT 1), 0) * %(keep)s"
            " ORDER BY score DESC, doc"
        ).format(_partition("postings", self.version))
        parameters = {"terms": list(terms), "kind": kind, "skip": k - 1, "keep": 1.0 - slack}
        rows = self.connection.execute(query, parameters).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        scores = np.array([r[1] for r in rows], dtype=np.float32)
        return LexicalHits(ids, scores, float(scores[0]) if len(scores) else 0.0)

    def document_frequency(self, terms: Sequence[str], kind: str = "s") -> dict[str, int]:
        """How many sentences (or passages, names) hold each of the words (absent: 0)."""
        from psycopg import sql

        query = sql.SQL("SELECT term, count(*) FROM {} WHERE kind = %s AND term = ANY(%s) GROUP BY term").format(
            _partition("postings", self.version)
        )
        found = dict(self.connection.execute(query, (kind, list(set(terms)))).fetchall())
        return {t: int(found.get(t, 0)) for t in terms}

    def around(self, ids: Sequence[int]) -> list[tuple]:
        """The sentences `ids`, the one before each, and every sentence of their passages, in id
        order: (id, doc, paragraph, sentence, text, passage, embedding as float32, term_count,
        name_count, has_number, has_time, tokens as bytes or None)."""
        from psycopg import sql

        ids = [int(i) for i in ids]
        spans = self.connection.execute(
            sql.SQL(
                "SELECT first, last FROM {p} WHERE version = %(v)s AND id IN"
                " (SELECT passage FROM {s} WHERE version = %(v)s AND id = ANY(%(ids)s))"
            ).format(s=_partition("sentences", self.version), p=_partition("passages", self.version)),
            {"ids": ids, "v": self.version},
        ).fetchall()
        wanted = set(ids) | {i - 1 for i in ids if i > 0}
        for first, last in spans:
            wanted.update(range(first, last + 1))
        query = sql.SQL(
            "SELECT id, doc, paragraph, sentence, text, passage, embedding, term_count, name_count, has_number,"
            " has_time, tokens FROM {} WHERE version = %s AND id = ANY(%s) ORDER BY id"
        ).format(_partition("sentences", self.version))
        # binary: pgvector's binary loader reads each vector straight into numpy (text parsing costs ms)
        rows = self.connection.execute(query, (self.version, sorted(wanted)), binary=True).fetchall()
        return [(*r[:6], r[6].to_numpy().astype(np.float32, copy=False), *r[7:]) for r in rows]

    def passages_of(self, ids: Sequence[int]) -> list[tuple[int, Passage]]:
        """The passages `ids`, as (id, Passage)."""
        from psycopg import sql

        query = sql.SQL(
            "SELECT id, doc, paragraph, first, last FROM {} WHERE version = %s AND id = ANY(%s) ORDER BY id"
        ).format(_partition("passages", self.version))
        return [(r[0], Passage(*r[1:])) for r in self.connection.execute(query, (self.version, list(ids)))]

    def postings_in(self, kind: str, terms: Sequence[str], docs: Sequence[int]) -> list[tuple[str, int, float]]:
        """The postings (term, doc, weight) of the words in those documents only, by term then doc."""
        from psycopg import sql

        if not terms or not docs:
            return []
        # one index probe per (word, document) pair: ~3x faster than `term = ANY(..) AND doc = ANY(..)`
        # (PostgreSQL 16), and independent of how many documents hold a common word
        query = sql.SQL(
            "SELECT p.term, p.doc, p.weight FROM unnest(%s::text[]) AS t(term) CROSS JOIN unnest(%s::integer[]) AS d(doc)"
            " JOIN {} p ON p.kind = %s AND p.term = t.term AND p.doc = d.doc ORDER BY p.term, p.doc"
        ).format(_partition("postings", self.version))
        return self.connection.execute(query, (list(terms), [int(d) for d in docs], kind), binary=True).fetchall()

    def articles_of(self, docs: Sequence[str]) -> dict[str, Article]:
        """The articles named."""
        from psycopg import sql

        query = sql.SQL(
            "SELECT doc, title, paragraphs, url, published, sha256, place, agency FROM {}"
            " WHERE version = %s AND doc = ANY(%s)"
        ).format(_partition("articles", self.version))
        return {
            r[0]: Article(r[0], r[1], tuple(r[2]), *r[3:])
            for r in self.connection.execute(query, (self.version, list(docs)))
        }

    def sentences_of(self, ids: Sequence[int]) -> dict[int, Sentence]:
        """The sentences `ids` (text, article, place), by id."""
        from psycopg import sql

        query = sql.SQL(
            "SELECT id, doc, paragraph, sentence, text, passage FROM {} WHERE version = %s AND id = ANY(%s)"
        ).format(_partition("sentences", self.version))
        return {r[0]: Sentence(*r[1:]) for r in self.connection.execute(query, (self.version, [int(i) for i in ids]))}

    def known_vectors(self) -> StoredVectors:
        """Every sentence's text key and vector (binary, streamed into one array)."""
        from psycopg import sql

        row = self.connection.execute("SELECT manifest FROM index_versions WHERE id = %s", (self.version,)).fetchone()
        manifest = row[0]
        keys: list[str] = []
        tokens: list[bytes | None] = []
        chunks: list[np.ndarray] = []
        query = sql.SQL("SELECT text_key, embedding, tokens FROM {} ORDER BY id").format(
            _partition("sentences", self.version)
        )
        with self.connection.cursor(name="known_vectors", binary=True) as cursor:
            cursor.execute(query)
            while rows := cursor.fetchmany(10_000):
                keys += [r[0] for r in rows]
                tokens += [bytes(r[2]) if r[2] is not None else None for r in rows]
                chunks.append(np.stack([r[1].to_numpy() for r in rows]).astype(np.float32, copy=False))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, self.dimension), dtype=np.float32)
        return StoredVectors(manifest["model"], self.dimension, keys, vectors, dict(manifest["corpus"]), tokens)

    def all_sentences(self) -> Iterator[Sentence]:
        """Every sentence in id order, streamed (a server-side cursor)."""
        from psycopg import sql

        query = sql.SQL("SELECT doc, paragraph, sentence, text, passage FROM {} ORDER BY id").format(
            _partition("sentences", self.version)
        )
        with self.connection.transaction(), self.connection.cursor(name="all_sentences") as cursor:
            cursor.execute(query)
            for row in cursor:
                yield Sentence(*row)

    def count(self, table: str) -> int:
        """Rows of this version in one of TABLES."""
        from psycopg import sql

        if table not in TABLES:
            raise ValueError(f"table must be one of {TABLES}, got {table!r}")
        return int(
            self.connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(_partition(table, self.version))
            ).fetchone()[0]
        )

    def docs(self) -> list[str]:
        """The articles' names, sorted."""
        from psycopg import sql

        query = sql.SQL("SELECT doc FROM {} ORDER BY doc").format(_partition("articles", self.version))
        return [r[0] for r in self.connection.execute(query)]

    def load(self) -> SentenceIndex:
        """The whole version as an in-memory SentenceIndex (vectors, sentences, word index)."""
        from psycopg import sql

        c = self.connection
        manifest = c.execute("SELECT manifest FROM index_versions WHERE id = %s", (self.version,)).fetchone()[0]
        articles = {}
        for row in c.execute(
            sql.SQL("SELECT doc, title, paragraphs, url, published, sha256, place, agency FROM {} ORDER BY doc").format(
                _partition("articles", self.version)
            )
        ):
            doc, title, paragraphs, url, published, sha256, place, agency = row
            articles[doc] = Article(doc, title, tuple(paragraphs), url, published, sha256, place, agency)
        passages = [
            Passage(*row)
            for row in c.execute(
                sql.SQL("SELECT doc, paragraph, first, last FROM {} ORDER BY id").format(
                    _partition("passages", self.version)
                )
            )
        ]
        rows = c.execute(
            sql.SQL(
                "SELECT doc, paragraph, sentence, text, passage, embedding, term_count, name_count, has_number, has_time,"
                " tokens FROM {} ORDER BY id"
            ).format(_partition("sentences", self.version))
        ).fetchall()
        sentences = [Sentence(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        vectors = np.array([np.asarray(r[5].to_numpy()) for r in rows], dtype=np.float32).reshape(
            len(rows), self.dimension
        )
        postings = {
            kind: self._postings(kind, size)
            for kind, size in (("s", len(rows)), ("p", len(passages)), ("n", len(rows)))
        }
        words = WordIndex(
            postings["s"],
            postings["p"],
            np.array([r[6] for r in rows], dtype=np.float32),
            np.array([r[8] for r in rows], dtype=bool),
            np.array([r[9] for r in rows], dtype=bool),
            postings["n"],
            np.array([r[7] for r in rows], dtype=np.float32),
        )
        projection = projection_for(manifest["model"], self.dimension)
        tokens = None
        if projection is not None and rows and all(r[10] is not None for r in rows):
            tokens = TokenVectors.of([unpack(bytes(r[10]), projection.dimension) for r in rows], projection.dimension)
        return SentenceIndex(articles, sentences, passages, vectors, manifest, words=words, tokens=tokens)

    def _postings(self, kind: str, size: int) -> Postings:
        from psycopg import sql

        rows = self.connection.execute(
            sql.SQL("SELECT term, doc, weight FROM {} WHERE kind = %s ORDER BY term, doc").format(
                _partition("postings", self.version)
            ),
            (kind,),
        ).fetchall()
        return postings_from_rows(rows, size)


def postings_from_rows(
    rows: Sequence[tuple[str, int, float]], size: int, local: Mapping[int, int] | None = None
) -> Postings:
    """Postings from the database's (term, doc, weight) rows ordered by term; `local` renumbers
    the documents (a question's candidates) when given."""
    vocabulary: dict[str, int] = {}
    starts = []
    for n, (term, _, _) in enumerate(rows):
        if term not in vocabulary:
            vocabulary[term] = len(vocabulary)
            starts.append(n)
    indptr = np.array(starts + [len(rows)], dtype=np.int64)
    docs = [r[1] for r in rows] if local is None else [local[r[1]] for r in rows]
    indices = np.array(docs, dtype=np.int32)
    weights = np.array([r[2] for r in rows], dtype=np.float32)
    return Postings(vocabulary, indptr, indices, weights, size)


class VersionWatcher:
    """Calls `on_change` soon after any process switches the current version: at once on the
    switch's NOTIFY, and at least every `poll_seconds` (a cheap read of the pointer, in case a
    notification was missed while the connection was down). `on_change` itself compares versions.
    """

    def __init__(self, url: str, on_change: Callable[[], object], poll_seconds: float = 1.0) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {poll_seconds}")
        self.url = url
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citebot-index-versions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (returns within about `poll_seconds`)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        self._check()
                        for _ in connection.notifies(timeout=self.poll_seconds, stop_after=1):
                            pass
            except (psycopg.Error, DatabaseProblem) as exc:
                log.warning("watching the database for new index versions failed (%s); trying again", exc)
                self._stop.wait(self.poll_seconds)

    def _check(self) -> None:
        try:
            self.on_change()
        except NoVersion as exc:  # e.g. the database was emptied: keep serving what is loaded
            log.warning("no index version to switch to: %s", exc)
