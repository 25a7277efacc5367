"""Retrieve candidate sentences for a question: dense (FAISS) and lexical (BM25) evidence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import logging

import bm25s
import numpy as np

from .index import SentenceIndex

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
    bm25_max: float  # raw best sentence BM25 (how much lexical support exists at all)
    query_terms: int  # content words in the question


class Retriever:
    """Scores every sentence of an index against a question vector and text."""

    def __init__(self, index: SentenceIndex) -> None:
        self.index = index
        self.vectors = index.vectors
        self.passage_of = np.array([s.passage for s in index.sentences], dtype=np.int64)
        passage_vectors = np.zeros((len(index.passages), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(passage_vectors, self.passage_of, self.vectors)
        norms = np.linalg.norm(passage_vectors, axis=1, keepdims=True)
        self.passage_vectors = passage_vectors / np.maximum(norms, 1e-12)
        self.sentence_terms = [terms(s.text) for s in index.sentences]
        self.sentence_term_sets = [set(t) for t in self.sentence_terms]
        df: dict[str, int] = {}
        for term_set in self.sentence_term_sets:
            for term in term_set:
                df[term] = df.get(term, 0) + 1
        self.df = df
        self.bm25 = _bm25(self.sentence_terms)
        passage_terms = [
            [t for i in range(p.first, p.last + 1) for t in self.sentence_terms[i]] for p in index.passages
        ]
        self.passage_bm25 = _bm25(passage_terms)

    def idf(self, term: str) -> float:
        """Inverse sentence frequency; a word the corpus never uses counts as the rarest."""
        n = len(self.sentence_terms)
        return float(np.log(1.0 + (n + 1) / (self.df.get(term, 0) + 0.5)))

    def features(self, question_vector: np.ndarray, question: str, k: int = 64) -> Features:
        """Evidence for the candidate sentences: FAISS's k nearest and BM25's k best."""
        q = np.ascontiguousarray(question_vector, dtype=np.float32).reshape(1, -1)
        n = len(self.index.sentences)
        k = min(k, n)
        _, nearest = self.index.faiss_index.search(q, k)
        q_terms = terms(question)
        bm = self.bm25.get_scores(q_terms) if q_terms else np.zeros(n, dtype=np.float32)
        lexical_best = np.argpartition(-bm, k - 1)[:k] if k < n else np.arange(n)
        ids = np.union1d(nearest[0][nearest[0] >= 0], lexical_best[bm[lexical_best] > 0])
        q = q[0]
        dense = self.vectors[ids] @ q
        context = self.passage_vectors[self.passage_of[ids]] @ q
        if q_terms:
            pbm_all = self.passage_bm25.get_scores(q_terms)
            pbm = pbm_all[self.passage_of[ids]]
            pbm_max = float(pbm_all.max())
            q_set = set(q_terms)
            idf = {t: self.idf(t) for t in q_set}
            total = sum(idf.values())
            counts = np.zeros((3, len(ids)), dtype=np.float32)  # matched, matched IDF, new words
            for j, i in enumerate(ids):
                term_set = self.sentence_term_sets[i]
                matched = q_set & term_set
                counts[0, j] = len(matched)
                counts[1, j] = sum(idf[t] for t in matched)
                counts[2, j] = len(term_set) - len(matched)
            coverage = counts[0] / len(q_set)
            weighted = counts[1] / total
            novelty = counts[2]
            corpus_coverage = sum(w for t, w in idf.items() if t in self.df) / total
        else:
            pbm, pbm_max = np.zeros(len(ids), dtype=np.float32), 0.0
            coverage = np.zeros(len(ids), dtype=np.float32)
            weighted = coverage
            corpus_coverage = 0.0
            novelty = np.array([len(self.sentence_term_sets[i]) for i in ids], dtype=np.float32)
        bm_max = float(bm.max()) if n else 0.0
        lexical = bm[ids]
        return Features(
            ids=ids,
            dense=dense,
            context=context,
            lexical=lexical / bm_max if bm_max > 0 else lexical,
            lexical_context=pbm / pbm_max if pbm_max > 0 else pbm,
            coverage=coverage,
            weighted_coverage=weighted,
            corpus_coverage=float(corpus_coverage),
            novelty=np.log1p(novelty) / np.log(32.0),
            bm25_max=bm_max,
            query_terms=len(q_terms),
        )


def _bm25(token_lists: list[list[str]]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    # an empty list would make bm25s fail; a placeholder token never matches a question
    retriever.index([t or ["\u2400"] for t in token_lists], show_progress=False)
    return retriever
