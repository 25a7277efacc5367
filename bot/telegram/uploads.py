"""`/add`: check an uploaded article and write it into the corpus folder, atomically and safely."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from telegram import Bot
from telegram.error import TelegramError

from ..corpus import ARTICLE_SUFFIXES, parse_article
from ..files import atomic_write
from .polling import raw_call

MAX_NAME = 80
MAX_QUOTED = 60  # characters of an upload's title an error message may show
SAFE_PATH = re.compile(r"[A-Za-z0-9_.~-]+(?:/[A-Za-z0-9_.~-]+)*")


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


def file_url(base_file_url: str, file_path: object) -> str:
    """Where to download a file getFile described; UploadError for a path that is not a plain relative one.

    Only HTTP from TELEGRAM_BASE_FILE_URL: an absolute path, '..', a URL or a backslash in
    file_path (a hostile or broken Bot API endpoint) never leads to a read of the bot's own disk.
    """
    if (
        not isinstance(file_path, str)
        or not SAFE_PATH.fullmatch(file_path)
        or any(part in (".", "..") for part in file_path.split("/"))
    ):
        raise UploadError("Telegram gave an unusable place to download that file from; please send it again.")
    return f"{base_file_url.rstrip('/')}/{quote(file_path)}"


async def download(bot: Bot, file_id: str, max_bytes: int) -> bytes:
    """The file's bytes, fetched over HTTP (getFile, then a GET under TELEGRAM_BASE_FILE_URL)."""
    try:
        described = await raw_call(bot, "getFile", {"file_id": file_id})
        file_path = described.get("file_path") if isinstance(described, dict) else None
        size = described.get("file_size") if isinstance(described, dict) else None
        if isinstance(size, int) and size > max_bytes:
            raise UploadError(f"That file is {size:,} bytes; the limit is {max_bytes:,} bytes.")
        url = file_url(bot.base_file_url, file_path)
        return await bot.request.retrieve(url)
    except TelegramError:
        raise UploadError("I could not download that file from Telegram; please send it again.") from None


def short_title(text: str) -> str:
    """An article's first line as an error message may show it: printable, short."""
    first = text.strip().split("\n", 1)[0] if text.strip() else ""
    shown = "".join(ch if ch.isprintable() else " " for ch in first)
    shown = " ".join(shown.split())
    return shown if len(shown) <= MAX_QUOTED else shown[: MAX_QUOTED - 1].rstrip() + "\u2026"


def decode_article(name: str, content: bytes, max_bytes: int) -> str:
    """The upload as text, checked to be UTF-8 with a title and some prose."""
    if len(content) > max_bytes:
        raise UploadError(f"That file is {len(content):,} bytes; the limit is {max_bytes:,} bytes.")
    if b"\x00" in content:  # UTF-16/32 without a BOM decodes as "UTF-8" full of NULs; binaries too
        raise UploadError(
            "That file is not UTF-8 text (it has NUL bytes: UTF-16?); save it as UTF-8 and send it again."
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError("That file is not UTF-8 text; save it as UTF-8 and send it again.") from None
    try:
        parse_article(name, text)
    except ValueError:
        title = short_title(text)
        if not title:
            raise UploadError(
                "That file is empty: an article needs a title on its first line, then its text."
            ) from None
        raise UploadError(
            f"That file has no article text after its title ({title!r}): put the title on the first line, "
            "then the text."
        ) from None
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
