"""Retrieve candidate sentences for a question: dense (FAISS) and lexical (BM25) evidence."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import bm25s
import numpy as np

from .index import SentenceIndex
from .kinds import asked_words, question_kind, sentence_facts

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
_TOKEN = re.compile(r"(?u)\b\w+\b")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | {
    "did", "does", "do", "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
    "many", "much", "according", "name", "called", "s",
}


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """Lower-cased, stemmed content words of a text (stop words dropped)."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return _stemmer().stemWords(words)


@dataclass(frozen=True)
class Features:
    """Evidence for the candidate sentences `ids` (one array element per candidate)."""

    ids: np.ndarray  # sentence indices into the index
    dense: np.ndarray  # cosine of question and sentence
    context: np.ndarray  # cosine of question and the sentence's passage (mean of its vectors)
    lexical: np.ndarray  # BM25 of the sentence, divided by the best BM25 for this question
    lexical_context: np.ndarray  # BM25 of the passage, divided by the best passage BM25
    coverage: np.ndarray  # share of the question's content words found in the sentence
    weighted_coverage: np.ndarray  # the same, each word weighted by its rarity (IDF)
    corpus_coverage: float  # IDF-weighted share of the question's words found anywhere at all
    novelty: np.ndarray  # how many words the sentence adds to the question's (log-scaled, ~[0, 1])
    kind: np.ndarray  # 1.0 where the sentence holds the kind of thing asked for (number, time, name)
    bm25_max: float  # raw best sentence BM25 (how much lexical support exists at all)
    query_terms: int  # content words in the question


class Retriever:
    """Scores every sentence of an index against a question vector and text.

    Everything that depends only on the corpus is worked out once here, so a question costs
    one FAISS search and a few array operations over the postings of its own words.
    """

    def __init__(self, index: SentenceIndex) -> None:
        self.index = index
        self.vectors = index.vectors
        self.passage_of = np.array([s.passage for s in index.sentences], dtype=np.int64)
        passage_vectors = np.zeros((len(index.passages), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(passage_vectors, self.passage_of, self.vectors)
        norms = np.linalg.norm(passage_vectors, axis=1, keepdims=True)
        self.passage_vectors = passage_vectors / np.maximum(norms, 1e-12)
        sentence_terms = [terms(s.text) for s in index.sentences]
        self.term_counts = np.array([len(set(t)) for t in sentence_terms], dtype=np.float32)  # distinct words
        n = len(index.sentences)
        # what each sentence holds (number, date, names), worked out the first time it is a candidate
        self._facts_known = np.zeros(n, dtype=bool)
        self.has_number = np.zeros(n, dtype=bool)
        self.has_time = np.zeros(n, dtype=bool)
        self.names: list[frozenset[str]] = [frozenset()] * n
        self.bm25 = _bm25(sentence_terms)
        self.postings = _Postings(self.bm25)
        passage_terms = [
            [t for i in range(p.first, p.last + 1) for t in sentence_terms[i]] for p in index.passages
        ]
        self.passage_bm25 = _bm25(passage_terms)
        words = list(self.postings.columns)
        df = np.array([self.postings.df(w) for w in words], dtype=np.float64)
        self._idf = dict(zip(words, np.log(1.0 + (n + 1) / (df + 0.5)).tolist()))
        self._unseen_idf = float(np.log(1.0 + (n + 1) / 0.5))

    def idf(self, term: str) -> float:
        """Inverse sentence frequency; a word the corpus never uses counts as the rarest."""
        return self._idf.get(term, self._unseen_idf)

    def kind_match(self, question: str, ids: np.ndarray) -> np.ndarray:
        """1.0 where a candidate holds the kind of thing the question asks for (see question_kind)."""
        kind = question_kind(question)
        if kind == "other":
            return np.zeros(len(ids), dtype=np.float32)
        for i in ids[~self._facts_known[ids]].tolist():
            self.has_number[i], self.has_time[i], self.names[i] = sentence_facts(self.index.sentences[i].text)
            self._facts_known[i] = True  # set last: a concurrent caller never reads half-filled facts
        if kind == "number":
            return self.has_number[ids].astype(np.float32)
        if kind == "time":
            return self.has_time[ids].astype(np.float32)
        asked = asked_words(question)  # person, place, name: a name the question does not already use
        return np.array([not self.names[i] <= asked for i in ids.tolist()], dtype=np.float32)

    def features(self, question_vector: np.ndarray, question: str, k: int = 64) -> Features:
        """Evidence for the candidate sentences: FAISS's k nearest and BM25's k best."""
        q = np.ascontiguousarray(question_vector, dtype=np.float32).reshape(1, -1)
        n = len(self.index.sentences)
        k = min(k, n)
        _, nearest = self.index.faiss_index.search(q, k)
        q_terms = terms(question)
        if not q_terms:
            ids = np.unique(nearest[0][nearest[0] >= 0])
            zeros = np.zeros(len(ids), dtype=np.float32)
            return self._features(q[0], question, ids, zeros, zeros, zeros, zeros, 0.0, self.term_counts[ids], 0.0, 0)
        bm = self.bm25.get_scores(q_terms)
        best = np.flatnonzero(bm > 0)  # BM25's k best among the sentences that share a word (ties kept)
        if len(best) > k:
            best = best[bm[best] >= np.partition(bm[best], len(best) - k)[len(best) - k]]
        candidate = np.zeros(n, dtype=bool)
        candidate[nearest[0][nearest[0] >= 0]] = True
        candidate[best] = True
        ids = np.flatnonzero(candidate)
        bm_max = float(bm.max())
        passage_bm = self.passage_bm25.get_scores(q_terms)
        passage_max = float(passage_bm.max())
        q_set = sorted(set(q_terms))
        idf = [self.idf(t) for t in q_set]
        total = sum(idf)
        matched, weighted = self.postings.count(q_set, idf)[:, ids]
        return self._features(
            q[0], question, ids,
            lexical=bm[ids] / bm_max if bm_max > 0 else bm[ids],
            lexical_context=passage_bm[self.passage_of[ids]] / passage_max if passage_max > 0 else passage_bm[self.passage_of[ids]],
            coverage=matched / len(q_set),
            weighted_coverage=weighted / total,
            corpus_coverage=sum(w for t, w in zip(q_set, idf) if self.postings.df(t)) / total,
            new_words=self.term_counts[ids] - matched,
            bm25_max=bm_max,
            query_terms=len(q_terms),
        )

    def _features(
        self, q: np.ndarray, question: str, ids: np.ndarray, lexical: np.ndarray, lexical_context: np.ndarray,
        coverage: np.ndarray, weighted_coverage: np.ndarray, corpus_coverage: float, new_words: np.ndarray,
        bm25_max: float, query_terms: int,
    ) -> Features:
        return Features(
            ids=ids,
            dense=self.vectors[ids] @ q,
            context=self.passage_vectors[self.passage_of[ids]] @ q,
            lexical=lexical,
            lexical_context=lexical_context,
            coverage=coverage.astype(np.float32),
            weighted_coverage=weighted_coverage.astype(np.float32),
            corpus_coverage=float(corpus_coverage),
            novelty=np.log1p(new_words) / np.log(32.0),
            kind=self.kind_match(question, ids),
            bm25_max=bm25_max,
            query_terms=query_terms,
        )


class _Postings:
    """Per word, the documents that hold it, read once from a bm25s index, so a question's words
    are counted per document without a loop over documents."""

    def __init__(self, bm25: bm25s.BM25) -> None:
        matrix = bm25.scores  # bm25s's CSC matrix: documents and weights per word id
        indices, indptr = matrix["indices"], matrix["indptr"]
        self.size = int(matrix["num_docs"])
        self.columns = {
            word: indices[indptr[j] : indptr[j + 1]]
            for word, j in bm25.vocab_dict.items()
            if j + 1 < len(indptr)  # bm25s adds an empty token to the vocabulary with no column
        }

    def df(self, word: str) -> int:
        """How many documents hold the word."""
        column = self.columns.get(word)
        return 0 if column is None else len(column)

    def count(self, words: Sequence[str], weights: Sequence[float]) -> np.ndarray:
        """Per document: how many of the distinct `words` it holds (row 0) and the sum of their weights (row 1)."""
        counts = np.zeros((2, self.size), dtype=np.float64)
        for w, weight in zip(words, weights):
            rows = self.columns.get(w)
            if rows is not None:  # a word's documents are distinct: no np.add.at needed
                counts[0, rows] += 1.0
                counts[1, rows] += weight
        return counts


def _bm25(token_lists: list[list[str]]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    # an empty list would make bm25s fail; a placeholder token never matches a question
    retriever.index([t or ["\u2400"] for t in token_lists], show_progress=False)
    return retriever
