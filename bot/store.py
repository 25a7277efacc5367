"""What the answering path needs from a store of sentences, as small protocols.

The ranking (bot.retrieve, bot.choose, bot.answer) reads the corpus only through these:
the dense search (the k sentences nearest a question vector, and the sentence vectors for
the cosines), the lexical search (BM25 and word postings over sentences and passages) and
the per-sentence data (text, article, passage, kinds of fact). `bot.index.SentenceIndex`
(FAISS + the word index of bot.words, saved on disk) is the embedded implementation; any
other store that satisfies `Store` can stand in for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from .corpus import Article
from .split import Passage, Sentence
from .tokens import TokenVectors


class DenseSearch(Protocol):
    """Nearest sentences by inner product of unit vectors."""

    @property
    def vectors(self) -> np.ndarray:
        """One unit vector per sentence (float32, sentences x dimension)."""
        ...

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Ids of (up to) the k sentences nearest `vector` (one vector, float32), best first."""
        ...


class Postings(Protocol):
    """Per word, the documents (sentences, passages) that hold it, with a weight in each."""

    @property
    def vocabulary(self) -> Mapping[str, int]:
        """Word -> column."""
        ...

    @property
    def size(self) -> int:
        """Number of documents."""
        ...

    def bm25(self, words: Sequence[str]) -> np.ndarray:
        """BM25 per document (a repeated word counts again)."""
        ...

    def count(self, words: Sequence[str], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Per document: how many of the distinct `words` it holds, and the sum of their weights."""
        ...

    def document_frequency(self) -> np.ndarray:
        """Per vocabulary column, how many documents hold the word."""
        ...

    def frequency(self, word: str) -> int:
        """How many documents hold the word (0: none)."""
        ...


class LexicalSearch(Protocol):
    """The word evidence: BM25 over sentences and passages, distinct content words per sentence."""

    @property
    def sentences(self) -> Postings: ...

    @property
    def passages(self) -> Postings: ...

    @property
    def term_counts(self) -> np.ndarray:
        """Distinct content words per sentence (float32)."""
        ...


class SentenceFacts(Protocol):
    """What kinds of fact each sentence holds (bot.kinds.sentence_facts)."""

    @property
    def has_number(self) -> np.ndarray:
        """Per sentence (bool)."""
        ...

    @property
    def has_time(self) -> np.ndarray:
        """Per sentence: a year, date, month or day (bool)."""
        ...

    @property
    def names(self) -> Postings:
        """Capitalised words, lower-cased -> the sentences that hold them."""
        ...

    @property
    def name_counts(self) -> np.ndarray:
        """Distinct names per sentence (float32)."""
        ...


class SentenceData(Protocol):
    """The sentences themselves: text, article, passage; and what the index was built with."""

    @property
    def articles(self) -> Mapping[str, Article]: ...

    @property
    def sentences(self) -> Sequence[Sentence]: ...

    @property
    def passages(self) -> Sequence[Passage]: ...

    @property
    def model(self) -> str:
        """The embedding model the vectors come from."""
        ...


class Store(DenseSearch, SentenceData, Protocol):
    """Everything answering reads: the dense search, the lexical search (`words`), the kinds of
    fact per sentence and the data."""

    @property
    def words(self) -> LexicalSearch: ...

    @property
    def facts(self) -> SentenceFacts: ...

    @property
    def tokens(self) -> TokenVectors | None:
        """Every sentence's token vectors (bot.tokens), where the model has a token projection."""
        ...
