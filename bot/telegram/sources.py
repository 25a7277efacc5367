"""Find the passage around a cited sentence, even after the index was rebuilt."""

from __future__ import annotations

from ..answer import Answerer
from .format import passage_html, source_key


def _find(answerer: Answerer, sentence_id: int, key: str) -> int | None:
    sentences = answerer.index.sentences
    if 0 <= sentence_id < len(sentences):
        s = sentences[sentence_id]
        if source_key(s.doc, s.text) == key:
            return sentence_id
    for i, s in enumerate(sentences):  # the index was rebuilt: look the sentence up by content
        if source_key(s.doc, s.text) == key:
            return i
    return None


def source_passage(answerer: Answerer, sentence_id: int, key: str) -> str | None:
    """The passage HTML for a sources button, or None when the sentence is gone (blocking: run in a thread)."""
    found = _find(answerer, sentence_id, key)
    if found is None:
        return None
    sentence = answerer.index.sentences[found]
    article = answerer.index.articles[sentence.doc]
    return passage_html(article, sentence.paragraph, answerer.passage(found), sentence.text)
