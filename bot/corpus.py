"""Load articles from the corpus folder: title, front matter, prose paragraphs."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")

# Page furniture is recognised by its shape, never by the strings of particular articles:
# - a credit: a line ending in an upper-case label and source ("... PHOTO: AGENCY"), a byline or
#   production credit ("By Anna Berg, Baltic Wire.", "(Reporting by ...; Editing by ...)");
# - a fragment: a line standing alone, without sentence punctuation at its end, of a few
#   words (buttons, section labels, bylines, "Label: teaser" promos), or a "Label: Title Case"
#   link even with a full stop;
# - a call to action: a sentence addressed to the reader about the publication itself
#   (newsletters, apps, channels, subscriptions, this article, "follow/email/tell us",
#   "click here", an address to write to);
# - stamps: dates and times alone on a line, "N hours ago", "Published/Updated ..." labels,
#   images, copyright notices.
_CREDIT = re.compile(r"(?:^|[.!?]\s+)(?:[A-Z]{2,}\s+)?[A-Z]{4,}\s*:\s*[A-Z][A-Z0-9 ,/&.'\u2019-]*$")
_END = re.compile(r"[.!?\"\u201d\u2019)\]]$")  # how a sentence (or a quote, or a bracket after one) ends
_LABELLED = re.compile(r"^[A-Z][\w'\u2019]*(?:\s+[\w'\u2019]+)?\s*:\s*\S")  # "Label: ..." (one or two words)
_READER = re.compile(
    r"\b(?:newsletters?|inbox|app|channel|subscri(?:be|ption)s?|podcasts?|notifications?|"
    r"e-?paper|print edition|breaking news alerts?|live ?blog)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(?:join|subscribe|sign up|follow|download|get|click|tap|read|listen|watch|register|install|support)\b",
    re.IGNORECASE,
)
_SELF_REFERENCE = re.compile(r"\bthis (?:article|page)\b", re.IGNORECASE)
# a call to action that names the publication as "us" ("Follow us on X", "Have a tip? Email us at ...")
# or a link ("Click here"); never a quoted or reported appeal ("Tell us the truth, he said.")
_TO_US = re.compile(
    r"(?:^|[.!?]\s+)(?:F(?i:ollow)|E(?i:-?mail)|C(?i:ontact)|T(?i:ell)|S(?i:end)|W(?i:rite to)|M(?i:essage)|"
    r"T(?i:ext)|C(?i:all))\s+(?i:us)\b|"
    r"\b(?i:click|tap|sign up|subscribe|register|read more|find out more|learn more)\s+(?i:here)\b|"
    r"^(?i:scroll down|continue reading|(?:the )?story continues (?:below|after))\b|"
    r"(?:^|[.!?]\s+)(?:L(?i:og)|S(?i:ign)) (?i:in)\.?$|"  # "Already a subscriber? Log in."
    r"^(?:R(?i:ead)|W(?i:atch)|L(?i:isten)|S(?i:ee))\b[^.!?]{0,60}\b(?i:here)\.?$|"  # "Read the full story here."
    r"^F(?i:ollow)\s+(?:@\w|[^.!?]{0,40}\bon (?:Twitter|X|Facebook|Instagram|LinkedIn|TikTok|Telegram|Threads|Bluesky)\b)"
)
# a picture's caption, told by the credit it ends with: "... (AP Photo/Evan Vucci, File)",
# "... Photo: AFP", "(Photo: Reuters)"; the upper-case "PHOTO: REUTERS" is _CREDIT's
_CAPTION = re.compile(
    r"(?:^|\s)\(?(?:[A-Z][\w&.'\u2019-]*\s+)?(?:Photo|Photograph|Picture|Image|Video)s?\s*[:/]\s*"
    r"[A-Z][^()]{0,60}\)?$"
)
_REPORTED = re.compile(r"\b(?:said|says|told|asked|shouted)\b")
# "Contact the author at jane@example.com": an address to write to, not prose that mentions one
_WRITE_TO = re.compile(
    r"^(?:C(?i:ontact)|E(?i:-?mail)|W(?i:rite to)|S(?i:end)|R(?i:each))\b[^.!?]*[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_RIGHTS = re.compile(r"\u00a9|\ball rights reserved\b|\bcopyright (?:\u00a9 ?)?\d{4}\b", re.IGNORECASE)
# a credit or byline: "(Reporting by Anna Berg; Editing by Tom Lee)", "Additional reporting by Ali
# Khan in Dubai.", "By Anna Berg, Baltic Wire.": a credit word and "by", then names; its words in
# lower case are all credit words ("Reporting by the BBC showed ..." is a sentence)
_CREDITED = re.compile(
    r"^\(?(?i:(?:(?:additional|further)\s+)?(?:reporting|writing|editing|research|photos?|graphics|video)\s+)?"
    r"(?i:by)\s+[A-Z]"
)
_CREDIT_WORDS = frozenset(
    "by and in from at of the with additional further reporting writing editing research photo photos "
    "graphics video".split()
)
_CONTRIBUTED = re.compile(r"\bcontributed (?:reporting )?to this (?:report|story|article)\b", re.IGNORECASE)
_SMALL_WORDS = frozenset("a an the of and for in on to with at by".split())
_MONTH_START = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)"
_MONTH = rf"{_MONTH_START}[a-z]*\.?"
_DATE = rf"(?:{_MONTH} \d{{1,2}},? \d{{4}}|\d{{1,2}} {_MONTH} \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}})"
# A date (and time) alone on a line: "Apr 25, 2019, 5:00 am SGT", "25 April 2019"
_STAMP = re.compile(rf"^{_DATE}(?:,? \d{{1,2}}[:.]\d{{2}}\s*(?:am|pm)?(?: [A-Z]{{2,4}})?)?$", re.IGNORECASE)
# Labels that also begin real sentences ("Published in 1775, the paper ..."): furniture only
# when followed by a colon or when the line is not a sentence of more than a few words.
_LABEL = re.compile(r"^(?:published|updated|related)\b(\s*:)?", re.IGNORECASE)
_TIME_AGO = re.compile(r"^\d+\s+(?:min|mins|minutes?|hours?|days?)\s+ago$", re.IGNORECASE)
_MD_IMAGE = re.compile(r"^!\[.*\]\(.*\)$")
FRAGMENT_WORDS = 12  # a line without sentence punctuation of at most this many words is no sentence
# A dateline opening an article: an upper-case place, then date and agency fields or a dash:
# "PLACE, Apr 25, 2019, Agency. Text", "PLACE (Agency) - Text", "PLACE \u2014 Text"
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][A-Z'\u2019.-]{2,}(?:\s+[A-Z][A-Z'\u2019.-]+){0,3})"
    # a field ends at a full stop, except an abbreviated month's ("WASHINGTON, Jan. 3 (AP) - ...")
    rf"(?P<fields>(?:\s*,\s*(?:(?i:{_MONTH_START})\.\s*\d{{1,2}}\b[^,.;:\u2014\u2013()]{{0,20}}|"
    r"[^,.;:\u2014\u2013()]{1,30})){0,4})"
    r"(?:\s*\((?P<agency>[A-Z][^()]{0,30})\))?"
    r"\s*(?P<end>\.|:|\u2014|\u2013|--?)\s+(?=[\"\u201c\u2018'A-Z0-9])"
)
_DATE_FIELD = re.compile(rf"^{_DATE}$", re.IGNORECASE)
# a day without its year, as wire datelines give it: "LONDON, April 25 (Reuters) - ..."
_DAY_FIELD = re.compile(rf"^(?:{_MONTH} \d{{1,2}}|\d{{1,2}} {_MONTH})$", re.IGNORECASE)
_NAME_FIELD = re.compile(r"^[A-Z][\w&'\u2019.-]*(?:\s+[A-Z][\w&'\u2019.-]*){0,3}$")
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
    place: str | None = None  # from the dateline
    agency: str | None = None  # the news agency or publication (dateline, or front matter `source`)


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


def _credit_line(text: str) -> bool:
    """A byline or production credit: a credit word and "by", then names (and places), nothing else."""
    if not _CREDITED.match(text) or not text.lstrip("(")[:1].isupper():  # not a wrapped line's "by ..."
        return False
    words = re.findall(r"[\w'\u2019-]+", text)
    return len(words) <= 30 and all(w[0].isupper() or w.lower() in _CREDIT_WORDS for w in words)


def _title_teaser(text: str) -> bool:
    """A "Label: A Headline In Title Case" line (a link to another page), not "The photo: a crowd ..."."""
    if not _LABELLED.match(text):
        return False
    words = re.findall(r"[\w'\u2019-]+", text.split(":", 1)[1])
    return 0 < len(words) <= 12 and all(w[0].isupper() or w[0].isdigit() or w in _SMALL_WORDS for w in words)


def _marked_furniture(text: str) -> bool:
    """Credits, calls to action, stamps, images: furniture wherever they stand and whatever their length."""
    if _CREDIT.search(text) or _CAPTION.search(text) or _RIGHTS.search(text):
        return True
    if _credit_line(text) or _CONTRIBUTED.search(text):
        return True
    short = len(text.split()) <= 30
    if short and (_SELF_REFERENCE.search(text) or (_IMPERATIVE.match(text) and _READER.search(text))):
        return True
    if short and (_TO_US.search(text) or _WRITE_TO.match(text)) and not _REPORTED.search(text):
        return True
    if _title_teaser(text):
        return True
    label = _LABEL.match(text)
    if label and (label.group(1) or len(text.split()) <= 6 or not _END.search(text)):
        return True
    return bool(_TIME_AGO.match(text) or _MD_IMAGE.match(text) or _STAMP.match(text))


def _fragment(text: str) -> bool:
    """A line without sentence punctuation at its end that is a label, button or teaser, not prose."""
    words = len(text.split())
    if _END.search(text) or (text.endswith(":") and words >= 5):  # a sentence, or one introducing a quote
        return False
    return words <= FRAGMENT_WORDS or (bool(_LABELLED.match(text)) and len(text.split()) <= 25)


def is_furniture(line: str) -> bool:
    """True for a line standing on its own that is not article prose (credits, promos, stamps, labels)."""
    text = line.strip()
    return not text or _marked_furniture(text) or _fragment(text)


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
    lines = []
    for line in block.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):  # Markdown heading: a label, not a sentence to cite
            continue
        stripped = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", stripped)  # list markers
        if stripped:
            lines.append(stripped)
    if len(lines) == 1:
        return "" if is_furniture(lines[0]) else re.sub(r"\s+", " ", lines[0])
    # The lines of a wrapped paragraph may end without punctuation: only a line of a very few
    # words, standing between sentences, counts as a label there.
    kept = []
    for i, line in enumerate(lines):
        alone = (i == 0 or _END.search(lines[i - 1]) is not None) and (
            i == len(lines) - 1 or not lines[i + 1][:1].islower()
        )
        if not (_marked_furniture(line) or (alone and len(line.split()) <= 3 and _fragment(line))):
            kept.append(line)
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


@dataclass(frozen=True)
class Dateline:
    """Where, when and by whom an article was filed, from the dateline that opens it."""

    place: str
    date: str | None = None  # ISO date when it could be read
    agency: str | None = None


def split_dateline(paragraph: str) -> tuple[Dateline | None, str]:
    """The dateline opening a paragraph ("PLACE, date, Agency. Text", "PLACE (Agency) - Text"),
    and the paragraph without it; (None, paragraph) when it has none."""
    match = _DATELINE.match(paragraph)
    if not match:
        return None, paragraph
    fields = [f.strip() for f in match.group("fields").split(",") if f.strip()]
    day = bool(fields) and _DAY_FIELD.match(fields[-1]) is not None
    if day:  # a day without its year ends the fields ("LONDON, April 25 (Reuters) - "): no date to keep
        fields = fields[:-1]
    date, at = None, len(fields)
    for width in (2, 1):  # "Apr 25, 2019" spans two comma-separated fields
        for start in range(len(fields) - width + 1):
            if _DATE_FIELD.match(", ".join(fields[start : start + width])):
                date, at = _iso_date(", ".join(fields[start : start + width])), start
                fields = fields[:start] + ["\0"] * 1 + fields[start + width :]
                break
        if date:
            break
    before, after = fields[:at], [f for f in fields[at + 1 :]] if date else []
    if not date:
        before = fields
    if any(not _NAME_FIELD.match(f) for f in before + after) or len(after) > 1 or len(before) > 2:
        return None, paragraph  # a field that is neither a date nor a name: prose, not a dateline
    agency = match.group("agency") or (after[0] if after else None)
    dash = match.group("end") in ("\u2014", "\u2013", "-", "--")
    if before and not date and not dash and agency is None:  # "PLACE, Agency." without a date
        agency, before = before[-1], before[:-1]
    if not (fields or day or agency or dash):
        return None, paragraph  # "NASA. The ..." is not a dateline
    place = ", ".join([match.group("place").title(), *before])
    return Dateline(place, date, agency), paragraph[match.end() :]


def _iso_date(text: str) -> str | None:
    from datetime import datetime

    text = re.sub(r"\s+", " ", text.replace(".", "")).strip()
    for fmt in ("%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_article(doc: str, text: str) -> Article:
    """Parse an article's text; raises ValueError when it has no title or no prose."""
    text = _normalise(text)
    if "\x00" in text:  # a binary file (or UTF-16) that happens to decode as UTF-8
        raise ValueError(f"{doc}: not a text file (it holds NUL bytes); save the article as UTF-8 text")
    meta, body = _split_front_matter(text)
    title = meta.get("title", "").strip()
    if not title:  # the first line with text that is not page furniture (e.g. a photo credit)
        lines = body.split("\n")
        first = next((i for i, line in enumerate(lines) if line.strip() and not _marked_furniture(line.strip())), None)
        title = lines[first].strip().lstrip("#").strip() if first is not None else ""
        body = "\n".join(lines[first + 1 :]) if first is not None else ""
    if not title:
        raise ValueError(f"{doc}: the file is empty (an article needs a title on its first line)")
    paragraphs = [p for p in (_clean_paragraph(b) for b in re.split(r"\n\s*\n", body)) if p]
    if not paragraphs:
        raise ValueError(f"{doc}: no article text after the title {title!r}")
    dateline, paragraphs[0] = split_dateline(paragraphs[0])
    if not paragraphs[0]:
        del paragraphs[0]
    if not paragraphs:
        shown = title if len(title) <= 60 else title[:57] + "..."
        raise ValueError(f"{doc}: no article text after the title {shown!r}; put the paragraphs below the title")
    return Article(
        doc=doc,
        title=title,
        paragraphs=tuple(paragraphs),
        url=meta.get("url") or meta.get("link") or None,
        published=meta.get("published") or meta.get("date") or (dateline.date if dateline else None),
        sha256=_digest(text),
        place=dateline.place if dateline else None,
        agency=meta.get("source") or (dateline.agency if dateline else None),
    )


def article_files(corpus_dir: Path) -> list[Path]:
    """The article files of a corpus folder, sorted by name."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"The corpus folder {str(corpus_dir)!r} does not exist: create it and put "
            f"articles (.txt or .md) in it, or set CORPUS_DIR."
        )
    return sorted(
        p
        for p in corpus_dir.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.exists()))  # a dangling link: reported as unreadable
        and p.suffix.lower() in ARTICLE_SUFFIXES
        and not p.name.startswith(".")
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
    for problem in corpus.problems:  # said once, by whoever reports the build (BuildReport.skipped)
        log.debug("skipped article: %s", problem.message)
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
