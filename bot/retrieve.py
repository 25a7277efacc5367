"""Retrieve candidate sentences for a question: dense (nearest vectors) and lexical (BM25) evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import answerable
from .kinds import asked_words, question_kind
from .store import Store
from .tokens import Projection, QuestionTokens, TokenVectors, projection_for
from .words import STOPWORDS, terms, truecase

__all__ = ["CANDIDATES", "STOPWORDS", "Features", "Retriever", "Scorer", "Words", "terms"]

# a question's candidates: its k nearest vectors and BM25's k best, k = 56. Measured against 64:
# the same answers on seed-dev, wikinews-qa dev and squad-dev dev (squad-dev test +2), and about
# 0.13 ms less a question (holds and token matching cost per candidate); 48 lost a news ranking
CANDIDATES = 56


@dataclass(frozen=True)
class Features:
    """Evidence for the candidate sentences `ids` (one array element per candidate)."""

    ids: np.ndarray  # sentence indices into the index
    dense: np.ndarray  # cosine of question and sentence
    context: np.ndarray  # cosine of question and the sentence's passage (mean of its vectors)
    lexical: np.ndarray  # BM25 of the sentence, divided by the best BM25 for this question
    coverage: np.ndarray  # share of the question's content words found in the sentence
    weighted_coverage: np.ndarray  # the same, each word weighted by its rarity (IDF)
    corpus_coverage: float  # IDF-weighted share of the question's words found anywhere at all
    kind: np.ndarray  # 1.0 where the sentence holds the kind of thing asked for (number, time, name)
    bm25_max: float  # raw best sentence BM25 (how much lexical support exists at all)
    query_terms: int  # content words in the question
    # does the sentence hold what was asked (bot.answerable): corpus-independent evidence
    holds: np.ndarray  # 1.0 where the sentence holds a fact of the asked kind the question does not give
    holds_context: np.ndarray  # 1.0 where its passage does
    rare_coverage: np.ndarray  # share of the question's words in the sentence, weighted by general rarity
    rare_context: np.ndarray  # the same over the sentence's passage
    focus_coverage: np.ndarray  # the same for the question's words that are not names
    name_context: np.ndarray  # share of the question's names (by rarity) its passage holds (1.0: none asked)
    previous_coverage: np.ndarray  # rare_coverage of the sentence before it in its paragraph (0 for a first)
    # how much of the question's focus, and of all its content words, the sentence says in any
    # words (bot.tokens); focus_coverage and rare_coverage in their place where token vectors are not used
    soft_focus: np.ndarray
    soft_coverage: np.ndarray
    known_names: float  # share of the question's names (by rarity) that some article uses (1.0: none asked)
    foreign_names: bool  # no article uses any of the question's names, and some are common words (Retriever.words)
    token_vectors: bool  # whether the soft features come from token vectors
    typed: bool  # the question asks for a kind of fact (number, date, person, ...)
    required: bool  # ... one that an answer must hold (a number, amount, ratio, age, duration or time)


@dataclass(frozen=True)
class Words:
    """What the question's words alone say about every sentence (one array element per sentence).

    Needs no question vector, so `Answerer` works it out while the encoder embeds the question;
    `Retriever.features` then only picks out the candidates' elements.
    """

    terms: list[str]  # the question's content words, stemmed, in question order
    best: np.ndarray  # BM25's k best sentences (all tied at the k-th kept)
    lexical: np.ndarray  # BM25 of the sentence / the best sentence BM25
    coverage: np.ndarray  # share of the distinct content words the sentence holds
    weighted_coverage: np.ndarray  # the same, each word weighted by its IDF
    corpus_coverage: float  # IDF-weighted share of the content words found anywhere
    bm25_max: float  # raw best sentence BM25
    kind: np.ndarray  # 1.0 where the sentence holds the kind of thing asked for (see Retriever.kind)
    ask: answerable.Ask
    rare_coverage: np.ndarray  # per sentence, as in Features
    rare_context: np.ndarray  # per sentence
    focus_coverage: np.ndarray  # per sentence
    name_context: np.ndarray  # per sentence
    previous_coverage: np.ndarray  # per sentence
    known_names: float  # as in Features
    foreign_names: bool  # as in Features
    # whether each of BM25's best, and its passage, holds the asked kind (Retriever.held), worked
    # out here so that only the dense search's other candidates are left for `features`
    held: dict[int, tuple[bool, bool]]


def checks_kind(ask: answerable.Ask) -> bool:
    """Whether candidates are checked for the asked kind of fact (else every one counts as holding it)."""
    return ask.typed or ask.kind == "reason"


class Scorer(Protocol):
    """What `Answerer` ranks with: the evidence for a question's candidate sentences.
    `Retriever` scores an index held in memory; bot.serve_pg.DatabaseRetriever one in PostgreSQL."""

    @property
    def dimension(self) -> int:
        """Of the question vectors it takes."""
        ...

    @property
    def projection(self) -> Projection | None:
        """Of the question's token vectors, when the sentences have token vectors (bot.tokens)."""
        ...

    def words(self, question: str) -> Words | None:
        """What the question's words alone give (worked out while the question is encoded), if anything."""
        ...

    def truecase(self, question: str) -> str:
        """The question as if typed with capitals, where it was typed in lower case (words.truecase)."""
        ...

    def features(
        self,
        question_vector: np.ndarray,
        question: str,
        words: Words | None = None,
        tokens: QuestionTokens | None = None,
    ) -> Features:
        """Evidence for the candidate sentences; `words` is `self.words(question)` when the caller has it,
        `tokens` the question's words as token vectors (bot.answer.Encoded) where those are used."""
        ...


class Retriever:
    """Scores every sentence of an index against a question vector and text.

    Everything that depends only on the corpus is worked out once here, so a question costs
    one nearest-vector search and a few array operations over the postings of its own words. The word
    part (`words`) needs no vector: `Answerer` runs it while the question is being encoded.
    """

    def __init__(self, index: Store, candidates: int = CANDIDATES) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.index = index
        self.k = min(candidates, len(index.sentences))  # the k nearest vectors and BM25's k best
        self.vectors = index.vectors
        self.passage_of = np.array([s.passage for s in index.sentences], dtype=np.int64)
        passage_vectors = np.zeros((len(index.passages), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(passage_vectors, self.passage_of, self.vectors)
        norms = np.linalg.norm(passage_vectors, axis=1, keepdims=True)
        self.passage_vectors = passage_vectors / np.maximum(norms, 1e-12)
        n = len(index.sentences)
        words = index.words
        self.word_index = words
        self.facts = facts = index.facts  # the kinds of fact per sentence
        # per sentence, for the question kinds that need no per-question work (see kind)
        self._kind_marks = {
            "number": facts.has_number.astype(np.float32),
            "time": facts.has_time.astype(np.float32),
            "other": np.zeros(n, dtype=np.float32),
        }
        sentences = index.sentences
        self.follows = np.array(  # the sentence before it is in the same paragraph
            [
                i > 0 and (s.doc, s.paragraph) == (sentences[i - 1].doc, sentences[i - 1].paragraph)
                for i, s in enumerate(sentences)
            ],
            dtype=bool,
        )
        self._facts: dict[int, answerable.LazyFacts] = {}  # per sentence, worked out when first a candidate
        df = words.sentences.document_frequency().astype(np.float64)
        self._idf = np.log(1.0 + (n + 1) / (df + 0.5))
        self._unseen_idf = float(np.log(1.0 + (n + 1) / 0.5))
        self.tokens: TokenVectors | None = index.tokens
        self._projection = projection_for(index.model, self.dimension) if self.tokens is not None else None

    @property
    def dimension(self) -> int:
        """Of the sentence vectors (and so of the question vectors it takes)."""
        return int(self.vectors.shape[1])

    @property
    def projection(self) -> Projection | None:
        return self._projection

    def idf(self, term: str) -> float:
        """Inverse sentence frequency; a word the corpus never uses counts as the rarest."""
        j = self.word_index.sentences.vocabulary.get(term)
        return self._unseen_idf if j is None else float(self._idf[j])

    def words(self, question: str) -> Words:
        """The evidence of the question's words for every sentence (thread-safe: reads only)."""
        word_index = self.word_index
        sentences = word_index.sentences
        q_terms = terms(question)
        bm = sentences.bm25(q_terms)
        best = self.best(bm)
        bm_max = float(bm.max())
        q_set = sorted(set(q_terms))
        idf = [self.idf(t) for t in q_set]
        matched, weighted = sentences.count(q_set, idf)
        total = sum(idf)
        found = sum(w for t, w in zip(q_set, idf, strict=True) if self.in_corpus(t))
        ask = answerable.parse(question)
        rare_sentence, rare_passage, focus, names = self._rare(ask)
        named = ask.rare_terms(focus=False)
        used = [r for t, r in named if self.in_corpus(t)]
        return Words(
            held={i: self.held(ask, i) for i in best.tolist()} if checks_kind(ask) else {},
            known_names=sum(used) / sum(r for _, r in named) if named else 1.0,
            # names, none used by any article, and some of them common English words (a country,
            # not a misspelt name): the question is about something the articles do not cover
            foreign_names=bool(named) and not used and any(r <= answerable.WELL_KNOWN for _, r in named),
            ask=ask,
            rare_coverage=rare_sentence,
            rare_context=rare_passage[self.passage_of],
            focus_coverage=focus,
            name_context=names[self.passage_of],
            previous_coverage=np.where(self.follows, np.roll(rare_sentence, 1), 0.0).astype(np.float32),
            terms=q_terms,
            best=best,
            lexical=bm / bm_max if bm_max > 0 else bm,
            coverage=(matched / max(len(q_set), 1)).astype(np.float32),
            weighted_coverage=(weighted / (total or 1.0)).astype(np.float32),
            corpus_coverage=found / total if total else 0.0,
            bm25_max=bm_max,
            kind=self.kind(question),
        )

    def best(self, bm: np.ndarray) -> np.ndarray:
        """BM25's k best among the sentences that share a word with the question (ties at the k-th kept)."""
        best = np.flatnonzero(bm)
        if len(best) > self.k:
            best = best[bm[best] >= np.partition(bm[best], len(best) - self.k)[len(best) - self.k]]
        return best

    def truecase(self, question: str) -> str:
        """The question as if typed with capitals, where it was typed in lower case (words.truecase)."""
        names, sentences = self.facts.names, self.word_index.sentences
        return truecase(
            question,
            lambda words, stems: ({w: names.frequency(w) for w in words}, {t: sentences.frequency(t) for t in stems}),
        )

    def in_corpus(self, term: str) -> bool:
        """Whether any sentence uses the word."""
        return term in self.word_index.sentences.vocabulary

    def _rare(self, ask: answerable.Ask) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rarity-weighted coverage of the question's words per sentence and per passage, per
        sentence of its words that are not names, and per passage of its names."""
        total = sum(ask.rarity) or 1.0
        _, per_sentence = self.word_index.sentences.count(ask.terms, ask.rarity)
        _, per_passage = self.word_index.passages.count(ask.terms, ask.rarity)
        focus = ask.rare_terms(focus=True)
        _, per_focus = self.word_index.sentences.count([t for t, _ in focus], [r for _, r in focus])
        focus_total = sum(r for _, r in focus) or 1.0
        named = ask.rare_terms(focus=False)
        if named:
            _, per_name = self.word_index.passages.count([t for t, _ in named], [r for _, r in named])
            names = (per_name / sum(r for _, r in named)).astype(np.float32)
        else:
            names = np.ones(per_passage.shape, dtype=np.float32)
        return (
            (per_sentence / total).astype(np.float32),
            (per_passage / total).astype(np.float32),
            (per_focus / focus_total).astype(np.float32),
            names,
        )

    def holds(
        self, ask: answerable.Ask, ids: np.ndarray, known: dict[int, tuple[bool, bool]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: does the sentence, and does its passage, hold a fact of the asked kind
        (`known`: `held` of some of them, worked out before)."""
        if not checks_kind(ask):
            ones = np.ones(len(ids), dtype=np.float32)
            return ones, ones
        known = known or {}
        pairs = [known.get(i) or self.held(ask, i) for i in ids.tolist()]
        return np.array([own for own, _ in pairs], dtype=np.float32), np.array([c for _, c in pairs], dtype=np.float32)

    def held(self, ask: answerable.Ask, i: int) -> tuple[bool, bool]:
        """Whether sentence `i`, and whether its passage, holds a fact of the asked kind."""
        if answerable.holds(ask, self.sentence_facts(i)):
            return True, True
        passage = self.index.passages[int(self.passage_of[i])]
        mates = range(passage.first, passage.last + 1)
        return False, any(answerable.holds(ask, self.sentence_facts(j)) for j in mates if j != i)

    def sentence_facts(self, i: int) -> answerable.Facts | answerable.LazyFacts:
        """The facts sentence `i` holds (each worked out when first read, then kept)."""
        f = self._facts.get(i)
        if f is None:
            f = self._facts[i] = answerable.LazyFacts(self.index.sentences[i].text)
        return f

    def kind(self, question: str) -> np.ndarray:
        """Per sentence, 1.0 where it holds the kind of thing the question asks for (kinds.question_kind):
        a number, a date, or for person, place and name questions a name the question does not use."""
        kind = question_kind(question)
        if kind in self._kind_marks:
            return self._kind_marks[kind]  # shared: callers only read it
        asked = sorted(asked_words(question))
        used, _ = self.facts.names.count(asked, [1.0] * len(asked))  # how many of a sentence's names it uses
        return (self.facts.name_counts > used).astype(np.float32)

    def features(
        self,
        question_vector: np.ndarray,
        question: str,
        words: Words | None = None,
        tokens: QuestionTokens | None = None,
    ) -> Features:
        """Evidence for the candidate sentences: the k nearest vectors and BM25's k best.

        `words` is `self.words(question)` when the caller has it already; `tokens` the question's
        words as token vectors, when token vectors are used (else exact word coverage stands in).
        """
        if words is None:
            words = self.words(question)
        q = np.ascontiguousarray(question_vector, dtype=np.float32).reshape(1, -1)
        nearest = self.index.nearest(q[0], self.k)
        candidate = np.zeros(len(self.index.sentences), dtype=bool)
        candidate[nearest[nearest >= 0]] = True
        candidate[words.best] = True
        ids = np.flatnonzero(candidate)
        holds, holds_context = self.holds(words.ask, ids, words.held)
        focus_coverage, rare_coverage = words.focus_coverage[ids], words.rare_coverage[ids]
        if tokens is None or self.tokens is None:
            soft_focus, soft_coverage = focus_coverage, rare_coverage
        else:
            soft_focus, soft_coverage = self.tokens.coverage(tokens, ids)
        return Features(
            ids=ids,
            dense=self.vectors[ids] @ q[0],
            context=self.passage_vectors[self.passage_of[ids]] @ q[0],
            lexical=words.lexical[ids],
            coverage=words.coverage[ids],
            weighted_coverage=words.weighted_coverage[ids],
            corpus_coverage=words.corpus_coverage,
            kind=words.kind[ids],
            bm25_max=words.bm25_max,
            query_terms=len(words.terms),
            holds=holds,
            holds_context=holds_context,
            rare_coverage=rare_coverage,
            rare_context=words.rare_context[ids],
            focus_coverage=focus_coverage,
            name_context=words.name_context[ids],
            previous_coverage=words.previous_coverage[ids],
            soft_focus=soft_focus,
            soft_coverage=soft_coverage,
            known_names=words.known_names,
            foreign_names=words.foreign_names,
            token_vectors=tokens is not None and self.tokens is not None,
            typed=words.ask.typed,
            required=words.ask.required,
        )
