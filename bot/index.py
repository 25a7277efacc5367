"""The sentence index: FAISS vectors, the word index, sentence/passage metadata and a manifest.

`SentenceIndex` is the embedded implementation of the store protocols (bot.store) the answering
path reads through. Saved as a build folder that `CURRENT` names; `bot.lifecycle` decides when
to build one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import faiss
import numpy as np

from .corpus import Article, Corpus, CorpusError
from .encoder import Encoder, TokenEncoder
from .files import atomic_write, fsync_files
from .split import Passage, Sentence, split_articles
from .tokens import TOKENS_FILE, TokenVectors, projection_for, quantise, sentence_rows
from .words import WordIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 5  # 2: sentences are embedded with their article title; 3: the word index is required;
# 4: token vectors (bot.tokens) where the model has a fitted projection; 5: words without accents (words.fold)
CURRENT = "CURRENT"
VECTORS = "vectors.npy"
FAISS_FILE = "sentences.faiss"
META = "meta.json"
WORDS_FILE = "words.npz"  # the BM25 word index (bot.words)
MANIFEST = "manifest.json"
# Exact search up to here, an HNSW graph beyond: past a few thousand sentences the graph searches
# faster than a flat scan (benchmarks/faiss_scaling.py measures both); on squad-dev (10k
# sentences) the graph changed no top answer and no decline on 10,570 questions.
FLAT_LIMIT = 4_000


class IndexProblem(RuntimeError):
    """The index is missing, stale, corrupt or built with another model; says what to run."""


class LazyEncoder:
    """An Encoder whose model is created only when something must be encoded.

    An unchanged reindex then never loads the model (nor torch). `dimension`, when not given,
    loads the model on first use.
    """

    def __init__(self, factory: Callable[[], Encoder], name: str, dimension: int | None = None) -> None:
        self._factory = factory
        self._encoder: Encoder | None = None
        self._dimension = dimension
        self.name = name

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def load(self) -> Encoder:
        if self._encoder is None:
            encoder = self._factory()
            if encoder.name != self.name:
                raise ValueError(f"the encoder factory made {encoder.name!r}, expected {self.name!r}")
            if self._dimension is not None and encoder.dimension != self._dimension:
                raise ValueError(f"{self.name!r} encodes {encoder.dimension} dimensions, expected {self._dimension}")
            self._encoder = encoder
        return self._encoder

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.load().dimension)
        return self._dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.load().encode(texts)

    def token_encoder(self) -> TokenEncoder | None:
        """The loaded encoder, if it gives token vectors too."""
        encoder = self.load()
        return encoder if isinstance(encoder, TokenEncoder) else None


def _token_encoder(encoder: Encoder) -> TokenEncoder | None:
    """The encoder as one that gives token vectors too, if it does (loading a LazyEncoder's model)."""
    if isinstance(encoder, LazyEncoder):
        return encoder.token_encoder()
    return encoder if isinstance(encoder, TokenEncoder) else None


@dataclass
class BuildReport:
    """What a build did, for the one-line summary and the admin's /reindex reply."""

    articles: int
    sentences: int
    embedded: int  # sentences that had to be encoded (the rest came from the previous index)
    seconds: float
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # problem messages

    def summary(self) -> str:
        def count(n: int, noun: str) -> str:
            return f"{n} {noun}" + ("" if n == 1 else "s")

        parts = [
            f"{count(self.articles, 'article')}, {count(self.sentences, 'sentence')} "
            f"({self.embedded} embedded) in {self.seconds:.1f}s"
        ]
        for label, docs in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            if docs:
                parts.append(f"{label}: {', '.join(docs)}")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)}: " + "; ".join(self.skipped))
        return "; ".join(parts)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def embedding_text(title: str, sentence: str) -> str:
    """What is embedded for a sentence: its article's title gives it the topic it lacks alone.

    ("It was completed in 1969." says little; "Apollo program: It was completed in 1969."
    does.) It ranks better on squad-dev's dev split, at no extra encoding cost.
    """
    return f"{title}: {sentence}"


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def make_faiss(vectors: np.ndarray) -> faiss.Index:
    """Inner-product index over unit vectors: exact up to FLAT_LIMIT, an HNSW graph beyond."""
    if len(vectors) > FLAT_LIMIT:
        return make_graph(vectors)
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(vectors)
    return index


def make_graph(vectors: np.ndarray) -> faiss.Index:
    """HNSW (M=32, efConstruction 80, efSearch 128) over 8-bit scalar-quantised vectors.

    The candidates' cosines are computed again from the float vectors, so quantisation only
    decides which 64 sentences are candidates: it reads a quarter of the bytes per visited
    vector and changed no top answer and no decline on squad-dev's 10,570 questions.
    """
    # faiss's stubs want a ScalarQuantizer where the C++ constructor takes its QuantizerType (an int)
    index = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = 128
    index.train(vectors)
    index.add(vectors)
    return index


class Previous(Protocol):
    """What a build reuses from the index it replaces: the vectors of known sentences."""

    @property
    def model(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def known_vectors(self) -> dict[str, np.ndarray]:
        """text_key(embedding_text(title, sentence)) -> its vector."""
        ...

    def known_tokens(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """text_key(...) -> its token vectors (bot.tokens: codes, scales), where it has them."""
        ...

    def fingerprint(self) -> dict[str, str]:
        """The corpus it was built from (file -> checksum)."""
        ...


@dataclass
class SentenceIndex:
    """Everything answering needs (a bot.store.Store): articles, sentences, passages, vectors
    searched with FAISS, and the word index (BM25 and kinds of fact)."""

    articles: dict[str, Article]
    sentences: list[Sentence]
    passages: list[Passage]
    vectors: np.ndarray
    manifest: dict
    words: WordIndex
    faiss_index: faiss.Index | None = None
    tokens: TokenVectors | None = None  # per sentence, where the model has a token projection

    def __post_init__(self) -> None:
        if self.faiss_index is None:
            self.faiss_index = make_faiss(self.vectors)
        if self.tokens is not None and self.tokens.sentences != len(self.sentences):
            raise ValueError(f"{self.tokens.sentences} sentences of token vectors for {len(self.sentences)} sentences")

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def facts(self) -> WordIndex:
        """The kinds of fact per sentence (kept in the word index, worked out with it)."""
        return self.words

    def nearest(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Ids of the k sentences nearest `vector` (FAISS; -1 where fewer exist)."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        assert self.faiss_index is not None  # made in __post_init__
        _, ids = self.faiss_index.search(query, k)
        return ids[0]

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def known_vectors(self) -> dict[str, np.ndarray]:
        """text_key(embedding_text(title, sentence)) -> its vector, for a rebuild to reuse."""
        known: dict[str, np.ndarray] = {}
        for sentence, vector in zip(self.sentences, self.vectors, strict=True):
            known[text_key(embedding_text(self.articles[sentence.doc].title, sentence.text))] = vector
        return known

    def known_tokens(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """text_key -> the sentence's token vectors (codes, scales), for a rebuild to reuse."""
        if self.tokens is None:
            return {}
        return {
            text_key(embedding_text(self.articles[s.doc].title, s.text)): self.tokens.sentence(i)
            for i, s in enumerate(self.sentences)
        }

    def fingerprint(self) -> dict[str, str]:
        return dict(self.manifest["corpus"])

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        encoder: Encoder,
        previous: Previous | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[SentenceIndex, BuildReport]:
        """Split and embed the corpus, reusing vectors of unchanged sentences from `previous`."""
        if not corpus.articles:
            detail = "; ".join(p.message for p in corpus.problems) or "the folder has no .txt or .md file"
            raise CorpusError(f"No article could be indexed: {detail}")
        started = time.perf_counter()
        sentences, passages = split_articles(corpus.articles)
        known: dict[str, np.ndarray] = {}
        known_tokens: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if previous is not None and previous.model == encoder.name and previous.dimension == encoder.dimension:
            known = previous.known_vectors()
            known_tokens = previous.known_tokens()
        projection = projection_for(encoder.name, encoder.dimension)
        if known and not known_tokens:
            projection = None  # what it replaces was built without token vectors: reuse its vectors as they are
        titles = {a.doc: a.title for a in corpus.articles}
        texts = [embedding_text(titles[s.doc], s.text) for s in sentences]
        keys = [text_key(t) for t in texts]
        todo = list(
            {k: i for i, k in enumerate(keys) if k not in known or (projection and k not in known_tokens)}.values()
        )
        todo.sort(key=lambda i: len(sentences[i].text))  # batches of similar length: less padding
        with_tokens = _token_encoder(encoder) if projection is not None and todo else None
        vectors = np.zeros((len(sentences), encoder.dimension), dtype=np.float32)
        batch = 256
        for start in range(0, len(todo), batch):
            rows = todo[start : start + batch]
            if with_tokens is not None and projection is not None:
                encoded, views = with_tokens.encode_tokens([texts[i] for i in rows])
                for row, view in zip(rows, views, strict=True):
                    own = sentence_rows(view, len(titles[sentences[row].doc]) + 2)  # after "title: "
                    known_tokens[keys[row]] = quantise(projection.unit(view.vectors[own]))
            else:
                encoded = encoder.encode([texts[i] for i in rows])
            for row, vector in zip(rows, encoded, strict=True):
                known[keys[row]] = vector
            if progress:
                progress(min(start + batch, len(todo)), len(todo))
        for i, key in enumerate(keys):
            vectors[i] = known[key]
        tokens = None
        if projection is not None and all(k in known_tokens for k in keys):
            tokens = TokenVectors.of([known_tokens[k] for k in keys], projection.dimension)
        fingerprint = corpus.fingerprint()
        old = previous.fingerprint() if previous is not None else {}
        manifest = {
            "format": FORMAT_VERSION,
            "model": encoder.name,
            "dimension": int(encoder.dimension),
            "corpus": fingerprint,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "articles": len(corpus.articles),
            "sentences": len(sentences),
            "faiss": "flat" if len(sentences) <= FLAT_LIMIT else "hnsw",
        }
        words = WordIndex.build([s.text for s in sentences], [(p.first, p.last) for p in passages])
        manifest["tokens"] = tokens is not None
        index = cls({a.doc: a for a in corpus.articles}, sentences, passages, vectors, manifest, words, tokens=tokens)
        report = BuildReport(
            articles=len(corpus.articles),
            sentences=len(sentences),
            embedded=len(todo),
            seconds=time.perf_counter() - started,
            added=sorted(set(fingerprint) - set(old)) if previous is not None else [],
            removed=sorted(set(old) - set(fingerprint)),
            changed=sorted(d for d in fingerprint if d in old and old[d] != fingerprint[d]),
            skipped=[p.message for p in corpus.problems],
        )
        return index, report

    def without(self, docs: set[str]) -> SentenceIndex:
        """A copy without the given articles (no re-encoding), for held-out evaluation."""
        unknown = docs - set(self.articles)
        if unknown:
            raise ValueError(f"not in the index: {sorted(unknown)}")
        keep = [i for i, s in enumerate(self.sentences) if s.doc not in docs]
        sentences: list[Sentence] = []
        passages: list[Passage] = []
        passage_ids: dict[int, int] = {}
        for i in keep:
            s = self.sentences[i]
            if s.passage not in passage_ids:
                passage_ids[s.passage] = len(passages)
                passages.append(Passage(s.doc, s.paragraph, len(sentences), len(sentences)))
            p_id = passage_ids[s.passage]
            passages[p_id] = Passage(s.doc, s.paragraph, passages[p_id].first, len(sentences))
            sentences.append(Sentence(s.doc, s.paragraph, s.sentence, s.text, p_id))
        manifest = dict(self.manifest)
        manifest["corpus"] = {d: h for d, h in self.fingerprint().items() if d not in docs}
        articles = {d: a for d, a in self.articles.items() if d not in docs}
        words = WordIndex.build([s.text for s in sentences], [(p.first, p.last) for p in passages])
        tokens = self.tokens.subset(keep) if self.tokens is not None else None
        return SentenceIndex(articles, sentences, passages, self.vectors[keep], manifest, words, tokens=tokens)

    # --- saving and loading -----------------------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        """Write a new build folder, then switch CURRENT to it in one atomic rename.

        The caller holds the index folder's lock (bot.lifecycle), which also prunes older builds.
        """
        index_dir.mkdir(parents=True, exist_ok=True)
        build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=index_dir))
        try:
            np.save(build_dir / VECTORS, self.vectors)
            assert self.faiss_index is not None  # made in __post_init__
            faiss.write_index(self.faiss_index, str(build_dir / FAISS_FILE))
            meta = {
                "articles": [asdict(a) for a in self.articles.values()],
                "sentences": [asdict(s) for s in self.sentences],
                "passages": [asdict(p) for p in self.passages],
            }
            (build_dir / META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            self.words.save(build_dir / WORDS_FILE)
            files = [VECTORS, FAISS_FILE, META, WORDS_FILE]
            if self.tokens is not None:
                self.tokens.save(build_dir / TOKENS_FILE)
                files.append(TOKENS_FILE)
            fsync_files(build_dir, files)
            manifest = dict(self.manifest)
            manifest["checksums"] = {name: sha256_file(build_dir / name) for name in files}
            atomic_write(build_dir / MANIFEST, json.dumps(manifest, indent=2))
            atomic_write(index_dir / CURRENT, build_dir.name)
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        self.manifest = manifest
        return build_dir

    @classmethod
    def load(cls, index_dir: Path) -> SentenceIndex:
        """Load the current build, verifying every file against the manifest's checksums."""
        build_dir, manifest = read_manifest(index_dir)
        try:
            for name, digest in manifest["checksums"].items():
                if sha256_file(build_dir / name) != digest:
                    raise IndexProblem(
                        f"The index file {name} in {str(build_dir)!r} is corrupt (checksum mismatch): "
                        f"run `python -m bot index` to rebuild it."
                    )
            meta = json.loads((build_dir / META).read_text(encoding="utf-8"))
            vectors = np.load(build_dir / VECTORS)
            faiss_index = faiss.read_index(str(build_dir / FAISS_FILE))
            words = WordIndex.load(build_dir / WORDS_FILE, len(meta["sentences"]), len(meta["passages"]))
            tokens = TokenVectors.load(build_dir / TOKENS_FILE) if TOKENS_FILE in manifest["checksums"] else None
        except (OSError, KeyError, ValueError, RuntimeError, zipfile.BadZipFile) as exc:
            if isinstance(exc, IndexProblem):
                raise
            raise IndexProblem(
                f"The index in {str(index_dir)!r} is unreadable ({exc}): run `python -m bot index`."
            ) from exc
        articles = {}
        for a in meta["articles"]:
            a["paragraphs"] = tuple(a["paragraphs"])
            articles[a["doc"]] = Article(**a)
        return cls(
            articles,
            [Sentence(**s) for s in meta["sentences"]],
            [Passage(**p) for p in meta["passages"]],
            vectors,
            manifest,
            words,
            faiss_index,
            tokens,
        )


class Saved(NamedTuple):
    """The build folder CURRENT names, and its manifest."""

    build_dir: Path
    manifest: dict


def current_build(index_dir: Path) -> str:
    """The name of the build folder CURRENT points to: the one place CURRENT is read."""
    return (index_dir / CURRENT).read_text(encoding="utf-8").strip()


def read_manifest(index_dir: Path) -> Saved:
    """The current build's folder and manifest.

    Raises IndexProblem when there is no index, or it is unreadable or of another format.
    """
    try:
        name = current_build(index_dir)
    except FileNotFoundError:
        raise IndexProblem(f"No index in {str(index_dir)!r}: run `python -m bot index` to build it.") from None
    except OSError as exc:
        raise IndexProblem(
            f"The index in {str(index_dir)!r} is unreadable ({exc}): run `python -m bot index`."
        ) from exc
    build_dir = index_dir / name
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexProblem(
            f"The index in {str(index_dir)!r} is unreadable ({exc}): run `python -m bot index`."
        ) from exc
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT_VERSION:
        raise IndexProblem(
            f"The index in {str(index_dir)!r} has format {found}, this "
            f"version reads {FORMAT_VERSION}: run `python -m bot index` to rebuild it."
        )
    return Saved(build_dir, manifest)
