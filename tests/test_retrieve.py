"""Retrieval: the word scores are bm25s's, and a corpus big enough for HNSW answers as exact search does."""

from __future__ import annotations

import dataclasses

import faiss
import numpy as np
import pytest

import bot.index
from bot.answer import Answerer
from bot.retrieve import Retriever, _bm25, terms

from .test_answer import ANSWERABLE, UNRELATED

QUERIES = [
    "Which country has the most rainforest?",
    "oxygen oxygen oxygen discovered",  # a repeated word counts again, as in bm25s
    "zyxwv quux",  # no word the corpus knows
    "Who named oxygen, and when did Priestley publish?",
]


@pytest.fixture(scope="module")
def index(bundled_service):
    return bundled_service.answerer.index


def test_word_scores_are_exactly_bm25s_scores(index):
    retriever = Retriever(index)
    reference = _bm25([terms(s.text) for s in index.sentences])
    for query in QUERIES:
        words = terms(query)
        ours = retriever.bm25.scores(words)
        assert ours.dtype == np.float32
        if any(w in reference.vocab_dict for w in words):
            np.testing.assert_array_equal(ours, reference.get_scores(words))
        else:
            assert not ours.any()


def test_a_corpus_beyond_the_flat_limit_answers_as_exact_search_does(index, bundled_service, monkeypatch):
    monkeypatch.setattr(bot.index, "FLAT_LIMIT", 100)  # the bundled corpus (289 sentences) now gets a graph
    graph = dataclasses.replace(index, faiss_index=None)
    assert isinstance(graph.faiss_index, faiss.IndexHNSW)
    exact, approximate = bundled_service.answerer, Answerer(graph, bundled_service.answerer.encoder)
    for question in [q for q, *_ in ANSWERABLE] + UNRELATED:
        a, b = exact.answer(question), approximate.answer(question)
        assert (b.answered, [c.text for c in b.citations]) == (a.answered, [c.text for c in a.citations]), question
