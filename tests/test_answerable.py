"""Does a sentence hold what a question asks for: the kind of fact, not given by the question."""

from __future__ import annotations

import pytest

from bot.answerable import asked_kind, facts, holds, parse


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How old is the team's coach?", "age"),
        ("How much prize money did the team win?", "money"),
        ("How long do applicants have to reply?", "duration"),
        ("How many teams took part?", "number"),
        ("What time does the train leave?", "clock"),
        ("When did the first shuttle launch?", "date"),
        ("Who is the prosecutor in the case?", "person"),
        ("Which city hosts the contest next?", "place"),
        ("Which Sydney hospital treated her?", "place"),
        ("Which newspaper reported the plan?", "entity"),
        ("What was the name of the submarine's commander?", "name"),
        ("Why did the talks fail?", "reason"),
        ("Was the minister already there when the train arrived?", "yes_no"),
        ("What did the regime complain about?", "other"),
    ],
)
def test_the_kind_of_fact_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("How old is the coach, Ali Reza?", "The coach, Ali Reza, praised the team.", False),
        ("How old is the coach, Ali Reza?", "The coach, Ali Reza, 42, praised the team.", True),
        ("How many people died in the 2003 heatwave?", "The 2003 heatwave was the hottest on record.", False),
        ("How many people died in the 2003 heatwave?", "The 2003 heatwave killed 70,000 people.", True),
        ("How much did the schools owe in taxes?", "The schools owed taxes for years.", False),
        ("How much did the schools owe in taxes?", "The schools owed 422,000 euros in taxes.", True),
        ("When did the shuttle launch?", "The shuttle launched on April 12, 1981.", True),
        ("When did the shuttle launch?", "The shuttle launched from Florida.", False),
        ("Who founded the movement?", "The movement was founded by Wangari Maathai.", True),
        ("Who founded the movement?", "The movement was founded to plant trees.", False),
    ],
)
def test_a_sentence_holds_the_fact_only_when_the_question_does_not_give_it(question, sentence, expected):
    assert holds(parse(question), facts(sentence)) is expected


def test_rare_words_weigh_more_than_common_ones():
    ask = parse("What did the commander of the submarine say?")
    weight = dict(zip(ask.terms, ask.rarity, strict=True))
    assert weight["command"] > weight["say"]
