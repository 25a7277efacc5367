"""Split articles into sentences (pysbd) and group them into passages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .corpus import Article

PASSAGE_SENTENCES = 4
_HAS_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Sentence:
    """One citable sentence with its stable position: article, paragraph and sentence (1-based)."""

    doc: str
    paragraph: int
    sentence: int
    text: str
    passage: int  # index into the passage list


@dataclass(frozen=True)
class Passage:
    """Consecutive sentences of one paragraph (indices into the sentence list)."""

    doc: str
    paragraph: int
    first: int
    last: int  # inclusive


@lru_cache(maxsize=1)
def _segmenter():  # pysbd builds its rule tables once
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


# pysbd misses some sentence ends inside curly quotes: `.’ The` and `.” ‘The`
_QUOTED_END = re.compile(r"(?<=[.!?][\u201d\u2019])\s+(?=[\u201c\u2018]?[A-Z0-9])")
# ...and leaves closing quotes or reference marks (`.[k]`) at the start of the next piece
_LEADING_CLOSE = re.compile(r"^(?:[\u201d\u2019]|\[[a-z0-9]{1,3}\])+")


# ...and cuts `“Are you sure?” Mr Tan asked.` after the quote: the attribution is the same sentence
_QUOTE_ASKED = re.compile(r"[?!][\u201d\u2019]$")
_SPEECH = r"(?:said|says|asked|asks|added|adds|replied|shouted|wrote|told \w+)"
_ATTRIBUTION = re.compile(rf"^(?:(?:[\w.'\u2019-]+,?\s+){{1,6}}{_SPEECH}|{_SPEECH}\s+[^.!?]{{1,80}})\.$")


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph, stripped, without empty or punctuation-only pieces."""
    pieces: list[str] = []
    for piece in _segmenter().segment(paragraph):
        piece = piece.strip()
        close = _LEADING_CLOSE.match(piece)
        if close and pieces:  # it belongs to the end of the sentence before
            pieces[-1] += close.group(0)
            piece = piece[close.end() :].strip()
        for part in (p.strip() for p in _QUOTED_END.split(piece)):
            if pieces and _QUOTE_ASKED.search(pieces[-1]) and _ATTRIBUTION.match(part):
                pieces[-1] += " " + part
            else:
                pieces.append(part)
    return [s for s in pieces if _HAS_WORD.search(s)]


def split_articles(
    articles: list[Article], passage_sentences: int = PASSAGE_SENTENCES
) -> tuple[list[Sentence], list[Passage]]:
    """All sentences of the articles in order, and passages of up to `passage_sentences`."""
    if passage_sentences < 1:
        raise ValueError(f"passage_sentences must be at least 1, got {passage_sentences}")
    sentences: list[Sentence] = []
    passages: list[Passage] = []
    for article in articles:
        for p_no, paragraph in enumerate(article.paragraphs, start=1):
            texts = split_sentences(paragraph)
            for start in range(0, len(texts), passage_sentences):
                chunk = texts[start : start + passage_sentences]
                first = len(sentences)
                passage_id = len(passages)
                for offset, text in enumerate(chunk):
                    sentences.append(Sentence(article.doc, p_no, start + offset + 1, text, passage_id))
                passages.append(Passage(article.doc, p_no, first, len(sentences) - 1))
    return sentences, passages
