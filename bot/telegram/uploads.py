"""`/add`: check an uploaded article and write it into the corpus folder, atomically and safely."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..corpus import ARTICLE_SUFFIXES, parse_article
from ..files import atomic_write

MAX_NAME = 80


class UploadError(ValueError):
    """An upload that cannot become an article; the message tells the admin why."""


@dataclass(frozen=True)
class Saved:
    """Where an upload was written, and whether it replaced an article of the same name."""

    name: str
    replaced: bool


def suffix_of(file_name: str | None) -> str:
    """The lower-case suffix of an upload's file name ('' when none)."""
    return PurePosixPath((file_name or "").replace("\\", "/")).suffix.lower()


def check_upload(file_name: str | None, size: int | None, max_bytes: int) -> None:
    """Refuse files that are not .txt/.md or that are too big, before downloading them."""
    if suffix_of(file_name) not in ARTICLE_SUFFIXES:
        raise UploadError("Only .txt and .md files can be added as articles.")
    if size is not None and size > max_bytes:
        raise UploadError(f"That file is {size:,} bytes; the limit is {max_bytes:,} bytes.")


def safe_name(file_name: str | None, content: bytes) -> str:
    """A plain ASCII base name ending in .txt or .md, whatever the uploaded name was."""
    raw = (file_name or "").replace("\\", "/")
    base = PurePosixPath(raw).name  # drops directories, absolute paths and '..' parts
    suffix = suffix_of(base) if suffix_of(base) in ARTICLE_SUFFIXES else ".txt"
    stem = base[: -len(suffix)] if base.lower().endswith(suffix) else base
    stem = "".join(
        "-" if unicodedata.category(ch)[0] in "CZ" else ch for ch in unicodedata.normalize("NFKD", stem)
    )  # control, format and space characters become separators; accents are dropped below
    stem = stem.encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_.")[:MAX_NAME].strip("-_")
    if not stem:
        stem = "article-" + hashlib.sha256(content).hexdigest()[:8]
    return stem + suffix


def decode_article(name: str, content: bytes, max_bytes: int) -> str:
    """The upload as text, checked to be UTF-8 with a title and some prose."""
    if len(content) > max_bytes:
        raise UploadError(f"That file is {len(content):,} bytes; the limit is {max_bytes:,} bytes.")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError("That file is not UTF-8 text; save it as UTF-8 and send it again.") from None
    try:
        parse_article(name, text)
    except ValueError as exc:
        raise UploadError(str(exc)) from None
    return text


def save_article(corpus_dir: Path, name: str, text: str) -> Saved:
    """Write the article as corpus_dir/name in one atomic rename (replacing one of that name)."""
    folder = corpus_dir.resolve()
    target = (folder / name).resolve()
    if target.parent != folder or target.name != name:
        raise UploadError(f"Refusing to write outside the corpus folder: {name!r}")
    replaced = target.exists()
    atomic_write(target, text)
    return Saved(name, replaced)
