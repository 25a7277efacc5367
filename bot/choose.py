"""Choose the answer sentences among the candidates, or decline when the articles don't say."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .retrieve import Features

@dataclass(frozen=True)
class Weights:
    """How the evidence is combined into a sentence score and into the answer/decline decision.

    Ranking weights and the decline model are fitted on the squad-dev *dev* split by
    `benchmarks/tune.py`; the same values serve every corpus.
    """

    dense: float = 1.0
    context: float = 0.244
    lexical: float = 0.139
    lexical_context: float = 0.228
    coverage: float = 0.313
    kind: float = 0.106
    novelty: float = 0.282
    # decline model: logistic regression on features of the best sentence
    decline_bias: float = -13.021
    decline_dense: float = 9.526
    decline_coverage: float = 5.938
    decline_corpus_coverage: float = 0.833
    decline_bm25: float = 0.344
    decline_score: float = 3.786
    # further citations: within this score distance of the best
    follow_margin: float = 0.06


DEFAULT_WEIGHTS = Weights()


@dataclass(frozen=True)
class Choice:
    """All candidates ranked best first, how many of them to cite, and whether to answer."""

    ids: list[int]
    scores: list[float]
    cited: int
    answered: bool
    confidence: float


def score(features: Features, w: Weights = DEFAULT_WEIGHTS) -> np.ndarray:
    """One score per candidate sentence."""
    return (
        w.dense * features.dense
        + w.context * features.context
        + w.lexical * features.lexical
        + w.lexical_context * features.lexical_context
        + w.coverage * features.coverage
        + w.kind * features.kind
        + w.novelty * features.novelty
    )


def confidence(features: Features, best: int, best_score: float, w: Weights = DEFAULT_WEIGHTS) -> float:
    """Probability that the best sentence answers the question (fitted logistic model)."""
    z = (
        w.decline_bias
        + w.decline_score * best_score
        + w.decline_dense * float(features.dense[best])
        + w.decline_coverage * float(features.weighted_coverage[best])
        + w.decline_corpus_coverage * features.corpus_coverage
        + w.decline_bm25 * math.log1p(features.bm25_max)
    )
    return 1.0 / (1.0 + math.exp(-z))


def choose(features: Features, limit: int = 3, w: Weights = DEFAULT_WEIGHTS) -> Choice:
    """Rank the candidates; keep the best and up to `limit - 1` close runners-up."""
    if len(features.ids) == 0:
        return Choice([], [], 0, False, 0.0)
    scores = score(features, w).tolist()  # ~100 candidates: Python's sort beats numpy's call overhead
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)  # stable: ties keep id order
    ids = features.ids.tolist()
    ranked = [scores[i] for i in order]
    conf = confidence(features, order[0], ranked[0], w)
    cited = sum(1 for s in ranked[:limit] if s >= ranked[0] - w.follow_margin)
    return Choice(ids=[ids[i] for i in order], scores=ranked, cited=cited, answered=conf >= 0.5, confidence=conf)
