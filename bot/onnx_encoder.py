"""Serve question embeddings without torch: an ONNX export of the model, run by onnxruntime.

The export (`export_onnx`) needs torch and runs where the index is built. It writes a model
folder into a cache beside the index, keyed by the model name:

    <index_dir>/models/<key>/model.onnx      transformer + mean pooling + L2 normalisation
                                             (and the last layer's token vectors, bot.tokens)
    <index_dir>/models/<key>/tokenizer.json  the model's fast tokenizer, unchanged
    <index_dir>/models/<key>/onnx.json       model name, dimension, max_seq_length, checksums

`OnnxEncoder` loads such a folder with onnxruntime and tokenizers only (no torch, no
sentence-transformers), verifying the checksums first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .encoder import ModelError, normalise, resolve_model
from .files import fsync_dir, fsync_files
from .index import sha256_file

if TYPE_CHECKING:
    from .encoder import SentenceTransformerEncoder
    from .tokens import TokenView

log = logging.getLogger(__name__)

MODELS_DIR = "models"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
ONNX_MANIFEST = "onnx.json"
ONNX_FORMAT = 2  # 2: a second output, the token vectors
OPSET = 17
MIN_COSINE = 0.99999  # an export whose vectors differ more from sentence-transformers is refused

# Probe texts for checking an export: short, long (beyond 128 tokens), mixed lengths in a batch.
PROBES = (
    "Where did the summit take place?",
    "Oxygen",
    "The Amazon rainforest covers much of the Amazon basin of South America, an area of "
    "seven million square kilometres, of which five and a half million are covered by forest. " * 6,
    "How many visitors are expected over three days at the harbour festival?",
    "¿Dónde está la estación? Ünïcödé, emoji 🙂 and numbers 40,000 and 1973.",
)


class OnnxProblem(RuntimeError):
    """The ONNX model folder is missing, corrupt or does not match; says what to run."""


@dataclass(frozen=True)
class OnnxManifest:
    """What `onnx.json` records about an exported model."""

    format: int
    model: str
    source: str
    dimension: int
    max_seq_length: int
    opset: int
    cosine: float  # worst cosine against sentence-transformers on the probe texts at export
    checksums: dict[str, str]


def model_key(model: str) -> str:
    """File-system-safe folder name for a model name (readable part + short hash)."""
    readable = re.sub(r"[^a-z0-9]+", "-", model.strip().lower()).strip("-")[-40:] or "model"
    return f"{readable}-{hashlib.sha1(model.strip().encode('utf-8')).hexdigest()[:10]}"


def onnx_dir(index_dir: Path, model: str) -> Path:
    """Where the ONNX export of `model` is kept for an index folder."""
    return index_dir / MODELS_DIR / model_key(model)


def read_manifest(folder: Path, model: str | None = None, verify: bool = True) -> OnnxManifest:
    """The manifest of an export folder, checking model name and (optionally) file checksums."""
    path = folder / ONNX_MANIFEST
    if not path.is_file():
        raise OnnxProblem(f"No ONNX export in {str(folder)!r}: rebuild the index to create it.")
    try:
        manifest = OnnxManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise OnnxProblem(f"The ONNX manifest {str(path)!r} is unreadable ({exc}).") from exc
    if manifest.format != ONNX_FORMAT:
        raise OnnxProblem(f"The ONNX export in {str(folder)!r} has format {manifest.format}, expected {ONNX_FORMAT}.")
    if model is not None and manifest.model != model:
        raise OnnxProblem(f"The ONNX export in {str(folder)!r} is of {manifest.model!r}, not {model!r}.")
    if verify:
        for name, digest in manifest.checksums.items():
            file = folder / name
            if not file.is_file() or sha256_file(file) != digest:
                raise OnnxProblem(f"The ONNX file {name} in {str(folder)!r} is missing or corrupt (checksum mismatch).")
    return manifest


def has_export(index_dir: Path, model: str) -> bool:
    """Whether a readable export of `model` exists (checksums are verified on load, not here)."""
    try:
        read_manifest(onnx_dir(index_dir, model), model, verify=False)
    except OnnxProblem:
        return False
    return True


def _max_seq_length(model_path: Path, default: int = 256) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return default


def _check_exportable(model_path: Path) -> None:
    """Refuse models whose sentence-transformers pipeline is not transformer + mean pooling (+ normalise)."""
    modules_file = model_path / "modules.json"
    if not modules_file.is_file():
        raise ModelError(
            f"{str(model_path)!r} has no modules.json; only sentence-transformers folders can be exported."
        )
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text(encoding="utf-8"))]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise ModelError(
            f"cannot export a model with modules {kinds} to ONNX (expected Transformer, Pooling[, Normalize])"
        )
    pooling_file = model_path / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text(encoding="utf-8")) if pooling_file.is_file() else {}
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ModelError(f"cannot export pooling {modes or 'unknown'} to ONNX (only mean pooling)")
    if not (model_path / TOKENIZER_FILE).is_file():
        raise ModelError(f"{str(model_path)!r} has no {TOKENIZER_FILE} (a fast tokenizer is needed without torch)")


def exportable(model: str) -> bool:
    """Whether `model` names a local sentence-transformers folder that `export_onnx` can export."""
    try:
        _check_exportable(resolve_model(model))
    except (ModelError, OSError, ValueError):
        return False
    return True


def configured_dimension(model: str) -> int | None:
    """The vector size of an exportable model, read from its config without loading it (else None)."""
    if not exportable(model):
        return None
    pooling = json.loads((resolve_model(model) / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    value = pooling.get("word_embedding_dimension")
    return value if isinstance(value, int) and value > 0 else None


def export_onnx(encoder: SentenceTransformerEncoder, index_dir: Path) -> Path:
    """Export the encoder's model to `onnx_dir(index_dir, encoder.name)` and verify its vectors.

    Needs torch (it is already loaded by `encoder`). Raises ModelError when the model cannot be
    exported or the exported vectors differ from sentence-transformers (cosine < MIN_COSINE).
    """
    import warnings

    import torch

    model_path = resolve_model(encoder.name)
    _check_exportable(model_path)
    transformer = encoder._model[0].auto_model  # the Hugging Face model inside sentence-transformers
    max_seq_length = _max_seq_length(model_path)

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            tokens = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1), tokens

    target = onnx_dir(index_dir, encoder.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        wrapper = Pooled(transformer).eval()
        dummy = torch.ones((2, 16), dtype=torch.long)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about constant shapes; vectors are checked below
            torch.onnx.export(
                wrapper,
                (dummy, torch.ones_like(dummy)),
                str(work / ONNX_FILE),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding", "tokens"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                    "tokens": {0: "batch", 1: "tokens"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        shutil.copyfile(model_path / TOKENIZER_FILE, work / TOKENIZER_FILE)
        checksums = {name: sha256_file(work / name) for name in (ONNX_FILE, TOKENIZER_FILE)}
        manifest = OnnxManifest(
            ONNX_FORMAT, encoder.name, str(model_path), int(encoder.dimension), max_seq_length, OPSET, 0.0, checksums
        )
        (work / ONNX_MANIFEST).write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
        probe = OnnxEncoder(work, threads=1)
        cosine = float(np.min(np.sum(probe.encode(PROBES) * encoder.encode(PROBES), axis=1)))
        if cosine < MIN_COSINE:
            raise ModelError(
                f"the ONNX export of {encoder.name!r} differs from sentence-transformers (cosine {cosine:.7f})"
            )
        manifest = OnnxManifest(**{**asdict(manifest), "cosine": cosine})
        (work / ONNX_MANIFEST).write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
        fsync_files(work, [ONNX_FILE, TOKENIZER_FILE, ONNX_MANIFEST])
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("exported %s to ONNX in %s (cosine %.7f)", encoder.name, target, cosine)
    return target


class OnnxEncoder:
    """An exported model run by onnxruntime with a `tokenizers` tokenizer: no torch import.

    Truncates at the model's max_seq_length and pads each batch only to its longest text.
    """

    def __init__(self, folder: Path, name: str | None = None, threads: int = 1, batch_size: int = 32) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder, name)
        self.name = self.manifest.model
        self.dimension = self.manifest.dimension
        self.threads = threads
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(max_length=self.manifest.max_seq_length)
        padding = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(
            pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
        )  # no length: pad to the longest text of each batch
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.folder / ONNX_FILE), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (RuntimeError, ValueError) as exc:  # onnxruntime raises its own RuntimeError subclasses
            raise OnnxProblem(f"onnxruntime cannot load {str(self.folder / ONNX_FILE)!r}: {exc}") from exc

    def _tokenize(self, texts: list[str]) -> list:
        # one text: `encode` holds the GIL throughout, where `encode_batch` lets it go and then
        # waits to take it back (up to a switch interval when another thread is busy in Python)
        return [self.tokenizer.encode(texts[0])] if len(texts) == 1 else self.tokenizer.encode_batch(texts)

    def _feeds(self, encodings: list) -> dict[str, np.ndarray]:
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": mask}

    def _run(self, texts: list[str]) -> np.ndarray:
        (vectors,) = self.session.run(["embedding"], self._feeds(self._tokenize(texts)))
        return vectors

    def _batches(self, texts: list[str]) -> list[list[int]]:
        """Positions of the texts in batches of batch_size, length-sorted (little padding)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenView]]:
        """The vectors of `encode` and, from the same run, each text's token vectors (bot.tokens)."""
        from .tokens import TokenView

        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        views: dict[int, TokenView] = {}
        for rows in self._batches(texts):
            encodings = self._tokenize([texts[i] for i in rows])
            vectors, tokens = self.session.run(["embedding", "tokens"], self._feeds(encodings))
            out[rows] = vectors
            for n, (i, e) in enumerate(zip(rows, encodings, strict=True)):
                length = int(sum(e.attention_mask))
                views[i] = TokenView(
                    tokens[n, :length], list(e.tokens[:length]), [tuple(o) for o in e.offsets[:length]]
                )
        return normalise(out), [views[i] for i in range(len(texts))]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (long inputs in length-sorted batches)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) <= self.batch_size:
            return normalise(self._run(texts))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows in self._batches(texts):
            out[rows] = self._run([texts[i] for i in rows])
        return normalise(out)
