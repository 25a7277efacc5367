"""The ONNX serving encoder: same vectors and answers as sentence-transformers, and no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.answer import Answerer
from bot.onnx_encoder import (
    ONNX_FILE,
    TOKENIZER_FILE,
    OnnxEncoder,
    OnnxProblem,
    exportable,
    model_key,
    onnx_dir,
)
from bot.service import QAService
from bot.settings import DEFAULT_MODEL

from .conftest import ROOT
from .fakes import FakeEncoder

# Questions about the Wikipedia fixture articles (SQuAD dev questions on Amazon rainforest and Oxygen).
QUESTIONS = [
    "What welding process was demonstrated in 1901?",
    "Which nation contains the majority of the amazon forest?",
    "How many square miles large was the region impacted by the 2010 drought?",
    "What amount of the worlds carbon is stored in the Amazon forest?",
    "What are environmentalists concerned about losing in the Amazon forest?",
    "What previous work did Lavoisier experiments discredit?",
    "From where would scientists like measure vegetation radiance?",
    "When was liquid oxygen developed for commercial use?",
    "The Amazon rainforest makes up what amount of Earth's rainforests?",
    "In what year did the Amazon experience a drought that may have been more extreme than in 2005?",
    "What is the Dutch word for the Amazon rainforest?",
    "In what country can most of the Amazon rainforest be found?",
    "Where is Brazil ranked globally in soybean production?",
    "How many square kilometers of rainforest is covered in the basin?",
    "During what type of climate is oxygen 18 in seawater at higher levels?",
    "In what year did Dewar experiment on liquid oxygen?",
    "The loss of biodiversity may be the result of what, according to environmentalists?",
    "In what year did Joseph Priestley recognize oxygen?",
    "What did creating highways in the Amazon rainforest lead to?",
    "When did Carl Wilhelm Scheele discover oxygen?",
    "Who won the football match last night?",  # not in the articles: a decline
    "What is the boiling point of liquid oxygen?",
]


@pytest.fixture(scope="session")
def onnx_encoder(wiki_service: QAService) -> OnnxEncoder:
    """The export made when the bundled index was built (once per session)."""
    encoder = wiki_service.encoder
    assert isinstance(encoder, OnnxEncoder)
    return encoder


def test_wiki_service_serves_with_the_export_kept_beside_the_index(wiki_service, onnx_encoder):
    folder = onnx_dir(wiki_service.settings.index_dir, DEFAULT_MODEL)
    assert onnx_encoder.folder == folder
    assert folder.parent.parent == wiki_service.settings.index_dir and folder.name == model_key(DEFAULT_MODEL)
    assert (folder / ONNX_FILE).is_file() and (folder / TOKENIZER_FILE).is_file()
    assert onnx_encoder.manifest.max_seq_length == 256
    assert onnx_encoder.manifest.cosine >= 0.99999
    assert onnx_encoder.name == DEFAULT_MODEL and onnx_encoder.dimension == 384


def test_vectors_match_sentence_transformers(wiki_service, onnx_encoder, real_encoder):
    sentences = sorted((s.text for s in wiki_service.answerer.index.sentences), key=len)
    texts = (
        sentences[:20]
        + sentences[-20:]
        + QUESTIONS
        + [
            "a",
            "Oxygen?",
            " ".join(["oxygen combustion phlogiston rainforest"] * 120),  # far beyond 256 tokens
        ]
    )
    expected = real_encoder.encode(texts)
    got = onnx_encoder.encode(texts)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(got * expected, axis=1))) >= 0.99999
    # one at a time (no padding, tokenized without the batch call) gives the same vectors
    singles = np.vstack([onnx_encoder.encode([t]) for t in QUESTIONS + texts[-1:]])
    alone = np.vstack([expected[-len(QUESTIONS) - 3 : -3], expected[-1:]])
    assert float(np.min(np.sum(singles * alone, axis=1))) >= 0.99999


def test_tokenizer_truncates_at_max_seq_length_and_pads_dynamically(onnx_encoder):
    long_text = " ".join(["word"] * 1000)
    batch = onnx_encoder.tokenizer.encode_batch(["short question", long_text])
    assert len(batch[1].ids) == 256
    single = onnx_encoder.tokenizer.encode("short question")
    assert len(single.ids) == sum(single.attention_mask) < 10


def test_answers_are_unchanged(wiki_service, onnx_encoder, real_encoder):
    index = wiki_service.answerer.index
    with_torch = Answerer(index, real_encoder).answer_many(QUESTIONS)
    with_onnx = Answerer(index, onnx_encoder).answer_many(QUESTIONS)
    for a, b in zip(with_torch, with_onnx, strict=True):
        assert (a.answered, [c.sentence_id for c in a.citations]) == (b.answered, [c.sentence_id for c in b.citations])
        assert [c.sentence_id for c in a.related] == [c.sentence_id for c in b.related]
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)
    assert any(a.answered for a in with_onnx) and not all(a.answered for a in with_onnx)


def test_serving_process_imports_neither_torch_nor_bm25s(wiki_service):
    settings = wiki_service.settings
    script = (
        "import json, sys\n"
        "from bot.service import QAService\n"
        "from bot.settings import Settings\n"
        f"s = Settings(_env_file=None, corpus_dir={str(settings.corpus_dir)!r}, index_dir={str(settings.index_dir)!r})\n"
        "service = QAService(s)\n"
        "service.open(rebuild=False)\n"
        f"answers = service.answerer.answer_many({QUESTIONS[:6]!r})\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'bm25s', 'scipy') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'encoder': type(service.encoder).__name__,\n"
        "                  'ids': [[c.sentence_id for c in a.citations] for a in answers]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["encoder"] == "OnnxEncoder"
    expected = wiki_service.answerer.answer_many(QUESTIONS[:6])
    assert result["ids"] == [[c.sentence_id for c in a.citations] for a in expected]


def test_encoder_threads_go_to_onnxruntime(onnx_encoder):
    two = OnnxEncoder(onnx_encoder.folder, DEFAULT_MODEL, threads=2)
    assert two.session.get_session_options().intra_op_num_threads == 2
    assert onnx_encoder.session.get_session_options().intra_op_num_threads == 1  # ENCODER_THREADS default
    with pytest.raises(ValueError, match="got 0"):
        OnnxEncoder(onnx_encoder.folder, threads=0)


def test_a_corrupt_or_foreign_export_is_refused(onnx_encoder, tmp_path: Path):
    copy = tmp_path / "export"
    shutil.copytree(onnx_encoder.folder, copy)
    with pytest.raises(OnnxProblem, match="not 'other-model'"):
        OnnxEncoder(copy, "other-model")
    with (copy / TOKENIZER_FILE).open("a", encoding="utf-8") as handle:
        handle.write(" ")
    with pytest.raises(OnnxProblem, match="checksum"):
        OnnxEncoder(copy)


def test_the_fake_encoder_has_no_export_and_serves_itself(fake_service):
    assert not exportable(FakeEncoder.name)
    assert isinstance(fake_service.encoder, FakeEncoder)
    assert fake_service.answerer.encoder is fake_service.encoder
    assert not (fake_service.settings.index_dir / "models").exists()
