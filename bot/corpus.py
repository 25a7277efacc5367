"""Load articles from the corpus folder: title, front matter, prose paragraphs."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")

# Lines that are page furniture, not article prose: photo credits, share buttons, promos.
_CREDIT = re.compile(r"\b(?:PHOTOS?|PICTURES?|IMAGES?|VIDEO|GRAPHICS?|ILLUSTRATION)\s*:\s*[A-Z]")
_PROMO = re.compile(
    r"^(?:share (?:it|this)|topics?:|read more|advertisement|"
    r"branded content|sign up|subscribe|follow us|click here|download (?:the|our)|"
    r"print edition|a version of this article appeared|get (?:ST|the)'?s? newsletters?|"
    r"join (?:ST|us|our)\b.*\b(?:channel|newsletter|community)|more on this topic|listen to this article|"
    r"sources?:)(?:\b|(?<=:))",
    re.IGNORECASE,
)
# A dateline on its own: "Apr 25, 2019, 5:00 am SGT", "April 25, 2019 5.00pm"
_DATELINE = re.compile(
    r"^(?:[A-Z][a-z]{2,8}\.? \d{1,2},? \d{4}|\d{1,2} [A-Z][a-z]{2,8}\.? \d{4})"
    r"(?:,? \d{1,2}[:.]\d{2}\s*(?:am|pm)?(?: [A-Z]{2,4})?)?$",
    re.IGNORECASE,
)
# Labels that also begin real sentences ("Published in 1775, the paper ..."): furniture only
# when followed by a colon or when the line is not a sentence of more than a few words.
_LABEL = re.compile(r"^(?:published|updated|related)\b(\s*:)?", re.IGNORECASE)
_PROMO_ANYWHERE = re.compile(
    r"print edition \| subscribe|sign up now|newsletters? delivered to your inbox|"
    r"download the .* app|all rights reserved",
    re.IGNORECASE,
)
_TIME_AGO = re.compile(r"^\d+\s+(?:min|mins|minutes?|hours?|days?)\s+ago$", re.IGNORECASE)
_MD_IMAGE = re.compile(r"^!\[.*\]\(.*\)$")
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$")


class CorpusError(ValueError):
    """The corpus as a whole cannot be used (missing folder, no usable article)."""


@dataclass(frozen=True)
class Article:
    """One article: its file name inside the corpus folder, title, optional url/date, paragraphs."""

    doc: str
    title: str
    paragraphs: tuple[str, ...]
    url: str | None = None
    published: str | None = None
    sha256: str = ""


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, with a message naming it."""

    doc: str
    message: str
    unreadable: bool = False  # the file could not be read at all (I/O or permission error)


@dataclass
class Corpus:
    """The articles that loaded and the files that did not."""

    articles: list[Article] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def fingerprint(self) -> dict[str, str]:
        """Content hash of every usable article, by file name."""
        return {a.doc: a.sha256 for a in self.articles}


def _marked_furniture(text: str) -> bool:
    """Credits, share/promo lines, time stamps, images: furniture whatever their length."""
    if _CREDIT.search(text) or _PROMO.match(text) or _PROMO_ANYWHERE.search(text):
        return True
    label = _LABEL.match(text)
    if label and (label.group(1) or len(text.split()) <= 6 or not re.search(r"[.!?\"\u201d]$", text)):
        return True
    return bool(_TIME_AGO.match(text) or _MD_IMAGE.match(text) or _DATELINE.match(text))


def is_furniture(line: str) -> bool:
    """True for lines that are not article prose: credits, share/promo lines, time stamps."""
    text = line.strip()
    if not text or _marked_furniture(text):
        return True
    # A few words with no sentence punctuation: a button, label or byline, not prose.
    words = text.split()
    return len(words) <= 3 and not re.search(r"[.!?\"\u201d]$", text)


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                match = _FRONT_KEY.match(line.strip())
                if match:
                    meta[match.group(1).lower()] = match.group(2).strip().strip("'\"")
            return meta, "\n".join(lines[end + 1 :])
    return {}, text


def _clean_paragraph(block: str) -> str:
    kept = []
    for line in block.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):  # Markdown heading: a label, not a sentence to cite
            continue
        stripped = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", stripped)  # list markers
        if not is_furniture(stripped):
            kept.append(stripped)
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_article(doc: str, text: str) -> Article:
    """Parse an article's text; raises ValueError when it has no title or no prose."""
    text = _normalise(text)
    meta, body = _split_front_matter(text)
    title = meta.get("title", "").strip()
    if not title:  # the first line with text that is not page furniture (e.g. a photo credit)
        lines = body.split("\n")
        first = next((i for i, line in enumerate(lines) if line.strip() and not _marked_furniture(line.strip())), None)
        title = lines[first].strip().lstrip("#").strip() if first is not None else ""
        body = "\n".join(lines[first + 1 :]) if first is not None else ""
    if not title:
        raise ValueError(f"{doc}: the file is empty (an article needs a title on its first line)")
    paragraphs = tuple(p for p in (_clean_paragraph(b) for b in re.split(r"\n\s*\n", body)) if p)
    if not paragraphs:
        raise ValueError(f"{doc}: no article text after the title {title!r}")
    return Article(
        doc=doc,
        title=title,
        paragraphs=paragraphs,
        url=meta.get("url") or meta.get("link") or None,
        published=meta.get("published") or meta.get("date") or None,
        sha256=_digest(text),
    )


def article_files(corpus_dir: Path) -> list[Path]:
    """The article files of a corpus folder, sorted by name."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"The corpus folder {str(corpus_dir)!r} does not exist: create it and put "
            f"articles (.txt or .md) in it, or set CORPUS_DIR."
        )
    return sorted(
        p for p in corpus_dir.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.exists()))  # a dangling link: reported as unreadable
        and p.suffix.lower() in ARTICLE_SUFFIXES and not p.name.startswith(".")
    )


def load_corpus(corpus_dir: Path) -> Corpus:
    """Read every article of the folder; a bad file becomes a Problem, the rest still load."""
    corpus = Corpus()
    for path in article_files(corpus_dir):
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
            corpus.articles.append(parse_article(path.name, text))
        except UnicodeDecodeError as exc:
            corpus.problems.append(
                Problem(path.name, f"{path.name}: not UTF-8 text (byte {exc.start}); save it as UTF-8")
            )
        except OSError as exc:
            corpus.problems.append(Problem(path.name, f"{path.name}: cannot be read ({exc.strerror})", unreadable=True))
        except ValueError as exc:
            corpus.problems.append(Problem(path.name, str(exc)))
    for problem in corpus.problems:
        log.warning("skipped article: %s", problem.message)
    return corpus


def unchanged(corpus_dir: Path, fingerprint: dict[str, str]) -> bool:
    """True when the folder's article files are exactly those of `fingerprint`, with the same text.

    Reads and hashes the files without parsing them (parsing is what takes the time at start);
    any difference, unreadable file or file that would be skipped answers False.
    """
    try:
        files = article_files(corpus_dir)
        if {p.name for p in files} != set(fingerprint):
            return False
        return all(_digest(_normalise(p.read_bytes().decode("utf-8"))) == fingerprint[p.name] for p in files)
    except (OSError, UnicodeDecodeError, CorpusError):
        return False
