"""What kind of answer a question asks for, and what kinds of fact a sentence holds."""

from __future__ import annotations

import re

_YEAR_OR_DATE = re.compile(
    r"\b(?:1\d{3}|20\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+(?:century|centuries)|"
    r"jan(?:uary)?|feb(?:ruary)?|march|april|may|june|july|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|yesterday|today|tomorrow|decade|era|period)\b"
)  # searched in lower-cased text: faster than re.IGNORECASE

_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozens?|several|half|percent)\b"
)
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_WORD = re.compile(r"\w+")


_KINDS = [
    (
        "number",
        re.compile(r"\bhow (?:many|much|long|far|old|large|big|tall|high)\b|\bwhat (?:percentage|number|amount)\b"),
    ),
    ("time", re.compile(r"\bwhen\b|\bwhat (?:year|date|day|month|century|time)\b|\bin which year\b")),
    ("person", re.compile(r"\bwho(?:m|se)?\b")),
    ("place", re.compile(r"\bwhere\b|\bwhat (?:country|city|place|region|state)\b")),
    ("name", re.compile(r"\b(?:name|named|called|title)\b")),
]


def question_kind(question: str) -> str:
    """The kind of answer a question asks for: number, time, person, place, name or other."""
    q = question.lower()
    for kind, pattern in _KINDS:
        if pattern.search(q):
            return kind
    return "other"


def sentence_facts(sentence: str) -> tuple[bool, bool, frozenset[str]]:
    """What a sentence holds: a number, a date or time, and which names (capitalised words, lower-cased)."""
    names = frozenset(w.lower() for w in _PROPER.findall(sentence))
    lower = sentence.lower()
    return bool(_NUMBER.search(lower)), bool(_YEAR_OR_DATE.search(lower)), names


def asked_words(question: str) -> set[str]:
    """The question's words, lower-cased (a name the question already uses is not an answer)."""
    return {w.lower() for w in _WORD.findall(question)}
