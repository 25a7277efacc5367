"""Fit the ranking weights and the decline model on the squad-dev *dev* split.

Usage:
    python benchmarks/tune.py --corpus ../shared/benchmarks/squad-dev/corpus \
        --questions ../shared/benchmarks/squad-dev/questions-dev.jsonl --index-dir /tmp/squad-index

Ranking: coordinate ascent on P@1 over the candidates' features.
Decline: the held-out-article protocol (index all articles but some, ask the held-out
articles' questions; the right answer is "not found"), repeated over several random splits;
a logistic regression on features of the best-ranked sentence separates "the article is
indexed" from "it is not". Prints the fitted values to paste into `bot/choose.py:Weights`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np

from bot.answer import Answerer, clean_question
from bot.choose import DEFAULT_WEIGHTS, score
from bot.encoder import SentenceTransformerEncoder
from bot.evaluate import fold, read_items
from bot.index import SentenceIndex
from bot.retrieve import Retriever

RANK_FIELDS = ("dense", "context", "lexical", "lexical_context", "coverage", "novelty", "kind")


def candidate_table(retriever: Retriever, index: SentenceIndex, items, vectors):
    """Per question: feature matrix of its candidates, gold hit per candidate, and raw features."""
    table = []
    for item, vector in zip(items, vectors):
        q = clean_question(item.question)
        f = retriever.features(vector, q)
        texts = [index.sentences[i].text for i in f.ids]
        X = np.stack([f.dense, f.context, f.lexical, f.lexical_context, f.coverage, f.novelty, f.kind], axis=1)
        gold = [fold(g) for g in item.gold]
        hits = np.array([any(g in fold(t) for g in gold) for t in texts])
        table.append((X, hits, f))
    return table


def p_at_1(table, w: np.ndarray) -> float:
    right = 0
    for X, hits, _ in table:
        if len(X):
            right += bool(hits[int(np.argmax(X @ w))])
    return right / len(table)


def coordinate_ascent(table, start: np.ndarray, rounds: int = 4) -> np.ndarray:
    w = start.copy()
    best = p_at_1(table, w)
    steps = [0.2, 0.1, 0.05, 0.02]
    for r in range(rounds):
        step = steps[min(r, len(steps) - 1)]
        for j in range(1, len(w)):  # dense weight fixed at 1 (scale)
            for delta in (step, -step):
                trial = w.copy()
                trial[j] = max(0.0, trial[j] + delta)
                score = p_at_1(table, trial)
                if score > best:
                    best, w = score, trial
    return w


def pairwise_start(table, fallback: np.ndarray) -> np.ndarray:
    """A pairwise logistic ranker (gold sentence above each other candidate), scaled to dense=1."""
    from sklearn.linear_model import LogisticRegression

    diffs = []
    for X, hits, _ in table:
        if hits.any() and not hits.all():
            gold = X[hits].max(axis=0)
            diffs.append(gold - X[~hits])
    if not diffs:
        return fallback
    D = np.concatenate(diffs)
    D = np.concatenate([D, -D])
    labels = np.concatenate([np.ones(len(D) // 2), np.zeros(len(D) // 2)])
    w = LogisticRegression(fit_intercept=False, C=1.0, max_iter=2000).fit(D, labels).coef_[0]
    if w[0] <= 0:
        return fallback
    w = np.maximum(w / w[0], 0.0)
    print(f"pairwise logistic start: P@1 {p_at_1(table, w):.4f}")
    return w if p_at_1(table, w) > p_at_1(table, fallback) else fallback


def decline_features(f, best: int, best_score: float) -> list[float]:
    return [
        best_score,
        float(f.dense[best]),
        float(f.weighted_coverage[best]),
        float(f.corpus_coverage),
        math.log1p(f.bm25_max),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--cache", action="store_true", help="keep question vectors beside the file")
    parser.add_argument("--splits", type=int, default=6, help="random held-out splits")
    parser.add_argument("--hold-out", type=float, default=0.25, help="share of articles held out")
    parser.add_argument("--target-decline", type=float, default=0.88,
                        help="share of held-out questions the fitted model should decline")
    args = parser.parse_args()

    index = SentenceIndex.load(args.index_dir)
    encoder = SentenceTransformerEncoder(index.model)
    items = read_items(args.questions)
    cache = args.questions.with_suffix(".vectors.npy") if args.cache else None
    if cache and cache.exists():
        vectors = np.load(cache)
    else:
        vectors = encoder.encode([clean_question(i.question) for i in items])
        if cache:
            np.save(cache, vectors)
    retriever = Retriever(index)
    table = candidate_table(retriever, index, items, vectors)
    start = np.array([getattr(DEFAULT_WEIGHTS, f) for f in RANK_FIELDS], dtype=np.float32)
    print(f"ranking P@1 with current weights: {p_at_1(table, start):.4f}")
    w = coordinate_ascent(table, pairwise_start(table, start))
    print(f"ranking P@1 after tuning:        {p_at_1(table, w):.4f}")
    tuned = dataclasses.replace(DEFAULT_WEIGHTS, **{f: round(float(v), 3) for f, v in zip(RANK_FIELDS, w)})

    from sklearn.linear_model import LogisticRegression

    X, y = [], []
    docs = sorted(index.articles)
    for split in range(args.splits):
        held = set(random.Random(split).sample(docs, round(len(docs) * args.hold_out)))
        sub = Answerer(index.without(held), encoder, weights=tuned)
        for item, vector in zip(items, vectors):
            q = clean_question(item.question)
            f = sub.retriever.features(vector, q)
            scores = score(f, tuned)
            best = int(np.argmax(scores))
            X.append(decline_features(f, best, float(scores[best])))
            y.append(item.doc not in held)
    X, y = np.array(X), np.array(y)
    model = LogisticRegression(C=10.0, max_iter=1000, class_weight="balanced").fit(X, y)
    coef = model.coef_[0]
    margin = X @ coef
    # place the boundary so that the target share of unanswerable questions is declined
    bias = -float(np.quantile(margin[~y], args.target_decline))
    predicted = margin + bias >= 0
    print(f"held-out protocol (pooled over {args.splits} splits): declined {np.mean(~predicted[~y]):.3f} "
          f"of unanswerable, answered {np.mean(predicted[y]):.3f} of answerable")
    names = ("decline_score", "decline_dense", "decline_coverage", "decline_corpus_coverage", "decline_bm25")
    fitted = {"decline_bias": round(bias, 3), **{n: round(float(c), 3) for n, c in zip(names, coef)}}
    print(json.dumps({**{f: round(float(v), 3) for f, v in zip(RANK_FIELDS, w)}, **fitted}))


if __name__ == "__main__":
    main()
