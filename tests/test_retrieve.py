"""Retrieval: the word evidence of the candidates, and a corpus big enough for HNSW answers as exact search does."""

from __future__ import annotations

import dataclasses

import faiss
import numpy as np
import pytest

import bot.index
from bot.answer import Answerer
from bot.retrieve import Retriever
from bot.words import plain_case, truecase

from .test_answer import ANSWERABLE, UNRELATED


@pytest.fixture(scope="module")
def index(wiki_service):
    return wiki_service.answerer.index


def _evidence(retriever: Retriever, vector: np.ndarray, question: str, fragment: str) -> dict[str, float]:
    features = retriever.features(vector, question)
    sentences = [retriever.index.sentences[i].text for i in features.ids]
    j = next(j for j, text in enumerate(sentences) if fragment in text)
    return {"coverage": features.coverage[j], "weighted": features.weighted_coverage[j], "kind": features.kind[j]}


def test_word_evidence_counts_the_question_words_each_candidate_holds(index, wiki_service):
    retriever = Retriever(index)
    question = "Which disease can vampire bats spread?"  # content words: disease, can, vampire, bats, spread
    vector = wiki_service.answerer.encoder.encode([question])[0]
    rabies = _evidence(retriever, vector, question, "rabies")
    assert rabies["coverage"] == pytest.approx(0.8)  # all but "disease"
    assert 0 < rabies["weighted"] < 1
    whole = _evidence(retriever, vector, "vampire bats spread rabies", "rabies")
    assert whole["coverage"] == whole["weighted"] == pytest.approx(1.0)


def test_kind_of_answer_is_marked_on_the_sentences_that_hold_it(index, wiki_service):
    retriever = Retriever(index)
    question = "How many people lived in the Amazon around 1500?"
    vector = wiki_service.answerer.encoder.encode([question])[0]
    assert _evidence(retriever, vector, question, "Some 5 million people")["kind"] == 1.0
    who = "Who was the first European to travel the length of the Amazon River?"
    vector = wiki_service.answerer.encoder.encode([who])[0]
    assert _evidence(retriever, vector, who, "Francisco de Orellana")["kind"] == 1.0  # a name not in the question


def test_a_corpus_beyond_the_flat_limit_answers_as_exact_search_does(index, wiki_service, monkeypatch):
    monkeypatch.setattr(bot.index, "FLAT_LIMIT", 100)  # the Wikipedia fixture (289 sentences) now gets a graph
    graph = dataclasses.replace(index, faiss_index=None)
    assert isinstance(graph.faiss_index, faiss.IndexHNSW)
    exact, approximate = wiki_service.answerer, Answerer(graph, wiki_service.answerer.encoder)
    for question in [q for q, *_ in ANSWERABLE] + UNRELATED:
        a, b = exact.answer(question), approximate.answer(question)
        assert (b.answered, [c.text for c in b.citations]) == (a.answered, [c.text for c in a.citations]), question


def test_words_typed_without_accents_find_the_accented_ones(index, wiki_service):
    """The article writes "Selva Amazónica"; a reader types "Amazonica"."""
    retriever = Retriever(index)
    for question in ("What is the Selva Amazonica?", "What is the Selva Amazónica?"):
        vector = wiki_service.answerer.encoder.encode([question])[0]
        assert _evidence(retriever, vector, question, "Selva Amazónica")["coverage"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "question, foreign",
    [
        ("Who is the president of Italy?", True),  # a well-known name no article uses
        ("What did Lavoiser observe about tin?", False),  # misspelt: an unknown word, not a missing topic
        ("What did Lavoisier observe about tin?", False),
        ("Where is the Amazon in Italy?", False),  # one of its names is there
        ("How is oxygen made?", False),  # no names
    ],
)
def test_questions_about_names_no_article_uses(index, question, foreign):
    assert Retriever(index).words(question).foreign_names is foreign


def test_a_retriever_needs_at_least_one_candidate(index):
    with pytest.raises(ValueError, match="got 0"):
        Retriever(index, candidates=0)


def test_stop_words_include_bm25s_english_list():
    import bm25s

    from bot.words import STOPWORDS

    assert set(bm25s.stopwords.STOPWORDS_EN) <= STOPWORDS  # copied, so serving need not import bm25s


def test_question_words_are_lower_cased_stemmed_and_stop_words_dropped_in_any_thread():
    from concurrent.futures import ThreadPoolExecutor

    from bot.words import terms

    text = "Vampire bats spread rabies among the cattle of the rainforests"
    with ThreadPoolExecutor(4) as pool:
        assert (
            list(pool.map(terms, [text] * 8))
            == [terms(text)] * 8
            == [["vampir", "bat", "spread", "rabi", "among", "cattl", "rainforest"]] * 8
        )


def test_a_question_typed_in_lower_case_gets_the_capitals_the_articles_give_its_names():
    capitalised = {"kim": 9, "putin": 12, "summit": 1, "university": 5}  # "university": 5 of 6
    used = {"kim": 10, "putin": 12, "summit": 8, "universiti": 6, "meet": 5}  # stemmed (words.terms)

    def counts(words, stems):
        return capitalised, used

    assert truecase("where did kim meet putin?", counts) == "where did Kim meet Putin?"
    # words the articles mostly write in lower case, and words they never use, stay as typed
    assert truecase("was the summit at the university?", counts) == "was the summit at the university?"
    assert truecase("who is the president of italy?", counts) == "who is the president of italy?"
    # a phone capitalises the first letter only; a question with a capital after it is read as typed
    assert truecase("Where did kim meet putin?", counts) == "Where did Kim meet Putin?"
    assert truecase("Where did Kim meet putin?", counts) == "Where did Kim meet putin?"


def test_capitals_that_say_nothing_are_read_as_lower_case():
    assert plain_case("WHERE DID KIM MEET PUTIN?") == "where did kim meet putin?"
    assert plain_case("Where Did Kim Meet Putin?") == "where did kim meet putin?"
    assert plain_case("Where did Kim meet Putin?") == "Where did Kim meet Putin?"
    assert plain_case("When did NASA launch Atlantis?") == "When did NASA launch Atlantis?"
