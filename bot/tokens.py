"""Word meaning in context: how much of what a question asks about a sentence says, in any words.

The encoder reads every word in its context before pooling a sentence into one vector; those
per-word (token) vectors can tell that "bring back" in a sentence says a question's "return",
where exact word matching sees nothing. Per candidate sentence, `TokenVectors.coverage` gives
the mean over the question's focus words (its content words that are not names: what is asked
about the people and things named), and over all its content words, of each word's best cosine
with one of the sentence's tokens.

Token vectors are kept small: centred and projected onto the first components of a principal
component analysis of MiniLM token vectors over Wikipedia and news text (`PROJECTION_FILE`,
fitted by `benchmarks/fit_token_projection.py`, the same for every corpus), then stored as int8
with one scale per token (66 bytes a token). Only the model the projection was fitted for gets
token vectors; with any other, ranking uses exact word coverage in their place (WORD_WEIGHTS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .words import STOPWORDS

PROJECTION_FILE = Path(__file__).with_name("data") / "token-projection.npz"
TOKENS_FILE = "tokens.npz"
SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"})


class TokenView(NamedTuple):
    """One text's token vectors from the encoder's last layer, with the tokens and their character spans."""

    vectors: np.ndarray  # (tokens, model dimension), float32
    tokens: list[str]
    offsets: list[tuple[int, int]]


@dataclass(frozen=True)
class Projection:
    """Centre and project token vectors onto fitted principal components (see the module docstring)."""

    model: str
    mean: np.ndarray  # (model dimension,)
    components: np.ndarray  # (model dimension, dimension)

    @property
    def dimension(self) -> int:
        return int(self.components.shape[1])

    def unit(self, vectors: np.ndarray) -> np.ndarray:
        """Projected and L2-normalised float32 rows."""
        projected = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components
        return projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-9)


@lru_cache(maxsize=1)
def _load_projection(path: Path) -> Projection:
    with np.load(path) as data:
        return Projection(str(data["model"]), data["mean"].astype(np.float32), data["components"].astype(np.float32))


def projection_for(model: str, model_dimension: int) -> Projection | None:
    """The fitted projection, if it was fitted for this model (else token vectors are not used)."""
    if not PROJECTION_FILE.is_file():
        return None
    found = _load_projection(PROJECTION_FILE)
    if found.model != model or found.mean.shape[0] != model_dimension:
        return None
    return found


def sentence_rows(view: TokenView, start: int) -> list[int]:
    """The rows of a sentence's own tokens: not special tokens, and from character `start` on
    (sentences are encoded after their article's title, which is not theirs to cover with)."""
    return [
        i
        for i, (t, (a, b)) in enumerate(zip(view.tokens, view.offsets, strict=True))
        if t not in SPECIAL and b > a and a >= start
    ]


class QuestionTokens(NamedTuple):
    """A question's content words as projected token vectors, and which of them are its focus."""

    vectors: np.ndarray  # (words, dimension), unit rows
    focus: np.ndarray  # (words,) bool: not a name (all True for a question of names only)


def question_rows(view: TokenView, text: str) -> tuple[list[int], list[bool]]:
    """The rows of a question's content words (whole words of letters or digits, not stopwords)
    and, per row, whether it is a focus word: not capitalised in the question after its first
    word (names, which the rest of the ranking matches). A question of names only ("Where is
    Lake Bled?") has them all as focus."""
    rows, focus = [], []
    for i, (token, (a, b)) in enumerate(zip(view.tokens, view.offsets, strict=True)):
        if token in SPECIAL or b <= a or token.startswith("##") or not token.isalnum():
            continue
        if token.lower() in STOPWORDS:
            continue
        rows.append(i)
        focus.append(not (a > 0 and text[a].isupper()))
    return rows, focus if any(focus) else [True] * len(rows)


def question_tokens(view: TokenView, text: str, projection: Projection) -> QuestionTokens:
    """The question's content words, projected for matching against sentences' token vectors."""
    rows, focus = question_rows(view, text)
    return QuestionTokens(projection.unit(view.vectors[rows]), np.array(focus, dtype=bool))


def quantise(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one float16 scale per row."""
    scales = np.maximum(np.abs(units).max(axis=1), 1e-9) / 127.0
    codes = np.round(units / scales[:, None]).astype(np.int8)
    return codes, scales.astype(np.float16)


@dataclass(frozen=True)
class TokenVectors:
    """Every sentence's projected token vectors, int8 with a scale per token; sentence i owns
    rows starts[i]:starts[i + 1]."""

    codes: np.ndarray  # (tokens, dimension) int8
    scales: np.ndarray  # (tokens,) float16
    starts: np.ndarray  # (sentences + 1,) int64

    def __post_init__(self) -> None:
        if len(self.codes) != len(self.scales) or int(self.starts[-1]) != len(self.codes):
            raise ValueError(
                f"token vectors do not match: {len(self.codes)} codes, {len(self.scales)} scales, rows end at {int(self.starts[-1])}"
            )

    @property
    def sentences(self) -> int:
        return len(self.starts) - 1

    @classmethod
    def of(cls, per_sentence: Sequence[tuple[np.ndarray, np.ndarray]], dimension: int) -> TokenVectors:
        """From (codes, scales) per sentence, in sentence order."""
        lengths = np.array([len(c) for c, _ in per_sentence], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        codes = np.concatenate([c for c, _ in per_sentence]) if len(per_sentence) else np.zeros((0, dimension), np.int8)
        scales = np.concatenate([s for _, s in per_sentence]) if len(per_sentence) else np.zeros(0, np.float16)
        return cls(codes.reshape(-1, dimension).astype(np.int8), scales.astype(np.float16), starts)

    def sentence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return self.codes[a:b], self.scales[a:b]

    def subset(self, keep: Sequence[int]) -> TokenVectors:
        """Only the sentences `keep`, in that order."""
        return TokenVectors.of([self.sentence(i) for i in keep], self.codes.shape[1])

    def coverage(self, question: QuestionTokens, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sentence in `ids`: how much of the question's focus, and of all its content words,
        the sentence says, each the mean over those words of the best cosine with one of its
        tokens (1.0 for a question with no such words)."""
        wanted = np.asarray(ids, dtype=np.int64)
        if len(question.vectors) == 0:
            ones = np.ones(len(wanted), dtype=np.float32)
            return ones, ones
        first, last = self.starts[wanted], self.starts[wanted + 1]
        lengths = last - first
        best = np.zeros((len(question.vectors), len(wanted)), dtype=np.float32)
        has = lengths > 0
        if has.any():
            first, lengths = first[has], lengths[has]
            # every candidate's token rows in one gather, then the best per candidate and question word
            rows = np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
            # (tokens, dimension) @ (dimension, words), row-major: faster here than the product
            # the other way round, whose converted operand is a transposed copy
            sims = np.take(self.codes, rows, axis=0).astype(np.float32) @ question.vectors.T
            sims *= np.take(self.scales, rows).astype(np.float32)[:, None]
            best[:, has] = np.maximum.reduceat(sims, np.cumsum(lengths) - lengths, axis=0).T
        return best[question.focus].mean(axis=0), best.mean(axis=0)

    def save(self, path: Path) -> None:
        with path.open("wb") as f:
            np.savez(f, codes=self.codes, scales=self.scales, starts=self.starts)

    @classmethod
    def load(cls, path: Path) -> TokenVectors:
        with np.load(path) as data:
            return cls(data["codes"], data["scales"], data["starts"])


def pack(codes: np.ndarray, scales: np.ndarray) -> bytes:
    """One sentence's token vectors as bytes (the database's `tokens` column): codes, then scales."""
    return (
        np.ascontiguousarray(codes, dtype=np.int8).tobytes() + np.ascontiguousarray(scales, dtype=np.float16).tobytes()
    )


def unpack(data: bytes, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `pack`."""
    count, rest = divmod(len(data), dimension + 2)
    if rest:
        raise ValueError(f"{len(data)} bytes are not whole tokens of {dimension} dimensions")
    codes = np.frombuffer(data, dtype=np.int8, count=count * dimension).reshape(count, dimension)
    scales = np.frombuffer(data, dtype=np.float16, offset=count * dimension, count=count)
    return codes, scales
