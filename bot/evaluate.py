"""Evaluate answers against a question file: P@1, MRR and declines."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .answer import Answerer, clean_question

_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
    }
)


def fold(text: str) -> str:
    """Lower-case with curly quotes and dashes folded to ASCII, for answer matching."""
    return unicodedata.normalize("NFKC", text).translate(_FOLD).lower()


@dataclass(frozen=True)
class Item:
    question: str
    gold: tuple[str, ...]  # empty: the articles don't say
    doc: str | None = None
    line: int = 0  # in the evaluation file, for messages

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


LINE_FORM = (
    'write one JSON object per line: {"q": "the question", "any": ["an answer", ...]} or {"q": ..., "none": true}'
)


def _line_problem(row: object) -> str | None:
    """What is missing or wrong in a parsed evaluation line, or None."""
    if not isinstance(row, dict):
        return f"a JSON object is needed, got {type(row).__name__}"
    if "q" not in row:
        return 'no "q" (the question)'
    if row.get("none"):
        return None
    if "any" not in row:
        return 'no "any" (the answers, a list of strings) and no "none": true (the articles do not say)'
    gold = row["any"]
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        return f'"any" must be a list of answer strings, got {json.dumps(gold)[:40]}'
    return None


def read_items(path: Path) -> list[Item]:
    """Questions of an evaluation file; raises ValueError naming the bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}:{number}: not an evaluation line: not JSON ({exc.msg}, column {exc.colno}); {LINE_FORM}"
            ) from None
        problem = _line_problem(row)
        if problem:
            raise ValueError(f"{path}:{number}: not an evaluation line: {problem}; {LINE_FORM}")
        question = row["q"]
        gold = () if row.get("none") else row["any"]
        try:
            clean_question(question)
        except ValueError as exc:  # QuestionError: evaluating would stop half-way
            raise ValueError(f"{path}:{number}: unusable question: {exc}") from None
        items.append(Item(question, tuple(gold), row.get("doc"), number))
    if not items:
        raise ValueError(f'{path}: no questions; write one JSON object per line: {{"q": ..., "any": [...]}}')
    return items


@dataclass
class Report:
    """Counts and rates of one evaluation run."""

    answerable: int = 0
    unanswerable: int = 0
    right: int = 0  # answered, first citation holds a gold answer
    wrong: int = 0  # answered, first citation does not
    missed: int = 0  # answerable but declined
    declined: int = 0  # unanswerable and declined
    false_answers: int = 0  # unanswerable but answered
    ranked_first: int = 0  # best-ranked sentence holds the answer, whatever the decision
    reciprocal_ranks: float = 0.0
    failures: list[dict] = field(default_factory=list)

    @property
    def p_at_1(self) -> float:
        return self.right / self.answerable if self.answerable else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.answerable if self.answerable else 0.0

    @property
    def decline_rate(self) -> float:
        return self.declined / self.unanswerable if self.unanswerable else 0.0

    def as_dict(self) -> dict:
        return {
            "answerable": self.answerable,
            "p_at_1": round(self.p_at_1, 4),
            "mrr": round(self.mrr, 4),
            "ranking_p_at_1": round(self.ranked_first / self.answerable, 4) if self.answerable else 0.0,
            "unanswerable": self.unanswerable,
            "decline_rate": round(self.decline_rate, 4),
            "answered_right": self.right,
            "answered_wrong": self.wrong + self.false_answers,
            "declined": self.missed + self.declined,
            "declined_answerable": self.missed,
        }

    def lines(self) -> list[str]:
        d = self.as_dict()
        out = []
        if self.answerable:
            out.append(
                f"P@1 {d['p_at_1']:.3f} ({self.right}/{self.answerable})  MRR {d['mrr']:.3f}  "
                f"ranking P@1 {d['ranking_p_at_1']:.3f}"
            )
        if self.unanswerable:
            out.append(f"declined {self.declined}/{self.unanswerable} unanswerable ({d['decline_rate']:.1%})")
        out.append(
            f"answered and right {d['answered_right']}, answered and wrong {d['answered_wrong']}, "
            f"declined {d['declined']} (of which answerable {self.missed})"
        )
        return out


def evaluate(answerer: Answerer, items: Iterable[Item], depth: int = 10, batch: int = 64) -> Report:
    """Ask every question; P@1 needs an answer, MRR ranks the first `depth` sentences."""
    report = Report()
    items = list(items)
    # the batched path `ask` answers with: `batch` questions an encode, shortest first, on two cores
    ranked = (c for choices in answerer.rank_many([clean_question(i.question) for i in items], batch) for c in choices)
    for item, choice in zip(items, ranked, strict=True):
        texts = [fold(answerer.index.sentences[i].text) for i in choice.ids[:depth]]
        gold = [fold(g) for g in item.gold]
        hits = [any(g in t for g in gold) for t in texts]
        if item.answerable:
            report.answerable += 1
            rank = hits.index(True) + 1 if any(hits) else 0
            report.reciprocal_ranks += 1 / rank if rank else 0.0
            report.ranked_first += rank == 1
            if not choice.answered:
                report.missed += 1
            elif rank == 1:
                report.right += 1
            else:
                report.wrong += 1
            ok = choice.answered and rank == 1
        else:
            report.unanswerable += 1
            report.declined += not choice.answered
            report.false_answers += choice.answered
            ok = not choice.answered
        if not ok:
            report.failures.append(
                {
                    "q": item.question,
                    "gold": list(item.gold),
                    "answered": choice.answered,
                    "confidence": round(choice.confidence, 3),
                    "first": answerer.index.sentences[choice.ids[0]].text if choice.ids else None,
                }
            )
    return report
