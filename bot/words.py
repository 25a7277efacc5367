"""The word index: BM25 postings of every sentence and passage (built with bm25s) and what kind
of facts each sentence holds (a number, a date, names), worked out with the index.

It is saved beside the FAISS file (`words.npz`), so a serving process neither imports bm25s
(and scipy) nor reads every sentence of the corpus before its first answers.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kinds import sentence_facts

# bm25s's STOPWORDS_EN (a test keeps them in step), copied so that serving does not import
# bm25s, plus question words that say nothing about the answer
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
) | {
    "did",
    "does",
    "do",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "many",
    "much",
    "according",
    "name",
    "called",
    "s",
}
_TOKEN = re.compile(r"(?u)\b\w+\b")
# the Unicode blocks of combining diacritical marks (accents, as NFKD spells them apart)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_PLACEHOLDER = "\u2400"  # stands in for a sentence without content words; never a question's word


_per_thread = threading.local()


def _stemmer():
    """This thread's Snowball stemmer (PyStemmer: an instance must not be used by two threads)."""
    stemmer = getattr(_per_thread, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _per_thread.stemmer = Stemmer.Stemmer("english")
    return stemmer


def fold(text: str) -> str:
    """The text without accents and with compatibility forms spelled plainly ("São Paulo" ->
    "Sao Paulo", "ﬁnal" -> "final"), so that a word typed without them matches (Unicode NFKD)."""
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def terms(text: str) -> list[str]:
    """Lower-cased, accent-folded, stemmed content words of a text (stop words dropped)."""
    words = [w for w in _TOKEN.findall(fold(text).lower()) if w not in STOPWORDS]
    return _stemmer().stemWords(words)


_LOWER_WORD = re.compile(r"\b[a-z]+\b")
# a word is a name in the articles when at least this share of the sentences that use it write
# it with a capital inside the sentence ("Kim", "Putin"; not "shuttle" of "Space Shuttle Atlantis")
NAME_SHARE = 0.9
_LETTERS = re.compile(r"[^\W\d_]{2,}")


def plain_case(question: str) -> str:
    """The question in lower case where its capitals say nothing: typed in capitals ("WHERE DID
    ..."), or with every word capitalised ("Where Did ..."); else as it is."""
    words = _LETTERS.findall(question)[1:]
    if len(words) < 2 or any(w[0].islower() for w in words):
        return question
    return question.lower()


def lower_case_words(question: str) -> list[str]:
    """The words that may be names in a question typed in lower case (but perhaps its first
    letter, as phones type it): all but its first word and the stop words. None for a question
    with a capital after its first letter: it is read as typed."""
    if not question[1:].islower():  # a capital after the first letter (or no letter at all)
        return []
    return [m.group(0) for m in _LOWER_WORD.finditer(question) if m.start() > 0 and m.group(0) not in STOPWORDS]


def truecase(
    question: str, counts: Callable[[list[str], list[str]], tuple[Mapping[str, int], Mapping[str, int]]]
) -> str:
    """A question typed in lower case, with the words the articles write with a capital (their
    names: "kim" -> "Kim"; NAME_SHARE) capitalised, so that it is read as the same question
    typed with capitals. `counts(words, stems)` gives, per word (lower_case_words), how many
    sentences write it with a capital inside the sentence, and per stemmed word (terms), how
    many use it at all."""
    words = lower_case_words(question)
    if not words:
        return question
    stems = {w: next(iter(terms(w)), w) for w in words}
    capitalised, used = counts(words, sorted(set(stems.values())))
    names = {w for w in words if capitalised.get(w, 0) >= NAME_SHARE * max(used.get(stems[w], 0), 1)}
    if not names:
        return question
    return _LOWER_WORD.sub(
        lambda m: m.group(0).capitalize() if m.start() > 0 and m.group(0) in names else m.group(0), question
    )


@dataclass(frozen=True)
class Postings:
    """Per word, the documents that hold it and its BM25 weight in each (bm25s's CSC matrix)."""

    vocabulary: dict[str, int]  # word -> column
    indptr: np.ndarray  # column j holds documents indices[indptr[j]:indptr[j + 1]]
    indices: np.ndarray
    weights: np.ndarray  # the BM25 weight of the word in each of those documents
    size: int  # number of documents

    @classmethod
    def of_sets(cls, word_sets: Sequence[frozenset[str]]) -> Postings:
        """Unweighted postings (every weight 1.0) of documents given as sets of words."""
        vocabulary: dict[str, int] = {}
        documents: list[list[int]] = []
        for doc, words in enumerate(word_sets):
            for word in sorted(words):
                j = vocabulary.setdefault(word, len(vocabulary))
                if j == len(documents):
                    documents.append([])
                documents[j].append(doc)
        indptr = np.zeros(len(documents) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in documents], out=indptr[1:])
        indices = np.array([doc for d in documents for doc in d], dtype=np.int32)
        return cls(vocabulary, indptr, indices, np.ones(len(indices), dtype=np.float32), len(word_sets))

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> Postings:
        """BM25 (bm25s's defaults) over documents given as lists of words."""
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG
        bm25 = bm25s.BM25()
        # an empty list would make bm25s fail; the placeholder never matches a question
        bm25.index([t or [_PLACEHOLDER] for t in token_lists], show_progress=False)
        matrix = bm25.scores
        columns = len(matrix["indptr"]) - 1  # bm25s adds an empty word to the vocabulary with no column
        vocabulary = {word: j for word, j in bm25.vocab_dict.items() if j < columns}
        return cls(vocabulary, matrix["indptr"], matrix["indices"], matrix["data"], int(matrix["num_docs"]))

    def column(self, word: str) -> slice | None:
        j = self.vocabulary.get(word)
        return None if j is None else slice(self.indptr[j], self.indptr[j + 1])

    def frequency(self, word: str) -> int:
        """How many documents hold the word (0: none)."""
        j = self.vocabulary.get(word)
        return 0 if j is None else int(self.indptr[j + 1] - self.indptr[j])

    def bm25(self, words: Sequence[str]) -> np.ndarray:
        """BM25 per document (a repeated word counts again, as in bm25s's own get_scores)."""
        found = [c for c in map(self.column, words) if c is not None]
        if not found:
            return np.zeros(self.size, dtype=np.float32)
        rows = np.concatenate([self.indices[c] for c in found])
        return np.bincount(rows, np.concatenate([self.weights[c] for c in found]), self.size).astype(np.float32)

    def count(self, words: Sequence[str], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Per document: how many of the distinct `words` it holds, and the sum of their weights."""
        found = [(c, w) for c, w in zip(map(self.column, words), weights, strict=True) if c is not None]
        if not found:
            return np.zeros(self.size), np.zeros(self.size)
        rows = np.concatenate([self.indices[c] for c, _ in found])
        each = np.repeat([w for _, w in found], [c.stop - c.start for c, _ in found])
        return np.bincount(rows, minlength=self.size).astype(np.float64), np.bincount(rows, each, self.size)

    def document_frequency(self) -> np.ndarray:
        """Per vocabulary column, how many documents hold the word."""
        return np.diff(self.indptr)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The postings as named arrays (for np.savez); `from_arrays` reads them back."""
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            f"{prefix}_words": np.array(words, dtype=str),
            f"{prefix}_indptr": self.indptr,
            f"{prefix}_indices": self.indices,
            f"{prefix}_weights": self.weights,
            f"{prefix}_size": np.array(self.size),
        }

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> Postings:
        words = arrays[f"{prefix}_words"].tolist()
        indptr = arrays[f"{prefix}_indptr"]
        if len(indptr) != len(words) + 1:
            raise ValueError(f"{prefix}: {len(words)} words but {len(indptr) - 1} columns")
        return cls(
            dict(zip(words, range(len(words)), strict=True)),
            indptr,
            arrays[f"{prefix}_indices"],
            arrays[f"{prefix}_weights"],
            int(arrays[f"{prefix}_size"]),
        )


@dataclass(frozen=True)
class WordIndex:
    """BM25 over the sentences and over the passages, each sentence's count of distinct words, and
    the kinds of fact each sentence holds (kinds.sentence_facts)."""

    sentences: Postings
    passages: Postings
    term_counts: np.ndarray  # distinct content words per sentence (float32)
    has_number: np.ndarray  # per sentence (bool)
    has_time: np.ndarray  # per sentence: a year, date, month or day (bool)
    names: Postings  # capitalised words, lower-cased -> the sentences that hold them
    name_counts: np.ndarray  # distinct names per sentence (float32)

    @classmethod
    def build(cls, sentences: Sequence[str], passages: Sequence[tuple[int, int]]) -> WordIndex:
        """From the sentence texts and each passage's (first, last) sentence."""
        sentence_terms = [terms(s) for s in sentences]
        passage_terms = [[t for i in range(first, last + 1) for t in sentence_terms[i]] for first, last in passages]
        facts = [sentence_facts(s) for s in sentences]
        return cls(
            Postings.build(sentence_terms),
            Postings.build(passage_terms),
            np.array([len(set(t)) for t in sentence_terms], dtype=np.float32),
            np.array([f[0] for f in facts], dtype=bool),
            np.array([f[1] for f in facts], dtype=bool),
            Postings.of_sets([f[2] for f in facts]),
            np.array([len(f[2]) for f in facts], dtype=np.float32),
        )

    def save(self, path: Path) -> None:
        """Write the index as one .npz file (no pickles)."""
        arrays = {
            "term_counts": self.term_counts,
            "has_number": self.has_number,
            "has_time": self.has_time,
            "name_counts": self.name_counts,
            **self.sentences.arrays("sentence"),
            **self.passages.arrays("passage"),
            **self.names.arrays("names"),
        }
        with path.open("wb") as handle:
            # numpy's stub has an allow_pickle keyword, so mypy fears a name in `arrays` could be it
            np.savez(handle, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path, sentences: int, passages: int) -> WordIndex:
        """Read a saved index; raises ValueError when it is not one of `sentences` and `passages`."""
        with np.load(path, allow_pickle=False) as arrays:
            try:
                index = cls(
                    Postings.from_arrays(arrays, "sentence"),
                    Postings.from_arrays(arrays, "passage"),
                    arrays["term_counts"],
                    arrays["has_number"],
                    arrays["has_time"],
                    Postings.from_arrays(arrays, "names"),
                    arrays["name_counts"],
                )
            except KeyError as exc:
                raise ValueError(f"the word index has no {exc}") from None
        per_sentence = {len(a) for a in (index.term_counts, index.has_number, index.has_time, index.name_counts)} | {
            index.sentences.size,
            index.names.size,
        }
        if per_sentence != {sentences} or index.passages.size != passages:
            raise ValueError(
                f"the word index is of {index.sentences.size} sentences and {index.passages.size} passages, "
                f"not {sentences} and {passages}"
            )
        return index
