"""Fit the token-vector projection of bot.tokens: a principal component analysis of MiniLM's
last-layer token vectors over Wikipedia and news text, written to bot/data/token-projection.npz.

Usage:
    python benchmarks/fit_token_projection.py [--dimension 64] CORPUS_DIR [CORPUS_DIR ...]

The projection depends on the model and on English text in general, not on a corpus: fit it once
on several genres (the README's quality section uses benchmarks/data/squad-dev/corpus,
benchmarks/data/wikinews-qa/corpus and corpus/), and every index built with the model uses it.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from bot.corpus import load_corpus
from bot.encoder import SentenceTransformerEncoder
from bot.index import embedding_text
from bot.split import split_articles
from bot.tokens import PROJECTION_FILE, sentence_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", type=Path, nargs="+")
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=3000, help="sentences sampled per corpus")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    encoder = SentenceTransformerEncoder()
    rng = random.Random(args.seed)
    rows = []
    for folder in args.corpora:
        corpus = load_corpus(folder)
        sentences, _ = split_articles(corpus.articles)
        titles = {a.doc: a.title for a in corpus.articles}
        sample = rng.sample(sentences, min(args.sentences, len(sentences)))
        _, views = encoder.encode_tokens([embedding_text(titles[s.doc], s.text) for s in sample])
        for s, view in zip(sample, views, strict=True):
            rows.append(view.vectors[sentence_rows(view, len(titles[s.doc]) + 2)])
        print(f"{folder}: {len(sample)} sentences")
    tokens = np.concatenate(rows).astype(np.float64)
    mean = tokens.mean(axis=0)
    _, values, components = np.linalg.svd(tokens - mean, full_matrices=False)
    kept = float((values[: args.dimension] ** 2).sum() / (values**2).sum())
    print(f"{len(tokens)} token vectors; {args.dimension} components keep {kept:.1%} of the variance")
    PROJECTION_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        PROJECTION_FILE,
        model=np.array(encoder.name),
        mean=mean.astype(np.float32),
        components=components[: args.dimension].T.astype(np.float32),
    )
    print(f"wrote {PROJECTION_FILE}")


if __name__ == "__main__":
    main()
