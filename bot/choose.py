"""Choose the answer sentences among the candidates, or decline when the articles don't say."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .retrieve import Features

RANK_FIELDS = (
    "dense",
    "context",
    "lexical",
    "coverage",
    "kind",
    "holds",
    "holds_context",
    "rare_coverage",
    "rare_context",
    "focus_coverage",
    "previous_coverage",
    "soft_focus",
    "soft_coverage",
)
DECLINE_FIELDS = (
    "score",
    "dense",
    "rare_coverage",
    "holds",
    "typed",
    "margin",
    "weighted_coverage",
    "unheld",
    "soft_focus",
    "name_context",
    "soft_coverage",
    "known_names",
)


@dataclass(frozen=True)
class Weights:
    """How the evidence is combined into a sentence score and into the answer/decline decision.

    Fitted by `benchmarks/tune.py` on several genres and corpus sizes at once (Wikipedia and
    news questions, over many articles and over one); the same values serve every corpus.
    """

    dense: float = 1.0
    context: float = 0.25
    lexical: float = 0.0
    coverage: float = 0.02
    kind: float = 0.0
    holds: float = 0.221
    holds_context: float = 0.0
    rare_coverage: float = 0.0
    rare_context: float = 0.913
    focus_coverage: float = 0.001
    previous_coverage: float = 0.123
    soft_focus: float = 1.292
    soft_coverage: float = 0.784
    # decline model: logistic regression on features of the best sentence (DECLINE_FIELDS); its
    # boundary declines 50% of the pooled must-decline cases of the fitting data (tune.py)
    decline_bias: float = -7.312
    decline: tuple[float, ...] = (0.801, 0.286, 0.523, 0.93, -0.007, 1.916, 0.961, -0.715, 1.906, 0.466, 1.265, 0.821)
    # further citations: within this score distance of the best
    follow_margin: float = 0.06
    # used instead where the soft features are exact-word stand-ins (a model without token vectors)
    without_tokens: Weights | None = None

    def for_features(self, features: Features) -> Weights:
        """These weights, or those fitted without token vectors where the features have none."""
        if features.token_vectors or self.without_tokens is None:
            return self
        return self.without_tokens


# Fitted by `tune.py --without-tokens`: the soft features are then focus_coverage and rare_coverage.
WORD_WEIGHTS = Weights(
    context=0.8,
    lexical=0.04,
    coverage=0.166,
    kind=0.03,
    holds=0.226,
    rare_coverage=0.03,
    rare_context=0.542,
    focus_coverage=0.138,
    previous_coverage=0.126,
    soft_focus=0.0,
    soft_coverage=0.0,
    decline_bias=-5.045,
    decline=(0.517, 1.114, 0.808, 0.781, 0.133, 1.243, 1.545, -0.818, 1.002, 0.582, 0.808, 0.732),
)
DEFAULT_WEIGHTS = Weights(without_tokens=WORD_WEIGHTS)
# answer when the fitted probability that the best sentence answers is at least this (ANSWER_CONFIDENCE)
MIN_CONFIDENCE = 0.5


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
    w = w.for_features(features)
    total = w.dense * features.dense
    for name in RANK_FIELDS[1:]:
        weight = getattr(w, name)
        if weight:
            total = total + weight * getattr(features, name)
    return total


def decline_inputs(features: Features, best: int, best_score: float, runner_up: float) -> list[float]:
    """What the decline model sees of the best sentence (DECLINE_FIELDS, in order)."""
    return [
        best_score,
        float(features.dense[best]),
        float(features.rare_coverage[best]),
        float(features.holds[best]),
        float(features.typed),
        best_score - runner_up,
        float(features.weighted_coverage[best]),
        float(features.required and not features.holds_context[best]),  # asked for a number; none there
        float(features.soft_focus[best]),
        float(features.name_context[best]),
        float(features.soft_coverage[best]),
        features.known_names,
    ]


def confidence(inputs: list[float], w: Weights = DEFAULT_WEIGHTS) -> float:
    """Probability that the best sentence answers the question (fitted logistic model)."""
    z = w.decline_bias + sum(c * x for c, x in zip(w.decline, inputs, strict=True))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def choose(
    features: Features, limit: int = 3, w: Weights = DEFAULT_WEIGHTS, min_confidence: float = MIN_CONFIDENCE
) -> Choice:
    """Rank the candidates; keep the best and up to `limit - 1` close runners-up; answer when the
    confidence is at least `min_confidence`."""
    if len(features.ids) == 0:
        return Choice([], [], 0, False, 0.0)
    w = w.for_features(features)
    scores = score(features, w).tolist()  # ~100 candidates: Python's sort beats numpy's call overhead
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)  # stable: ties keep id order
    ids = features.ids.tolist()
    ranked = [scores[i] for i in order]
    runner_up = ranked[1] if len(ranked) > 1 else ranked[0] - 1.0
    conf = confidence(decline_inputs(features, order[0], ranked[0], runner_up), w)
    cited = sum(1 for s in ranked[:limit] if s >= ranked[0] - w.follow_margin)
    if features.required and not features.holds_context[order[0]]:
        conf = 0.0  # asked for a number, amount, ratio, age, duration or time, and the best passage holds none
    if features.foreign_names:
        conf = 0.0  # asked about well-known names that no article uses ("the president of Italy")
    return Choice(
        ids=[ids[i] for i in order], scores=ranked, cited=cited, answered=conf >= min_confidence, confidence=conf
    )
