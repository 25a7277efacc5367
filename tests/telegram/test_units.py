"""Fast offline tests of the pieces: formatting, file names, limits, log redaction, admin checks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr
from telegram import Chat, Message, Update, User

from bot.answer import Answer, Citation
from bot.settings import Settings
from bot.telegram.format import answer_html, html_to_plain, inline_result, parse_source_data, pieces, sources_keyboard
from bot.telegram.handlers import is_admin
from bot.telegram.limits import QuestionLimits
from bot.telegram.logs import RedactSecrets, secrets_of
from bot.telegram.token import TokenProblem, check_token
from bot.telegram.uploads import UploadError, check_upload, safe_name, save_article

from .conftest import TOKEN
from .fake_api import ApiError, check_html
from .updates import ADMIN_ID, ANONYMOUS_ADMIN_BOT, GROUP_ID, USER_ID, entities

CITATION = Citation(
    1, "a.md", "Tom & <Jerry>", "Cats <b>chase</b> mice & win.", 2, 3, 0.9, 'https://example.com/?a=1&b="2"', 7
)
ANSWER = Answer("Who chases?", True, CITATION.text, (CITATION,), 0.9)


def test_answer_html_escapes_article_text_and_is_valid_telegram_html() -> None:
    text = answer_html(ANSWER)
    assert "Cats &lt;b&gt;chase&lt;/b&gt; mice &amp; win." in text
    assert "Tom &amp; &lt;Jerry&gt;" in text and "&quot;2&quot;" in text
    assert check_html(text).startswith("[1] Cats <b>chase</b> mice & win.")
    assert html_to_plain(text).endswith('(https://example.com/?a=1&b="2"), ¶2 s3')


def test_fake_server_rejects_broken_html_like_telegram() -> None:
    for broken in ("<b>open", "a <script>x</script>", "fish & chips", "1 < 2"):
        with pytest.raises(ApiError, match="can't parse entities"):
            check_html(broken)


def test_sources_button_data_round_trips_within_64_bytes() -> None:
    keyboard = sources_keyboard(ANSWER)
    assert keyboard is not None
    data = keyboard.inline_keyboard[0][0].callback_data
    assert isinstance(data, str) and len(data.encode()) <= 64
    assert parse_source_data(data) == (7, data.rsplit(":", 1)[1])
    assert parse_source_data("src:1:../etc") is None


def test_long_text_is_split_under_the_limit() -> None:
    lines = [f"<blockquote>[{i}] {'word ' * 50}</blockquote>" for i in range(40)]
    parts = pieces("\n".join(lines))
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert all(check_html(p) for p in parts)


def test_inline_result_fits_one_message() -> None:
    result = inline_result(ANSWER)
    assert len(result.input_message_content.message_text) <= 4096
    assert len(result.id) <= 64


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("/abs/path/Story.TXT", "Story.txt"),
        ("C:\\Users\\x\\notes.md", "notes.md"),
        ("Brücke über\u202eden Fluss.md", "Brucke-uber-den-Fluss.md"),
        ("....md", None),
        ("\u0000\u200b.md", None),
    ],
)
def test_safe_name_is_a_plain_basename(name: str, expected: str | None) -> None:
    safe = safe_name(name, b"content")
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert safe.isascii() and safe.endswith((".md", ".txt"))
    if expected:
        assert safe == expected
    else:
        assert safe.startswith("article-")


def test_check_upload_refuses_other_types_and_big_files() -> None:
    check_upload("a.md", 10, 100)
    with pytest.raises(UploadError):
        check_upload("a.pdf", 10, 100)
    with pytest.raises(UploadError):
        check_upload("a.txt", 101, 100)


def test_save_article_stays_inside_the_corpus(tmp_path: Path) -> None:
    with pytest.raises(UploadError):
        save_article(tmp_path, "../escape.md", "x")
    saved = save_article(tmp_path, "a.md", "one")
    again = save_article(tmp_path, "a.md", "two")
    assert (saved.replaced, again.replaced) == (False, True)
    assert (tmp_path / "a.md").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]


async def test_question_limits_per_user_and_per_chat() -> None:
    limits = QuestionLimits(user_per_minute=2, chat_per_minute=3)
    assert [await limits.allow(1, 10) for _ in range(3)] == [True, True, False]
    assert await limits.allow(2, 10) is True
    assert await limits.allow(3, 10) is False  # the chat's budget is spent
    assert await limits.allow(3, None) is True


def test_redaction_covers_messages_arguments_and_tracebacks(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, telegram_bot_token=SecretStr(TOKEN), webhook_secret=SecretStr("hook-secret-1"))
    redactor = RedactSecrets(secrets_of(settings))
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "GET %s", (f"http://x/bot{TOKEN}/getMe",), None)
    try:
        raise RuntimeError(f"failed http://x/bot{TOKEN.replace(':', '%3A')}/getMe hook-secret-1")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    redactor.filter(record)
    secret = TOKEN.split(":")[1]
    assert secret not in record.getMessage() and "[REDACTED]" in record.getMessage()
    assert record.exc_text and secret not in record.exc_text and "hook-secret-1" not in record.exc_text


@pytest.mark.parametrize("token", [None, "", "abc", "123:", "12 3:abc", "123:abc/def"])
def test_check_token_refuses_missing_and_malformed(token: str | None) -> None:
    settings = Settings(_env_file=None, telegram_bot_token=token)
    with pytest.raises(TokenProblem) as problem:
        check_token(settings)
    assert "\n" not in str(problem.value) and (not token or token not in str(problem.value))


def _update(user_id: int, chat: Chat, sender_chat: Chat | None = None, **extra: object) -> Update:
    user = User(user_id, "U", is_bot=user_id == ANONYMOUS_ADMIN_BOT)
    message = Message(1, None, chat, from_user=user, sender_chat=sender_chat, text="/reindex", **extra)  # type: ignore[arg-type]
    return Update(1, message=message)


def test_is_admin_checks_the_sender_itself() -> None:
    admins = frozenset({ADMIN_ID})
    group = Chat(GROUP_ID, Chat.SUPERGROUP)
    assert is_admin(_update(ADMIN_ID, Chat(ADMIN_ID, Chat.PRIVATE)), admins)
    assert not is_admin(_update(USER_ID, Chat(USER_ID, Chat.PRIVATE)), admins)
    assert not is_admin(_update(ANONYMOUS_ADMIN_BOT, group, sender_chat=group), admins)
    assert is_admin(_update(ANONYMOUS_ADMIN_BOT, group, sender_chat=group), admins | {ANONYMOUS_ADMIN_BOT})


def test_entities_use_utf16_offsets() -> None:
    [mention] = entities("\U0001f600 @CiteTestBot hi")
    assert mention == {"type": "mention", "offset": 3, "length": 12}
