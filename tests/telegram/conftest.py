"""Fixtures: the fake Bot API server and the real Application running against it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.app import build_application, serving
from bot.telegram.context import BotApplication
from bot.telegram.polling import Feed
from tests.fakes import FakeEncoder

from .fake_api import Call, FakeBotApi
from .updates import ADMIN_ID, Sender

TOKEN = "123456:TEST-secret-token-AbCdEfGhIjKlMnOpQrStUvWxYz"

SECOND_ARTICLE = """Lighthouse restored

The old lighthouse on Gull Point was restored by volunteers over two summers.
Its lamp was relit on Saturday evening & the keeper's cottage became a small museum.
"""


@pytest.fixture
def fake_api() -> Iterator[FakeBotApi]:
    """The fake Bot API server on 127.0.0.1 and a free port."""
    api = FakeBotApi(TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def tg_settings(fake_settings: Settings, fake_api: FakeBotApi) -> Settings:
    """Settings for the small corpus (plus one article), pointing at the fake server."""
    (fake_settings.corpus_dir / "lighthouse.txt").write_text(SECOND_ARTICLE, encoding="utf-8")
    return fake_settings.model_copy(
        update={
            "telegram_bot_token": SecretStr(TOKEN),
            "telegram_base_url": fake_api.base_url,
            "telegram_base_file_url": fake_api.base_file_url,
            "admin_ids": frozenset({ADMIN_ID}),
            "max_upload_bytes": 5_000,
        }
    )


@pytest.fixture
def tg_service(tg_settings: Settings) -> QAService:
    service = QAService(tg_settings, encoder_factory=FakeEncoder)
    service.open()
    return service


@dataclass
class Running:
    """The started application, the fake server it talks to, and a sender of updates."""

    app: BotApplication
    api: FakeBotApi
    send: Sender
    settings: Settings
    service: QAService
    feed: Feed

    async def reply(self, method: str = "sendMessage", **where: object) -> dict:
        """The params of the first successful call of `method` whose params contain `where` (waits)."""
        return (await self.replies(method, 1, **where))[0]

    async def replies(
        self, method: str = "sendMessage", count: int = 1, *, failed_too: bool = False, **where: object
    ) -> list[dict]:
        """The params of the first `count` matching calls (successful ones unless failed_too)."""

        def match(call: Call) -> bool:
            return (failed_too or call.error is None) and all(call.params.get(k) == v for k, v in where.items())

        calls = await asyncio.to_thread(self.api.wait_for, method, match, 10.0, count)
        return [c.params for c in calls]

    async def quiet(self, seconds: float = 0.4) -> None:
        """Let the bot work for a moment (to check that nothing is sent)."""
        await asyncio.sleep(seconds)

    def sent(self, method: str = "sendMessage") -> list[dict]:
        return [c.params for c in self.api.calls_of(method)]


@asynccontextmanager
async def start_running(settings: Settings, service: QAService, api: FakeBotApi) -> AsyncIterator[Running]:
    """Start the application as `run_bot` does (initialize, start, feed from the inbox) and stop it
    the same way (feed, application, shutdown)."""
    app = build_application(settings, service)
    try:
        async with serving(settings, app) as feed:
            yield Running(app, api, Sender(api), settings, service, feed)
    finally:
        app.bot.inbox.close()


@pytest.fixture
async def running(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Running]:
    """The bot running against the fake server; afterwards, no captured log line holds the token."""
    caplog.set_level(logging.DEBUG)
    async with start_running(tg_settings, tg_service, fake_api) as running:
        yield running
    leaked = [r.getMessage() for r in caplog.records if TOKEN.split(":")[1] in r.getMessage()]
    assert not leaked, f"the token is in the logs: {leaked[:3]}"


@pytest.fixture
def corpus_dir(tg_settings: Settings) -> Path:
    return tg_settings.corpus_dir
