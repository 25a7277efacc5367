"""FAISS flat (exact) against HNSW on synthetic sentence-like vectors: build, query, recall, memory.

    .venv/bin/python benchmarks/faiss_scaling.py --sizes 10000 100000 200000

With --seed-vectors (the vectors.npy of a built index) each vector blends two real sentence
embeddings plus a little noise, so the data has the shape of real sentence vectors; without it,
points around random topic centres (a much harder, near-uniform case for HNSW). Queries are
fresh points made the same way. Ratios: HNSW against flat at the same size; recall@k of HNSW against
flat's exact top k (k = 64, as the bot asks). Caches are flushed before each query (the bot searches
right after an encode has streamed the model through them); --warm leaves them warm.
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bot.index import FLAT_LIMIT, make_graph  # noqa: E402  (where and how the bot switches to HNSW)


@dataclass
class Row:
    """Figures for one corpus size."""

    size: int
    flat_build_s: float
    hnsw_build_s: float
    flat_query_ms: float
    hnsw_query_ms: float
    hnsw_recall: float
    flat_mb: float
    hnsw_mb: float
    bot_uses: str


def vectors(n: int, dim: int, topics: int, rng: np.random.Generator, seed: np.ndarray | None = None) -> np.ndarray:
    """Synthetic unit vectors: blends of two real sentence vectors plus a little noise when `seed`
    (real embeddings) is given, else points around random topic centres."""
    if seed is not None:
        a, b = rng.integers(0, len(seed), n), rng.integers(0, len(seed), n)
        mix = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
        out = mix * seed[a] + (1 - mix) * seed[b] + 0.02 * rng.standard_normal((n, seed.shape[1])).astype(np.float32)
    else:
        centres = rng.standard_normal((topics, dim)).astype(np.float32)
        out = centres[rng.integers(0, topics, n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def index_mb(index: faiss.Index) -> float:
    return len(faiss.serialize_index(index)) / 1e6


def measure(
    size: int, dim: int, queries: int, rng: np.random.Generator, seed: np.ndarray | None, k: int, cold: bool
) -> Row:
    data = vectors(size, dim, max(size // 200, 10), rng, seed)
    probe = vectors(queries, dim, max(size // 200, 10), rng, seed)
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    flat_build = time.perf_counter() - started
    started = time.perf_counter()
    hnsw = make_graph(data)
    hnsw_build = time.perf_counter() - started

    flush = np.ones(64 << 18, dtype=np.float32)  # 64 MB, about what one question's encode streams through

    def per_query(index: faiss.Index) -> tuple[float, np.ndarray]:
        times, found = [], []
        for q in probe:
            if cold:  # as in the bot: the search runs right after the encoder has filled the caches
                flush.sum()
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), k)
            times.append(time.perf_counter() - t0)
            found.append(ids[0])
        return statistics.median(times) * 1000, np.array(found)

    flat_ms, exact = per_query(flat)
    hnsw_ms, approx = per_query(hnsw)
    recall = float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact, strict=True)]))
    kind = "flat" if size <= FLAT_LIMIT else "hnsw"
    return Row(size, flat_build, hnsw_build, flat_ms, hnsw_ms, recall, index_mb(flat), index_mb(hnsw), kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=64, help="neighbours per query (the bot asks for 64)")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="leave the caches warm between queries (by default they are flushed, as the encode does)",
    )
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (the bot's machine: 1-2)")
    parser.add_argument(
        "--seed-vectors", type=Path, help="vectors.npy of a built index: synthesise from real sentence embeddings"
    )
    args = parser.parse_args()
    if any(s < 100 for s in args.sizes):
        raise ValueError(f"sizes must be at least 100, got {args.sizes}")
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    seed = np.load(args.seed_vectors).astype(np.float32) if args.seed_vectors else None
    if seed is not None and (seed.ndim != 2 or seed.shape[1] != args.dim):
        raise ValueError(f"--seed-vectors must be an (n, {args.dim}) array, got shape {seed.shape}")
    rows = [measure(size, args.dim, args.queries, rng, seed, args.k, not args.warm) for size in args.sizes]
    print(
        "| sentences | bot uses | flat build | HNSW build | flat query p50 | HNSW query p50 | HNSW/flat query | HNSW recall@k | flat size | HNSW size |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.size:,} | {r.bot_uses} | {r.flat_build_s:.2f} s | {r.hnsw_build_s:.1f} s | {r.flat_query_ms:.2f} ms "
            f"| {r.hnsw_query_ms:.2f} ms | {r.hnsw_query_ms / r.flat_query_ms:.2f}x | {r.hnsw_recall:.3f} "
            f"| {r.flat_mb:.0f} MB | {r.hnsw_mb:.0f} MB |"
        )
    source = str(args.seed_vectors) if args.seed_vectors else "random topic centres"
    print(
        json.dumps(
            {
                "threads": args.threads,
                "dim": args.dim,
                "k": args.k,
                "cold": not args.warm,
                "vectors": source,
                "rows": [asdict(r) for r in rows],
            }
        )
    )


if __name__ == "__main__":
    main()
