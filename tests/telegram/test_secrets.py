"""Secrets: the token never reaches a log line, a traceback or a reply, even when the HTTP layer
fails with the request URL (which holds the token) in its exception."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bot.answer import Answerer
from bot.service import QAService
from bot.settings import Settings
from bot.telegram.logs import RedactSecrets, configure_logging

from .conftest import TOKEN, Running, start_running
from .fake_api import FakeBotApi
from .updates import USER_ID

SECRET = TOKEN.split(":")[1]


@pytest.fixture
def bot_log(tg_settings: Settings) -> Iterator[io.StringIO]:
    """What `python -m bot run` would write to stderr: the root handlers, redacted by configure_logging."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level, httpx_level = root.level, logging.getLogger("httpx").level
    root.addHandler(handler)
    configure_logging(tg_settings.model_copy(update={"log_level": "DEBUG"}))
    yield stream
    root.removeHandler(handler)
    for h in root.handlers:
        for f in [f for f in h.filters if isinstance(f, RedactSecrets)]:
            h.removeFilter(f)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)


class FailingTransport:
    """Makes the HTTP layer raise, once per listed method, an error that names the request URL."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, methods: set[str]) -> None:
        self.pending = set(methods)
        real = httpx.AsyncHTTPTransport.handle_async_request

        async def handle(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
            method = request.url.path.rsplit("/", 1)[-1]
            if method in self.pending:
                self.pending.discard(method)
                raise httpx.ConnectError(f"connection reset while calling {request.url}", request=request)
            return await real(transport, request)

        monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle)


class ExplodingService(QAService):
    """Its first answer fails with an error whose message holds the token."""

    exploded = False

    @property
    def answerer(self) -> Answerer:
        if not self.exploded:
            self.exploded = True
            raise RuntimeError(f"unexpected failure near http://api/bot{TOKEN}/sendMessage")
        return QAService.answerer.fget(self)  # type: ignore[attr-defined]


@pytest.fixture
async def leaky(
    tg_settings: Settings, fake_api: FakeBotApi, bot_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    from tests.fakes import FakeEncoder

    service = ExplodingService(tg_settings, encoder_factory=FakeEncoder)
    service.exploded = True
    service.open()
    service.exploded = False
    FailingTransport(monkeypatch, {"getUpdates", "sendMessage"})
    async with start_running(tg_settings, service, fake_api) as running:
        yield running


async def test_token_is_in_no_log_trace_or_reply_when_the_http_layer_fails(
    leaky: Running, bot_log: io.StringIO
) -> None:
    leaky.send.private("How many visitors are expected at the festival?")  # the answerer explodes
    apology = await leaky.reply(chat_id=USER_ID)
    leaky.send.private("When does the festival end?")  # its reply fails once in the HTTP layer
    replies = await leaky.replies(count=2, chat_id=USER_ID)
    assert "Sorry, something went wrong" in apology["text"] and "Sunday" in replies[1]["text"]
    assert all(SECRET not in c.params.get("text", "") for c in leaky.api.calls_of("sendMessage"))
    written = bot_log.getvalue()
    assert "Traceback" in written  # tracebacks were logged…
    assert "connection reset while calling" in written and "unexpected failure near" in written
    assert SECRET not in written and "[REDACTED]" in written  # …with the token taken out
