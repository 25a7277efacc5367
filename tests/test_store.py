"""The store seam: the answering path reads the corpus only through bot.store's protocols, so a
second store (numpy brute force, in memory) answers exactly as FAISS + the word index do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.answer import Answerer
from bot.corpus import Article
from bot.index import SentenceIndex
from bot.split import Passage, Sentence
from bot.store import Postings, Store
from bot.tokens import TokenVectors

from .conftest import ROOT
from .fakes import FakeEncoder


class MatrixPostings:
    """Postings as a dense documents x words matrix of weights (0: the word is not there)."""

    def __init__(self, vocabulary: Mapping[str, int], matrix: np.ndarray) -> None:
        self.vocabulary = dict(vocabulary)
        self.matrix = matrix
        self.size = matrix.shape[0]

    @classmethod
    def copy_of(cls, postings: Postings) -> MatrixPostings:
        matrix = np.zeros((postings.size, len(postings.vocabulary)), dtype=np.float32)
        for word, j in postings.vocabulary.items():
            found = postings.count([word], [1.0])[0] > 0
            matrix[found, j] = postings.bm25([word])[found]
        return cls(postings.vocabulary, matrix)

    def _columns(self, words: Sequence[str]) -> list[int]:
        return [self.vocabulary[w] for w in words if w in self.vocabulary]

    def bm25(self, words: Sequence[str]) -> np.ndarray:
        total = np.zeros(self.size)
        for j in self._columns(words):
            total += self.matrix[:, j]
        return total.astype(np.float32)

    def count(self, words: Sequence[str], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        matched, weighted = np.zeros(self.size), np.zeros(self.size)
        for word, weight in zip(words, weights, strict=True):
            if word in self.vocabulary:
                present = self.matrix[:, self.vocabulary[word]] != 0
                matched += present
                weighted += present * weight
        return matched, weighted

    def document_frequency(self) -> np.ndarray:
        return np.count_nonzero(self.matrix, axis=0)

    def frequency(self, word: str) -> int:
        return int(np.count_nonzero(self.matrix[:, self.vocabulary[word]])) if word in self.vocabulary else 0


@dataclass
class MemoryWords:
    sentences: MatrixPostings
    passages: MatrixPostings
    term_counts: np.ndarray


@dataclass
class MemoryFacts:
    has_number: np.ndarray
    has_time: np.ndarray
    names: MatrixPostings
    name_counts: np.ndarray


@dataclass
class MemoryStore:
    """A store held in plain numpy arrays; nearest sentences by brute force."""

    articles: dict[str, Article]
    sentences: list[Sentence]
    passages: list[Passage]
    vectors: np.ndarray
    words: MemoryWords
    facts: MemoryFacts
    model: str
    tokens: TokenVectors | None = None
    searched: list[int] = field(default_factory=list)  # k of each search, to see it was used

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        self.searched.append(k)
        return np.argsort(-(self.vectors @ vector), kind="stable")[:k]

    @classmethod
    def copy_of(cls, index: SentenceIndex) -> MemoryStore:
        words, facts = index.words, index.facts
        return cls(
            dict(index.articles),
            list(index.sentences),
            list(index.passages),
            index.vectors.copy(),
            MemoryWords(
                MatrixPostings.copy_of(words.sentences),
                MatrixPostings.copy_of(words.passages),
                words.term_counts.copy(),
            ),
            MemoryFacts(
                facts.has_number.copy(),
                facts.has_time.copy(),
                MatrixPostings.copy_of(facts.names),
                facts.name_counts.copy(),
            ),
            index.model,
            index.tokens,
        )


QUESTIONS = (
    "How many visitors are expected?",
    "Who cut the ribbon?",
    "When does the festival end?",
    "Where was the ribbon cut?",
    "Who won the 2018 World Cup?",
)


def test_an_in_memory_store_answers_exactly_as_the_faiss_index(fake_service):
    index = fake_service.answerer.index
    memory = MemoryStore.copy_of(index)
    store: Store = memory  # satisfies the protocol (checked by the type checker)
    from_faiss = Answerer(index, FakeEncoder())
    from_memory = Answerer(store, FakeEncoder())
    for question in [*QUESTIONS, *(q.lower() for q in QUESTIONS)]:  # lower case: names read through the seam
        assert from_memory.answer(question) == from_faiss.answer(question)
    assert memory.searched  # the nearest-vector search went through the seam
    assert from_memory.passage(0) == from_faiss.passage(0)


def test_the_answering_path_imports_no_faiss():
    code = "import sys, bot.answer, bot.choose, bot.retrieve; print('faiss' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
