"""A tiny deterministic encoder for fast tests: hashed bag of stemmed words."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from bot.encoder import normalise
from bot.retrieve import terms


class FakeEncoder:
    """Satisfies bot.encoder.Encoder: texts sharing words get similar vectors."""

    name = "fake-bag-of-words"
    dimension = 64

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes, for tests about batching

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in terms(text) or ["\u2400"]:
                slot = int(hashlib.md5(term.encode()).hexdigest(), 16) % self.dimension
                out[row, slot] += 1.0
        return normalise(out)
