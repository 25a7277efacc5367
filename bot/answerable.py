"""Does a sentence hold what a question asks for? The asked kind of fact and the question's focus.

A question asks for a kind of fact (an age, an amount of money, a number, a date, a duration,
a person, a place, a name, a reason, yes or no) about its focus (the coach's *age*, the
commander's *name*). A sentence can only answer it when it holds a fact of that kind that the
question does not give already, and mentions what the question is about. These rules know
English question shapes and general English word frequencies (wordfreq), never a corpus, so
they mean the same over one article or thousands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from .words import STOPWORDS, fold, terms

# kinds of fact a question asks for, searched in the lower-cased question: the one found first in
# it decides, and of those found at the same place the earlier in this list ("how much money"
# before "how much"). A question word after the first opens a clause and decides nothing: "Who was
# mayor when ...?" asks for a person, "What was she wearing when ...?" for no date.
# A yes/no question is recognised by its first word: "Was he there when ...?" asks no date.
_ASKS = [
    (
        "yes_no",
        re.compile(r"^(?:is|are|was|were|did|does|do|has|have|had|can|could|will|would|should|shall|may|might)\b"),
    ),
    ("age", re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b|\bage of\b")),
    (
        "money",
        re.compile(
            r"\bhow much (?:money|cash|did \w+ (?:pay|cost|owe|earn|raise|spend|lose|win)|does \w+ cost|is \w+ worth)\b|"
            r"\bhow much\b.*\b(?:pay|paid|cost|owe|owed|worth|price|money|fine|fined|budget|spend|spent|earn|"
            r"raise|raised|lose|lost|win|won|prize|salary|fee|funding|tax|taxes)\b|"
            r"\bwhat (?:was |is |will be )?the (?:cost|price|fine|budget|salary|fee)\b"
        ),
    ),
    # "How much more likely ...?", "How many times bigger ...?": a ratio ("twice", "three times")
    (
        "ratio",
        re.compile(r"\bhow (?:much|many times) (?:more|less|bigger|smaller|higher|lower|larger|greater|likelier)\b"),
    ),
    ("duration", re.compile(r"\bhow long\b|\bfor how many (?:years|months|weeks|days|hours)\b")),
    (
        "number",
        re.compile(
            r"\bhow (?:many|much|far|large|big|tall|high|deep|wide|heavy|fast)\b|"
            r"\bwhat (?:percentage|percent|proportion|share|number|amount|fraction)\b"
        ),
    ),
    ("clock", re.compile(r"\bwhat time\b|\bat what hour\b")),
    ("date", re.compile(r"\bwhen\b|\b(?:what|which) (?:year|date|day|month|century|decade)\b|\bin which year\b")),
    (
        "person",
        re.compile(r"\bwho(?:m|se)?\b|\b(?:which|what) (?:person|man|woman|official|leader|minister|senator)\b"),
    ),
    (
        "place",
        re.compile(
            r"\bwhere\b|\b(?:what|which) (?:\w+ ){0,2}?(?:country|city|town|place|region|state|province|island|"
            r"port|capital|continent|village|area|venue|hospital|museum|university|school|prison|station)\b"
        ),
    ),
    # "Which newspaper / institute / team ...": one of several named things
    ("entity", re.compile(r"^(?:(?:in|at|from|to|for|by|on|with|of) )?which\b")),
    ("name", re.compile(r"\b(?:name|named|called|title)\b")),
    ("reason", re.compile(r"\bwhy\b|\bfor what reason\b|\bwhat (?:caused|led to|prompted)\b")),
]
_QUESTION_WORDS = "what|which|who|whom|whose|where|when|why|how"
_QUESTION_WORD = re.compile(rf"\b(?:{_QUESTION_WORDS})\b")
TYPED = frozenset({"age", "money", "ratio", "duration", "number", "clock", "date", "person", "place", "name", "entity"})
# kinds recognised reliably enough in a sentence that an answer without one is declined outright
REQUIRED = frozenset({"age", "money", "ratio", "duration", "number", "clock"})

_NUMBER = re.compile(
    r"\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fifteen|"
    r"twenty|thirty|forty|fifty|sixty|hundred|hundreds|thousand|thousands|million|millions|billion|"
    r"billions|dozen|dozens|several|half|a third|a quarter)\b",
)
_RATIO = re.compile(
    r"\b(?:twice|thrice|doubled?|tripled?|quadrupled?|halved|"
    r"(?:\d[\d,.]*|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty|hundred|thousand|several|many)"
    r"(?: times|[\s-]?fold))\b|%",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(?:1[5-9]\d\d|20\d\d)s?$")
_MONEY = re.compile(
    r"[$\u00a3\u20ac\u00a5]|\b(?:US|S|A|C|HK|NZ)\$|\b(?:dollars?|euros?|pounds?|yen|yuan|rupees?|francs?|"
    r"kronor|krona|kroner|roubles?|rubles?|pesos?|cents?|pence|usd|eur|gbp)\b",
    re.IGNORECASE,
)
_DURATION = re.compile(
    r"\b(?:\d[\d,.]*|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|forty|fifty|several|few|many|hundreds of|thousands of)[\s-]+(?:\w+[\s-]+)?"
    r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries|nights?)\b|"
    r"\b(?:since|until|for) (?:\d|the (?:past|last))",
    re.IGNORECASE,
)
_AGE = re.compile(
    r"\b\d{1,3}[\s-]*(?:years?|months?|weeks?)[\s-]*old\b|\baged? (?:of )?\d{1,3}\b|\bage of\b|"
    r"\b[A-Z][\w'-]+,\s*\d{1,3},|\(\d{1,3}\)|\b\d{1,3}[\s-]*year[\s-]*old\b|\bin (?:his|her|their) (?:teens|\d0s)\b"
)
_MONTH = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|march|april|may|june|july|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|"
    r"nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|"
    r"today|tomorrow|tonight|spring|summer|autumn|fall|winter|century|centuries|decade)\b|"
    r"\b(?:last|next|this|that|earlier|later) (?:year|month|week|day)\b|\b\d+\s+(?:years?|months?|days?) ago\b"
)
_CLOCK = re.compile(
    r"\b\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b|\b(?:noon|midnight|o'clock)\b", re.IGNORECASE
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'\u2019-]*")
_REASON = re.compile(
    r"\b(?:because|due to|owing to|as a result|in order to|so that|since|after|reason|caused|cause|"
    r"led to|amid|over|following|for)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


# a word at most this rare (wordfreq Zipf 3 or more: "Italy", "Bitcoin") is one that English
# text commonly uses; a misspelt or very rare name is rarer
WELL_KNOWN = 5.0


@dataclass(frozen=True)
class Ask:
    """What a question asks for: the kind of fact, its content words and how rare each is."""

    kind: str
    terms: tuple[str, ...]  # distinct content words, stemmed
    rarity: tuple[float, ...]  # per term: how much it says (rare words say more), from wordfreq
    numbers: frozenset[str]  # numbers the question gives (not an answer)
    names: frozenset[str]  # capitalised words the question uses, lower-cased (not an answer)
    focus: tuple[bool, ...] = ()  # per term: not a name (what is asked about the people and things named)

    @property
    def typed(self) -> bool:
        return self.kind in TYPED

    @property
    def required(self) -> bool:
        """An answer must hold a fact of this kind (a number, date, amount, ...) to be one."""
        return self.kind in REQUIRED

    def rare_terms(self, focus: bool) -> list[tuple[str, float]]:
        """(term, rarity) of the focus terms (`focus`), or of the names."""
        return [(t, r) for t, r, f in zip(self.terms, self.rarity, self.focus, strict=True) if f == focus]


# the rarity of a word the English word list does not know
UNKNOWN_RARITY = 8.0


@lru_cache(maxsize=65536)
def rarity(word: str) -> float:
    """How much a word says, from its general English frequency: 8 minus its Zipf value, at least 0.5
    (\"the\" ~0.5, \"summit\" ~4, a name the list does not know 8)."""
    from wordfreq import zipf_frequency

    return max(
        0.5, UNKNOWN_RARITY - zipf_frequency(word, "en", wordlist="small")
    )  # small: 4 MB in memory, "best" 37 MB


# the word a direct question opens with: a question word, or the verb of a yes/no question
_OPENING = rf"(?:{_QUESTION_WORDS}|is|are|was|were|did|does|do|has|have|had|will|would|can|could|should)\b"
# a question asked indirectly, as people ask in a chat: "Can you tell me who ...?", "Thanks! Do
# you know when ...?", "According to the article, where ...?" (greetings, a reference to the
# articles, a frame, then the word a direct question opens with)
_FRAME = re.compile(
    r"^(?:(?:(?:hey|hi|hello|ok|okay|so|please|thanks|thank you|thx|sorry|excuse me|and|also|well)"
    r"(?:\s+(?:there|bot|@\w+))?|@\w+)\b[,!.]?\s+|(?:(?:a )?quick question|one more(?: question)?|question)\s*:\s*)*"
    r"(?:(?:according to|in|from|based on) (?:the|this|that|these|those) (?:articles?|news|reports?|stor(?:y|ies))\b"
    r"[,:]?\s+)?"
    r"(?:(?:(?:can|could|would|will) (?:you|u) (?:please )?(?:tell|show) me|(?:do|does) (?:you|u|anyone|anybody) "
    r"(?:happen to )?know|(?:do you have )?any idea|i(?:'d| would) like to know|i (?:want|need) to know|"
    r"i wonder(?:ed)?|(?:please )?tell me)\b[,:]?\s+)?"
    rf"(?={_OPENING})",
    re.IGNORECASE,
)
# an English question word, auxiliary verb or a few words as English ("the", "of", "and"):
# other languages' questions seldom have one
_ENGLISH = re.compile(rf"\b{_OPENING}|\b(?:the|of|and|with|from|about|that|this)\b", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]+")


def _latin(ch: str) -> bool:
    return ch.isascii() or "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff"


def in_english(question: str) -> bool:
    """Whether a question reads as English, as the encoder and these rules need: mostly Latin
    letters, and an English question word, auxiliary verb or "the", or else at most one word that
    English does not use, and not a third of the words (a misspelling; names after the first word
    are capitalised). "Wo betrat Kim einen roten Teppich?" is not; "kims hat colour?" is."""
    if not question.isascii():
        letters = [ch for ch in question if ch.isalpha()]
        if 2 * sum(map(_latin, letters)) < len(letters):
            return False
    if _ENGLISH.search(question):
        return True
    lower = [w.lower() for n, w in enumerate(_WORDS.findall(question)) if n == 0 or w.islower()]
    unknown = [w for w in lower if rarity(w) >= UNKNOWN_RARITY]
    return len(unknown) < 2 or 3 * len(unknown) < len(lower)


# where a question begins after sentences that are not questions ("I read the report. Who ...?")
_QUESTION_START = re.compile(rf"(?<=[.!?])\s+(?={_OPENING})", re.IGNORECASE)
# a word of the question that may refer to what was written before it
_REFERS_BACK = re.compile(r"\b(?:he|she|it|they|him|her|them|his|hers|its|their|theirs|this|that|these|those)\b", re.I)


# what people type after a question in a chat: chat words (in lower case: "LoL" is a name), ",
# thanks" (after a comma: "Thank You" may be a title), smileys and emoji ("where did he go pls",
# "Who won, thanks :)", "Why? 🤔"); looked for in a question's last _TAIL_CHARS characters
_CHAT_WORDS = ("pls", "plz", "thx", "lol")
_THANKS_WORDS = ("please", "thanks", "thank you")
_CHAT_TAIL = re.compile(
    rf"(?:[\s,]*\b(?:{'|'.join(_CHAT_WORDS)})\b[.!]*|\s*,\s*(?i:{'|'.join(_THANKS_WORDS)})\b[.!]*|"
    r"\s*[:;]-?[()DPp](?!\w)|\s*[\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]+)+$"
)
_TAIL_CHARS = 40
# a sentence after the question that thanks or muses: "Thanks, bot!", "I wonder."
_THANKS = re.compile(
    rf"\s*(?:{'|'.join(_THANKS_WORDS + _CHAT_WORDS)}|many thanks|cheers|i wonder|just curious)\b[^?]*$", re.I
)


def _without_tail(question: str) -> str:
    """The question without what follows it in a chat: chat words and emoji after it, and a
    last sentence of thanks ("Where did he go? Thanks!" -> "Where did he go?")."""
    typed = question.rstrip("?!. ")
    tail = None
    if not typed[-1:].isalnum() or typed.lower().endswith(_CHAT_WORDS + _THANKS_WORDS):  # else it cannot end in one
        tail = _CHAT_TAIL.search(typed, max(0, len(typed) - _TAIL_CHARS))
    core = (typed[: tail.start()] if tail else typed).rstrip("?!. ")
    end = core.rfind("?")
    if end >= 0 and _THANKS.match(core[end + 1 :]):  # not "Did he win? By how much?"
        core = core[:end].rstrip("?!. ")
    if not core or (core == typed and not question.endswith("??")):
        return question  # nothing but chat words, or nothing after the question
    return core + "?"


def direct(question: str) -> str:
    """The question asked directly: "Can you tell me who won?" -> "Who won?", without the
    sentences written before it ("I read the report. Who won?" -> "Who won?") or the chat
    words, thanks and emoji after it ("Who won? Thanks! 🙂" -> "Who won?"); any other question
    as it is. It opens with a capital where the question was typed with one."""
    asked = question
    question = _without_tail(question)
    if not _FRAME.match(question):  # it opens with neither a question word nor a frame
        start = _QUESTION_START.search(question)
        # ... and what is written before the question is not what "it" or "they" refers to
        if start and not _REFERS_BACK.search(question, start.end()):
            question = question[start.end() :]
    m = _FRAME.match(question)
    if m is not None:
        question = question[m.end() :]
    if question == asked:
        return asked
    return question[0].upper() + question[1:] if asked[0].isupper() else question


def asked_kind(question: str) -> str:
    """The kind of fact a question asks for (see _ASKS): that of the question phrase found first, or "other"."""
    q = question.lower()
    first = _QUESTION_WORD.search(q)
    found = [
        (m.start(), n, kind)
        for n, (kind, pattern) in enumerate(_ASKS)
        if (m := pattern.search(q))
        # a question word after the question's first one opens a clause ("... when she arrived?")
        and not (first and m.start() > first.start() and _QUESTION_WORD.match(q, m.start()))
    ]
    return min(found)[2] if found else "other"


def parse(question: str) -> Ask:
    """What the question asks for."""
    question = fold(question)
    surface: dict[str, str] = {}
    for word in _WORD.findall(question.lower()):
        if word not in STOPWORDS:
            stem = terms(word)
            if stem:
                surface.setdefault(stem[0], word)
    names = frozenset(w.lower() for w in _CAPITALISED.findall(question[1:]))
    return Ask(
        kind=asked_kind(question),
        terms=tuple(surface),
        rarity=tuple(rarity(w) for w in surface.values()),
        numbers=frozenset(_numbers(question)),
        names=names,
        focus=tuple(w not in names for w in surface.values()),
    )


def _numbers(text: str) -> list[str]:
    return [n.strip(",.").lower() for n in _NUMBER.findall(text)]


@dataclass(frozen=True)
class Facts:
    """The kinds of fact one sentence holds (worked out once per sentence and kept)."""

    numbers: frozenset[str]  # numbers, years excluded
    years: frozenset[str]
    dated: bool  # a month, weekday or relative date
    money: bool
    ratio: bool  # "twice", "three times", "tenfold", a percentage
    duration: bool
    age: bool
    clock: bool
    names: frozenset[str]  # capitalised words after the first, lower-cased
    reason: bool


class LazyFacts:
    """The kinds of fact one sentence holds, as Facts, each worked out when first read and then
    kept: `holds` reads one to three of them for a question, so a sentence that is a candidate
    for a few questions costs a few regular-expression searches, not all of them."""

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence

    def __getattr__(self, name: str) -> Any:  # only called for a fact not worked out yet
        try:
            rule = _FACT_RULES[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None
        value = rule(self)
        setattr(self, name, value)
        return value


_FACT_RULES: dict[str, Callable[[LazyFacts], Any]] = {
    "all_numbers": lambda f: _numbers(f.sentence),
    "numbers": lambda f: frozenset(n for n in f.all_numbers if not _YEAR.match(n)),
    "years": lambda f: frozenset(n for n in f.all_numbers if _YEAR.match(n)),
    "dated": lambda f: bool(_MONTH.search(f.sentence.lower())),
    "money": lambda f: bool(f.all_numbers) and bool(_MONEY.search(f.sentence)),
    "ratio": lambda f: bool(_RATIO.search(f.sentence)),
    "duration": lambda f: bool(_DURATION.search(f.sentence)),
    "age": lambda f: bool(_AGE.search(f.sentence)),
    "clock": lambda f: bool(_CLOCK.search(f.sentence)),
    "names": lambda f: frozenset(w.lower() for w in _CAPITALISED.findall(fold(f.sentence[1:]))),
    "reason": lambda f: bool(_REASON.search(f.sentence)),
}


def facts(sentence: str) -> Facts:
    """What kinds of fact a sentence holds."""
    lazy = LazyFacts(sentence)
    return Facts(**{f.name: getattr(lazy, f.name) for f in fields(Facts)})


def holds(ask: Ask, f: Facts | LazyFacts) -> bool:
    """True when the sentence holds a fact of the asked kind that the question does not give."""
    kind = ask.kind
    if kind == "age":
        return f.age or bool(f.numbers - ask.numbers) and f.duration
    if kind == "money":
        return f.money and bool((f.numbers | f.years) - ask.numbers)
    if kind == "ratio":
        return f.ratio or bool(f.numbers - ask.numbers)
    if kind == "duration":
        return f.duration
    if kind == "number":
        return bool(f.numbers - ask.numbers)
    if kind == "clock":
        return f.clock
    if kind == "date":
        return bool(f.years - ask.numbers) or f.dated
    if kind in ("person", "place", "name", "entity"):
        return bool(f.names - ask.names)
    if kind == "reason":
        return f.reason
    return True
