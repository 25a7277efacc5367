"""Choose the answer sentences among the candidates, or decline when the articles don't say."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .retrieve import Features

_YEAR_OR_DATE = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+(?:century|centuries)|"
    r"jan(?:uary)?|feb(?:ruary)?|march|april|may|june|july|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|yesterday|today|tomorrow|decade|era|period)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozens?|several|half|percent)\b",
    re.IGNORECASE,
)
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")


def question_kind(question: str) -> str:
    """The kind of answer a question asks for: number, time, person, place or other."""
    q = question.lower()
    if re.search(r"\bhow (?:many|much|long|far|old|large|big|tall|high)\b|\bwhat (?:percentage|number|amount)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (?:year|date|day|month|century|time)\b|\bin which year\b", q):
        return "time"
    if re.search(r"\bwho(?:m|se)?\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhat (?:country|city|place|region|state)\b", q):
        return "place"
    if re.search(r"\b(?:name|named|called|title)\b", q):
        return "name"
    return "other"


@lru_cache(maxsize=65536)
def _facts(sentence: str) -> tuple[bool, bool, frozenset[str]]:
    """What a sentence holds: a number, a date or time, and which names (lower-cased)."""
    names = frozenset(m.group(0).lower() for m in _PROPER.finditer(sentence))
    return bool(_NUMBER.search(sentence)), bool(_YEAR_OR_DATE.search(sentence)), names


@lru_cache(maxsize=1024)
def _asked(question: str) -> frozenset[str]:
    return frozenset(w.lower() for w in re.findall(r"\w+", question))


def kind_match(kind: str, sentence: str, question: str) -> float:
    """1.0 when the sentence holds the kind of thing the question asks for and it is new."""
    has_number, has_time, names = _facts(sentence)
    if kind == "number":
        return 1.0 if has_number else 0.0
    if kind == "time":
        return 1.0 if has_time else 0.0
    if kind in ("person", "place", "name"):
        return 1.0 if names - _asked(question) else 0.0
    return 0.0


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


def score(features: Features, texts: list[str], question: str, w: Weights = DEFAULT_WEIGHTS) -> np.ndarray:
    """One score per candidate sentence."""
    kind = question_kind(question)
    kinds = np.array([kind_match(kind, t, question) for t in texts], dtype=np.float32)
    return (
        w.dense * features.dense
        + w.context * features.context
        + w.lexical * features.lexical
        + w.lexical_context * features.lexical_context
        + w.coverage * features.coverage
        + w.kind * kinds
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


def choose(
    features: Features, texts: list[str], question: str, limit: int = 3, w: Weights = DEFAULT_WEIGHTS
) -> Choice:
    """Rank the candidates; keep the best and up to `limit - 1` close runners-up."""
    if len(features.ids) == 0:
        return Choice([], [], 0, False, 0.0)
    scores = score(features, texts, question, w)
    order = np.argsort(-scores, kind="stable")
    best = int(order[0])
    conf = confidence(features, best, float(scores[best]), w)
    cited = sum(1 for i in order[:limit] if scores[i] >= scores[best] - w.follow_margin)
    return Choice(
        ids=[int(features.ids[i]) for i in order],
        scores=[float(scores[i]) for i in order],
        cited=cited,
        answered=conf >= 0.5,
        confidence=conf,
    )
