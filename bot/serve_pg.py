"""Answering from PostgreSQL question by question, reading only the candidates' data (DATABASE_URL).

Per question, on one pooled connection, over a version the serving process keeps pinned:

1. the k sentences nearest the question vector (pgvector HNSW) and BM25's best sentences (the
   stored postings summed in the database, with a little slack below the k-th: see below);
2. those sentences, the sentence before each and every sentence of their passages (text,
   vector, kinds of fact);
3. the postings of the question's words in those sentences and passages only, and each
   word's document frequency.

From these a `CandidateView` (a Store over just those few hundred sentences, in id order) is
scored by the same `Retriever` code as the embedded index, with the corpus-wide figures (the
number of sentences, the words' document frequencies, BM25's best) from the database. So the
ranking and the decline see the same inputs as with the embedded store, and a question's
memory is proportional to its candidates, not to the archive.

BM25's best is cut again here in the embedded store's own float32 arithmetic, over the
database's candidates within LEXICAL_SLACK of its k-th score, so a sum rounded differently in
the database cannot move a sentence across the cut.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import overload

import numpy as np

from . import answerable
from .corpus import Article
from .kinds import asked_words
from .retrieve import CANDIDATES, Features, Retriever, Words
from .split import Passage, Sentence
from .store_pg import PgStore, Pin, postings_from_rows
from .tokens import Projection, QuestionTokens, TokenVectors, projection_for, unpack
from .words import WordIndex, terms, truecase

# BM25 candidates are read down to this fraction below the k-th score, then cut exactly
LEXICAL_SLACK = 1e-4
# sentences whose facts (bot.answerable.facts) a serving process keeps, by text
FACTS_KEPT = 100_000


@dataclass
class CandidateView:
    """A Store over a question's candidate sentences and their neighbours (local ids, in id order)."""

    articles: dict[str, Article]
    sentences: list[Sentence]
    passages: list[Passage]
    vectors: np.ndarray
    model: str
    words: WordIndex
    nearest_ids: np.ndarray  # the database's nearest sentences, as local ids
    tokens: TokenVectors | None = None  # their token vectors, where the version has them

    @property
    def facts(self) -> WordIndex:
        return self.words

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """The nearest sentences the database found for this question (the view holds no others)."""
        return self.nearest_ids[:k]


class CandidateRetriever(Retriever):
    """The embedded Retriever over a CandidateView, with the corpus-wide figures of the database."""

    def __init__(
        self,
        view: CandidateView,
        k: int,
        sentences: int,
        document_frequency: Mapping[str, int],
        lexical: np.ndarray,
        facts: Callable[[str], answerable.Facts] = answerable.facts,
    ) -> None:
        super().__init__(view, candidates=max(k, 1))
        self.k = k  # the corpus's, not the view's
        self._facts_of = facts  # kept across questions by DatabaseRetriever
        self._lexical = lexical  # local ids of BM25's best (with the slack)
        present = sorted(t for t, df in document_frequency.items() if df > 0)
        df = np.array([document_frequency[t] for t in present], dtype=np.float64)
        self._corpus_idf = dict(zip(present, np.log(1.0 + (sentences + 1) / (df + 0.5)).tolist(), strict=True))
        self._unseen_idf = float(np.log(1.0 + (sentences + 1) / 0.5))

    def idf(self, term: str) -> float:
        return self._corpus_idf.get(term, self._unseen_idf)

    def in_corpus(self, term: str) -> bool:
        return term in self._corpus_idf

    def sentence_facts(self, i: int) -> answerable.Facts:
        return self._facts_of(self.index.sentences[i].text)

    def best(self, bm: np.ndarray) -> np.ndarray:
        """The embedded cut, over the database's best only (every sentence that can make the cut is among them)."""
        among = np.zeros_like(bm)
        among[self._lexical] = bm[self._lexical]
        return super().best(among)


class DatabaseRetriever:
    """Scores a question's candidates read from the database (a bot.retrieve.Scorer)."""

    def __init__(self, store: PgStore, pin: Pin, candidates: int = CANDIDATES) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.store = store
        self.pin = pin
        self.k = min(candidates, pin.sentences)
        # what facts a sentence holds, kept for the sentences most often candidates (as Retriever keeps them)
        self._facts = functools.lru_cache(maxsize=FACTS_KEPT)(answerable.facts)
        self._projection = projection_for(pin.manifest["model"], pin.dimension) if pin.manifest.get("tokens") else None

    @property
    def dimension(self) -> int:
        return self.pin.dimension

    @property
    def projection(self) -> Projection | None:
        return self._projection

    def words(self, question: str) -> Words | None:
        """Nothing: the database is asked once, for the words and the vector together."""
        return None

    def truecase(self, question: str) -> str:
        """The question as if typed with capitals, where it was typed in lower case (words.truecase)."""

        def counts(words: list[str], stems: list[str]) -> tuple[dict[str, int], dict[str, int]]:
            with self.store.reader(self.pin.version, self.pin.dimension) as reader:
                return reader.document_frequency(words, "n"), reader.document_frequency(stems)

        return truecase(question, counts)

    def features(
        self,
        question_vector: np.ndarray,
        question: str,
        words: Words | None = None,
        tokens: QuestionTokens | None = None,
    ) -> Features:
        """Evidence for the candidate sentences (ids are the version's sentence ids)."""
        q = np.ascontiguousarray(question_vector, dtype=np.float32).reshape(-1)
        q_terms = terms(question)
        q_set = sorted(set(q_terms))
        ask = answerable.parse(question)
        asked = sorted(asked_words(question))
        with self.store.reader(self.pin.version, self.pin.dimension) as reader:
            nearest = reader.nearest(q, self.k)
            lexical = reader.bm25_best(q_terms, self.k, slack=LEXICAL_SLACK).ids if q_terms else nearest[:0]
            rows = reader.around(sorted(set(nearest.tolist()) | set(lexical.tolist())))
            ids = [r[0] for r in rows]
            passage_ids = sorted({r[5] for r in rows})
            sentence_postings = reader.postings_in("s", sorted(set(q_terms) | set(ask.terms)), ids)
            passage_postings = reader.postings_in("p", list(ask.terms), passage_ids)
            name_postings = reader.postings_in("n", asked, ids)
            document_frequency = reader.document_frequency(q_set)
        local = {g: i for i, g in enumerate(ids)}
        local_passage = {g: i for i, g in enumerate(passage_ids)}
        members: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            members.setdefault(r[5], []).append(i)
        passages = [
            Passage(rows[members[p][0]][1], rows[members[p][0]][2], members[p][0], members[p][-1]) for p in passage_ids
        ]
        sentences = [Sentence(r[1], r[2], r[3], r[4], local_passage[r[5]]) for r in rows]
        word_index = WordIndex(
            postings_from_rows(sentence_postings, len(rows), local),
            postings_from_rows(passage_postings, len(passages), local_passage),
            np.array([r[7] for r in rows], dtype=np.float32),
            np.array([r[9] for r in rows], dtype=bool),
            np.array([r[10] for r in rows], dtype=bool),
            postings_from_rows(name_postings, len(rows), local),
            np.array([r[8] for r in rows], dtype=np.float32),
        )
        vectors = np.array([r[6] for r in rows], dtype=np.float32).reshape(len(rows), self.pin.dimension)
        token_vectors = None
        if self._projection is not None and all(r[11] is not None for r in rows):
            size = self._projection.dimension
            token_vectors = TokenVectors.of([unpack(bytes(r[11]), size) for r in rows], size)
        view = CandidateView(
            {},
            sentences,
            passages,
            vectors,
            self.pin.manifest["model"],
            word_index,
            np.array([local[i] for i in nearest.tolist()], dtype=np.int64),
            token_vectors,
        )
        lexical_local = np.array([local[i] for i in lexical.tolist()], dtype=np.int64)
        retriever = CandidateRetriever(view, self.k, self.pin.sentences, document_frequency, lexical_local, self._facts)
        features = retriever.features(q, question, None, tokens)
        return replace(features, ids=np.array(ids, dtype=np.int64)[features.ids])


class _Sentences(Sequence[Sentence]):
    """A version's sentences, read from the database when asked for."""

    def __init__(self, index: DatabaseIndex) -> None:
        self._of = index

    def __len__(self) -> int:
        return self._of.pin.sentences

    @overload
    def __getitem__(self, i: int) -> Sentence: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sentence]: ...
    def __getitem__(self, i: int | slice) -> Sentence | list[Sentence]:
        n = len(self)
        if isinstance(i, slice):
            wanted = list(range(n))[i]
            with self._of.reader() as reader:
                found = reader.sentences_of(wanted)
            return [found[j] for j in wanted]
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(f"no sentence {i} in index version {self._of.version}")
        with self._of.reader() as reader:
            return reader.sentences_of([j])[j]

    def __iter__(self) -> Iterator[Sentence]:
        with self._of.reader() as reader:
            yield from reader.all_sentences()


class _Passages(Sequence[Passage]):
    """A version's passages, read from the database when asked for."""

    def __init__(self, index: DatabaseIndex) -> None:
        self._of = index
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            with self._of.reader() as reader:
                self._count = reader.count("passages")
        return self._count

    @overload
    def __getitem__(self, i: int) -> Passage: ...
    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...
    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        n = len(self)
        wanted = list(range(n))[i] if isinstance(i, slice) else [i + n if i < 0 else i]
        with self._of.reader() as reader:
            found = dict(reader.passages_of(wanted))
        if isinstance(i, slice):
            return [found[j] for j in wanted]
        if wanted[0] not in found:
            raise IndexError(f"no passage {i} in index version {self._of.version}")
        return found[wanted[0]]


class _Articles(Mapping[str, Article]):
    """A version's articles, read from the database when asked for."""

    def __init__(self, index: DatabaseIndex) -> None:
        self._of = index

    def __getitem__(self, doc: str) -> Article:
        with self._of.reader() as reader:
            found = reader.articles_of([doc])
        if doc not in found:
            raise KeyError(doc)
        return found[doc]

    def __len__(self) -> int:
        return int(self._of.manifest["articles"])

    def __iter__(self) -> Iterator[str]:
        with self._of.reader() as reader:
            docs = reader.docs()
        return iter(docs)


class DatabaseIndex:
    """One pinned version as the answering path's SentenceData: its sentences, passages and
    articles are read from the database when asked for (nothing of the archive is held here)."""

    def __init__(self, store: PgStore, pin: Pin) -> None:
        self.store = store
        self.pin = pin
        self.sentences = _Sentences(self)
        self.passages = _Passages(self)
        self.articles = _Articles(self)

    @property
    def version(self) -> int:
        return self.pin.version

    @property
    def manifest(self) -> dict:
        return self.pin.manifest

    @property
    def model(self) -> str:
        return self.pin.manifest["model"]

    def reader(self):
        return self.store.reader(self.pin.version, self.pin.dimension)

    def close(self) -> None:
        """Release the version: the next build may drop it."""
        self.pin.release()
