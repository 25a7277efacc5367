"""Answer quality on every evaluation suite, in one table.

Usage:
    python benchmarks/quality.py [--data benchmarks/data] [--work /tmp/citebot-quality] [--quick] [--typed]

Suites: the owner's questions about the bundled article (over the article alone and over
`corpus/`), wikinews-qa dev (news, with questions no article answers), squad-dev dev and test
(Wikipedia), and the held-out-article protocol on squad-dev test (12 of 48 articles left out of
the index; their questions must be declined). `--quick` leaves out the squad-dev suites (their
index takes a few minutes to build on 2 cores). Indexes are kept under --work and reused.
`--typed` prints a second table: the dev questions typed as people type them in a chat.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from bot.answer import Answerer
from bot.evaluate import Report, evaluate, read_items
from bot.service import QAService
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def answerer(corpus: Path, work: Path) -> Answerer:
    service = QAService(Settings(_env_file=None, corpus_dir=corpus, index_dir=work))
    service.open()
    return service.answerer


def held_out(answerer: Answerer, items, count: int, seed: int) -> Report:
    held = set(random.Random(seed).sample(sorted(answerer.index.articles), count))
    sub = Answerer(
        answerer.index.without(held),
        answerer.encoder,
        answerer.max_citations,
        answerer.weights,
        min_confidence=answerer.min_confidence,
    )
    marked = [type(i)(i.question, () if i.doc in held else i.gold, i.doc) for i in items]
    return evaluate(sub, marked)


# the same questions as people type them in a chat
TYPINGS = {
    "as written": lambda q: q,
    "first letter only (as a phone types it)": lambda q: q[0] + q[1:].lower(),
    "lower case, no question mark": lambda q: q.lower().rstrip("?"),
    "in capitals": str.upper,
    '"Can you tell me ..."': lambda q: "Can you tell me " + q[0].lower() + q[1:],
    '"Thanks! According to the article, ..."': lambda q: "Thanks! According to the article, " + q[0].lower() + q[1:],
    'after a sentence ("I just read the news. ...")': lambda q: "I just read the news. " + q,
    '"hi bot, ..."': lambda q: "hi bot, " + q[0].lower() + q[1:],
    'then "pls", ", thanks :)" or "Thanks! \U0001f642"': lambda q: (
        q.rstrip("?") + " pls",
        q.rstrip("?") + ", thanks :)",
        q + " Thanks! \U0001f642",
    )[len(q) % 3],
}


def typed(answerers: dict[str, tuple[Answerer, list]]) -> list[str]:
    """Per way of typing, each suite's P@1 (ranking P@1) and declines."""
    names = list(answerers)
    lines = ["| typed | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for typing, change in TYPINGS.items():
        cells = []
        for answerer, items in answerers.values():
            report = evaluate(answerer, [type(i)(change(i.question), i.gold, i.doc) for i in items])
            d = report.as_dict()
            cell = f"{d['p_at_1']:.3f} ({d['ranking_p_at_1']:.3f})"
            cells.append(cell + (f", {report.declined}/{report.unanswerable}" if report.unanswerable else ""))
        lines.append(f"| {typing} | " + " | ".join(cells) + " |")
    return lines


def row(name: str, report: Report) -> str:
    d = report.as_dict()
    p = f"{d['p_at_1']:.3f} ({report.right}/{report.answerable})" if report.answerable else "-"
    ranking = f"{d['ranking_p_at_1']:.3f}" if report.answerable else "-"
    declined = f"{d['decline_rate']:.3f} ({report.declined}/{report.unanswerable})" if report.unanswerable else "-"
    return f"| {name} | {p} | {ranking} | {declined} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "citebot-quality")
    parser.add_argument("--quick", action="store_true", help="leave out the squad-dev suites")
    parser.add_argument("--typed", action="store_true", help="also the dev questions as typed in a chat (TYPINGS)")
    args = parser.parse_args()
    data, work = args.data, args.work
    lines = ["| suite | P@1 (answered and right) | ranking P@1 | unanswerable declined |", "|---|---|---|---|"]

    seed = read_items(data / "seed-dev.jsonl")
    with tempfile.TemporaryDirectory() as alone:
        (Path(alone) / "kim-putin-vladivostok.txt").write_bytes(
            (ROOT / "corpus" / "kim-putin-vladivostok.txt").read_bytes()
        )
        lines.append(row("seed-dev, the bundled article alone", evaluate(answerer(Path(alone), work / "alone"), seed)))
    bundled = answerer(ROOT / "corpus", work / "corpus")
    lines.append(row("seed-dev, over `corpus/`", evaluate(bundled, seed)))
    news = data / "wikinews-qa"
    news_answerer, news_dev = answerer(news / "corpus", work / "wikinews"), read_items(news / "questions-dev.jsonl")
    lines.append(row("wikinews-qa dev (30 articles)", evaluate(news_answerer, news_dev)))
    dev_suites = {"seed-dev": (bundled, seed), "wikinews-qa dev": (news_answerer, news_dev)}
    if not args.quick:
        squad = data / "squad-dev"
        squad_answerer = answerer(squad / "corpus", work / "squad")
        test = read_items(squad / "questions-test.jsonl")
        squad_dev = read_items(squad / "questions-dev.jsonl")
        dev_suites["squad-dev dev"] = (squad_answerer, squad_dev)
        lines.append(row("squad-dev dev (48 articles)", evaluate(squad_answerer, squad_dev)))
        lines.append(row("squad-dev test", evaluate(squad_answerer, test)))
        for s in (0, 1):
            lines.append(row(f"squad-dev test, 12 articles held out (seed {s})", held_out(squad_answerer, test, 12, s)))
    if args.typed:
        lines += ["", "P@1 (ranking P@1), declined, of the dev questions as typed in a chat:", "", *typed(dev_suites)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
