"""The one answering path shared by the CLI, the tests and the Telegram bot."""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import NamedTuple, cast

import numpy as np

from . import answerable
from .choose import DEFAULT_WEIGHTS, MIN_CONFIDENCE, Choice, Weights, choose
from .encoder import Encoder, TokenEncoder
from .helper import HelperThread, Pending
from .retrieve import Retriever, Scorer, Words
from .store import SentenceData, Store
from .tokens import QuestionTokens, question_tokens
from .words import plain_case

MAX_QUESTION_CHARS = 1000
# Up to this many questions have their words scored during the encode (Answerer); a bigger
# batch scores them one question at a time after its encode, so it never holds all their
# per-sentence arrays at once (a few arrays of corpus size per question).
OVERLAP_LIMIT = 32
# Questions per encode in bulk answering (answer_batches), taken shortest first.
BULK_BATCH = 64
# The smallest encode the last batch of a bulk run is cut into (chunk_bounds).
TAIL = 8
# Batches queued on the helper for encoding ahead of the one being ranked, in a run of several.
ENCODES_AHEAD = 2
_LETTER = re.compile(r"[^\W\d_]")
NOT_FOUND = "The articles don't say."


def chunk_bounds(count: int, batch: int) -> list[tuple[int, int]]:
    """Where a run of `count` questions is cut into encodes of at most `batch`.

    In a run of several, the last `batch` are cut into halves, quarters, ... (down to TAIL):
    only the last encode's ranking overlaps no encode, so the smaller it is, the sooner the run
    ends, and the few small encodes cost little.
    """
    bounds, start = [], 0
    while count - start > batch:
        bounds.append((start, start + batch))
        start += batch
    rest = count - start
    while bounds and rest >= 2 * TAIL:
        part = rest // 2
        bounds.append((start, start + part))
        start, rest = start + part, rest - part
    if rest:
        bounds.append((start, count))
    return bounds


class Encoded(NamedTuple):
    """A batch of questions as encoded: their vectors and, where token vectors are used, each
    question's content words as token vectors (bot.tokens; None where not used)."""

    vectors: np.ndarray
    tokens: list[QuestionTokens | None]


class QuestionError(ValueError):
    """A question that cannot be answered as given; the message tells the user what to do."""


@dataclass(frozen=True)
class Citation:
    """A cited sentence with its position: article file, title, paragraph and sentence (1-based)."""

    n: int
    doc: str
    title: str
    text: str
    paragraph: int
    sentence: int
    score: float
    url: str | None = None
    sentence_id: int = -1
    source: str | None = None  # the agency or publication, the dateline's place and the date, as a
    # press citation: "Bloomberg, Vladivostok, 2019-04-25" (by whom, where and when it was filed)


@dataclass(frozen=True)
class Answer:
    """The answer to one question: cited sentences best first, or a decline."""

    question: str
    answered: bool
    answer: str
    citations: tuple[Citation, ...] = ()
    confidence: float = 0.0
    related: tuple[Citation, ...] = field(default=(), repr=False)  # ranked candidates when declined

    def to_dict(self) -> dict:
        """The JSON contract of `ask --json` (extra keys: confidence)."""
        return {
            "question": self.question,
            "answered": self.answered,
            "answer": self.answer,
            "citations": [{k: v for k, v in asdict(c).items() if k in _CITATION_KEYS} for c in self.citations],
            "confidence": round(self.confidence, 4),
        }


_CITATION_KEYS = ("doc", "title", "text", "paragraph", "sentence", "score", "url", "source")


# how a question may end; one that ends otherwise was typed without its question mark
_ENDS = frozenset("?.!\uff1f")


def clean_question(text: str) -> str:
    """The question with control characters removed and white space folded; raises QuestionError."""
    if not isinstance(text, str):
        raise QuestionError(f"A question must be text, got {type(text).__name__}.")
    kept = (
        text
        if text.isprintable()
        else "".join(  # printable: no Cc, Cf, Zl or Zp character in it
            # format characters (soft hyphen, zero-width space/joiners) sit inside words: drop them
            "" if unicodedata.category(ch) == "Cf" else " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
            for ch in text
        )
    )
    question = " ".join(kept.split())  # white space folded (str.split and re's \s agree on what it is)
    if not question:
        raise QuestionError("Please send a question in words, for example: Where did the summit take place?")
    if not _LETTER.search(question):
        raise QuestionError("I can only answer questions written in words; please ask in a sentence.")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"That question is {len(question)} characters long; please keep it under {MAX_QUESTION_CHARS} characters."
        )
    if not answerable.in_english(question):  # the encoder and the rules read English only
        raise QuestionError("I can only read questions in English; please ask in English.")
    if question[-1] not in _ENDS:  # asked without its question mark: read as the same question with it
        question += "?"
    return question


class Answerer:
    """Answers questions from one index with one encoder.

    With a `helper` thread, the word evidence of up to OVERLAP_LIMIT questions (BM25, word
    counts) is worked out there while this thread encodes them: onnxruntime and torch release
    the GIL while the model runs, so on a machine with a second core that work costs no time.
    """

    def __init__(
        self,
        index: Store | SentenceData,
        encoder: Encoder,
        max_citations: int = 3,
        weights: Weights = DEFAULT_WEIGHTS,
        helper: HelperThread | None = None,
        retriever: Scorer | None = None,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> None:
        """`retriever` scores the candidates (default: `Retriever(index)`, over the whole index in memory);
        a question is answered when the confidence in its best sentence is at least `min_confidence`."""
        if index.model != encoder.name:
            raise ValueError(f"index built with {index.model!r} but encoder is {encoder.name!r}")
        # without a retriever of its own, `index` is a whole Store (the embedded SentenceIndex)
        retriever = retriever or Retriever(cast("Store", index))
        if retriever.dimension != encoder.dimension:
            raise ValueError(
                f"index vectors have dimension {retriever.dimension} but {encoder.name!r} "
                f"encodes {encoder.dimension}: run `python -m bot index` to rebuild the index"
            )
        if not 1 <= max_citations <= 10:
            raise ValueError(f"max_citations must be between 1 and 10, got {max_citations}")
        if not 0.0 < min_confidence < 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1 (both excluded), got {min_confidence}")
        self.index = index
        self.encoder = encoder
        self.max_citations = max_citations
        self.min_confidence = min_confidence
        self.weights = weights
        self.helper = helper
        self.retriever = retriever
        projection = retriever.projection
        # questions are encoded with their token vectors when the index has token vectors too
        self._token_encoder = encoder if projection is not None and isinstance(encoder, TokenEncoder) else None

    def answer(self, question: str) -> Answer:
        """Answer one question (raises QuestionError for unusable input)."""
        return self.answer_many([question])[0]

    def answer_many(self, questions: Sequence[str]) -> list[Answer]:
        """Answer several questions with batched encodes (raises QuestionError on the first bad one)."""
        cleaned = [clean_question(q) for q in questions]
        return [answer for batch in self.answer_batches(cleaned) for answer in batch]

    def answer_batches(self, questions: Sequence[str], batch: int = BULK_BATCH) -> Iterator[list[Answer]]:
        """Answer cleaned questions, yielding their answers in order: all at once for more than
        `batch` of them, else as one list.

        Up to `batch` questions are one encode, with the word evidence of up to OVERLAP_LIMIT of
        them scored on the helper thread during it. More are taken shortest first, `batch` to an
        encode (questions of like length share one, so little of it is padding, as in one encode
        of them all): the helper encodes batch after batch without waiting, while this thread
        scores the words of the batch being encoded and ranks the one before, so bulk answering
        uses two cores.
        """
        return (
            [self._answer(q, c) for q, c in zip(chunk, choices, strict=True)]
            for chunk, choices in self._ranked_batches(list(questions), batch)
        )

    def rank_many(self, questions: Sequence[str], batch: int = BULK_BATCH) -> Iterator[list[Choice]]:
        """The ranked candidates (`rank`) of cleaned questions, batch by batch, as `answer_batches`."""
        return (choices for _, choices in self._ranked_batches(list(questions), batch))

    def _ranked_batches(self, questions: list[str], batch: int) -> Iterator[tuple[list[str], list[Choice]]]:
        """(questions, their choices) batch by batch; a question typed in lower case is ranked as
        if typed with capitals (Scorer.truecase), and answered under the words it was asked in."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        read = [self.retriever.truecase(plain_case(answerable.direct(q))) for q in questions]
        if len(questions) <= batch:
            done = 0
            for chunk, ranked_chunk in self._pipeline(read, batch):
                yield questions[done : done + len(chunk)], ranked_chunk
                done += len(chunk)
            return
        order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
        ranked = [c for _, choices in self._pipeline([read[i] for i in order], batch) for c in choices]
        choices: list[Choice] = [ranked[0]] * len(questions)
        for position, i in enumerate(order):
            choices[i] = ranked[position]
        yield questions, choices

    def _pipeline(self, questions: list[str], batch: int) -> Iterator[tuple[list[str], list[Choice]]]:
        chunks = [questions[a:b] for a, b in chunk_bounds(len(questions), batch)]
        if not chunks:
            return
        if self.helper is None:
            for chunk in chunks:
                yield chunk, self._rank_encoded(chunk, self.encode(chunk))
            return
        if len(chunks) == 1 and len(chunks[0]) <= OVERLAP_LIMIT:
            pending_words = self.helper.submit(partial(self._words, chunks[0]))
            encoded = self.encode(chunks[0])
            yield chunks[0], self._rank_encoded(chunks[0], encoded, pending_words.result())
            return
        # the helper encodes the next two batches while this thread ranks one, so it never waits here
        encodes = deque(self.helper.submit(partial(self.encode, c)) for c in chunks[:ENCODES_AHEAD])
        for n, chunk in enumerate(chunks):
            words = self._words_while(chunk, encodes[0])
            encoded = encodes.popleft().result()
            if n + ENCODES_AHEAD < len(chunks):
                encodes.append(self.helper.submit(partial(self.encode, chunks[n + ENCODES_AHEAD])))
            yield chunk, self._rank_encoded(chunk, encoded, words)

    def encode(self, questions: list[str]) -> Encoded:
        """Encode cleaned questions: vectors, and their words' token vectors where those are used."""
        if self._token_encoder is None or self.retriever.projection is None:
            return Encoded(self.encoder.encode(questions), [None] * len(questions))
        projection = self.retriever.projection
        vectors, views = self._token_encoder.encode_tokens(questions)
        tokens: list[QuestionTokens | None] = [
            question_tokens(view, q, projection) for q, view in zip(questions, views, strict=True)
        ]
        return Encoded(vectors, tokens)

    def _words_while(self, questions: list[str], encoding: Pending[Encoded]) -> list[Words | None]:
        """The word evidence of the first questions, scored while their batch is still being encoded
        (at most OVERLAP_LIMIT of them, so their per-sentence arrays stay few)."""
        words: list[Words | None] = []
        while len(words) < min(len(questions), OVERLAP_LIMIT) and not encoding.done():
            words.append(self.retriever.words(questions[len(words)]))
        return words

    def _rank_encoded(
        self, questions: list[str], encoded: Encoded, words: list[Words | None] | None = None
    ) -> list[Choice]:
        """Rank each question; `words` holds the word evidence of the first questions, if scored already."""
        known = words or []
        return [
            self.rank(q, v, known[n] if n < len(known) else None, f)
            for n, (q, v, f) in enumerate(zip(questions, encoded.vectors, encoded.tokens, strict=True))
        ]

    def _words(self, questions: list[str]) -> list[Words | None]:
        return [self.retriever.words(q) for q in questions]

    def rank(
        self, question: str, vector: np.ndarray, words: Words | None = None, tokens: QuestionTokens | None = None
    ) -> Choice:
        """All candidate sentences ranked, with the answer/decline decision (`tokens`: see Encoded)."""
        features = self.retriever.features(vector, question, words, tokens)
        return choose(features, self.max_citations, self.weights, self.min_confidence)

    def answer_vector(
        self, question: str, vector: np.ndarray, words: Words | None = None, tokens: QuestionTokens | None = None
    ) -> Answer:
        """Answer a cleaned question whose vector (and tokens, see Encoded) is already encoded."""
        return self._answer(question, self.rank(question, vector, words, tokens))

    def _answer(self, question: str, choice: Choice) -> Answer:
        if choice.answered:
            cited = self._citations(choice, choice.cited)
            text = " ".join(c.text for c in cited)
            return Answer(question, True, text, cited, choice.confidence)
        related = self._citations(choice, self.max_citations)
        return Answer(question, False, NOT_FOUND, (), choice.confidence, related)

    def _citations(self, choice: Choice, count: int) -> tuple[Citation, ...]:
        cited = []
        for n, (i, s) in enumerate(zip(choice.ids[:count], choice.scores[:count], strict=True), start=1):
            sentence = self.index.sentences[i]
            article = self.index.articles[sentence.doc]
            cited.append(
                Citation(
                    n,
                    sentence.doc,
                    article.title,
                    sentence.text,
                    sentence.paragraph,
                    sentence.sentence,
                    round(s, 4),
                    article.url,
                    i,
                    ", ".join(x for x in (article.agency, article.place, article.published) if x) or None,
                )
            )
        return tuple(cited)

    def passage(self, sentence_id: int) -> list[str]:
        """The sentences of the passage around a sentence, for "show the source"."""
        if not 0 <= sentence_id < len(self.index.sentences):
            raise ValueError(f"no sentence {sentence_id} in this index")
        passage = self.index.passages[self.index.sentences[sentence_id].passage]
        return [self.index.sentences[i].text for i in range(passage.first, passage.last + 1)]
