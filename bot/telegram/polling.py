"""Updates in: fetched (long polling) or posted (webhook), stored in the inbox, then handled.

`Feed` replaces python-telegram-bot's Updater, which confirms a getUpdates batch as soon as it is
fetched and whose webhook server answers 200 before any handler ran. Here an update is
confirmed to Telegram only once the inbox holds it (see `inbox.py`), and it is handed to
`Application.process_update` (the library's public entry point) from the inbox; when the
handlers are through, the inbox marks it done.

getUpdates is called through `Bot.do_api_request` without a return type, so the answer stays
raw JSON: an update the library cannot read (a field missing, a newer Bot API) is stored,
skipped with a warning and confirmed like any other, and never fails or stalls the batch.

Inbox calls run in a few threads of the Feed's own (they wait on a disk, or on PostgreSQL when
DATABASE_URL is set), never on the event loop. With a shared inbox (several replicas), the Feed
renews its claims every `inbox.renew_every` seconds and takes over the updates whose claims ran
out (a replica died while handling them).

Only one process may poll Telegram for a bot: Telegram answers the older of two getUpdates
calls with 409 Conflict. A process that meets a 409 before its first poll completed is the
second poller and stops (the caller says so); one that was polling already polls again at once,
which ends the newcomer's poll in turn, and backs off if the conflict goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import tornado.httpserver
import tornado.netutil
import tornado.web
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application
from telegram.warnings import PTBUserWarning

from .inbox import MAX_ATTEMPTS, Entry, Inbox, InboxError

log = logging.getLogger(__name__)

T = TypeVar("T")

UNREADABLE = (KeyError, TypeError, ValueError, AttributeError)  # what a failed de_json raises
POLL_SECONDS = 10  # long-poll timeout of getUpdates (as run_polling had it)
FIRST_POLL_SECONDS = 1  # the first poll is short: a process polls "already" after it, for 409s
CONFLICT_PAUSE_MAX = 30.0  # seconds: the longest pause between polls while another poller answers 409s
INBOX_THREADS = 4  # threads making inbox calls (a disk or a database may make them wait)
MAX_IN_FLIGHT = 256  # updates handled at once
PRUNE_EVERY = 600.0  # seconds between prunes of the inbox
STORE_RETRY = 5.0  # seconds before fetching again the updates the inbox could not store
STOP_GRACE = 5.0  # seconds the handlers get to finish at stop; the rest stays pending in the inbox


async def raw_call(bot: Bot, endpoint: str, api_kwargs: dict[str, Any], **timeouts: Any) -> Any:
    """A Bot API call whose result stays JSON (the library's own method would parse it).

    do_api_request warns when a method of that name exists; here the raw answer is the point.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return await bot.do_api_request(endpoint, api_kwargs=api_kwargs, **timeouts)


def readable(raw: dict[str, Any], bot: Bot) -> Update | None:
    """The update, or None (logged) when the library cannot read it or it has no chat where it needs one."""
    try:
        update = Update.de_json(raw, bot)
        message = update.effective_message if update is not None else None
        if message is not None and message.chat is None:  # the library does not insist on it; filters do
            raise KeyError("chat")
    except UNREADABLE as exc:
        kinds = sorted(k for k in raw if k != "update_id")
        log.warning("skipped update %s (%s) that cannot be read: %s", raw.get("update_id"), ", ".join(kinds), exc)
        return None
    return update


def well_formed(raw: Any) -> bool:
    """An update object with an integer update_id (anything else cannot even be confirmed)."""
    return isinstance(raw, dict) and type(raw.get("update_id")) is int


class Feed:
    """Stores incoming updates in the inbox and hands them to the application's handlers."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        inbox: Inbox,
        keep_seconds: float,
        allowed_updates: Sequence[str],
    ) -> None:
        self.application = application
        self.inbox = inbox
        self.keep_seconds = keep_seconds
        self.allowed_updates = list(allowed_updates)
        self.dropped = 0  # items of a getUpdates answer or webhook posts that were not updates
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: list[asyncio.Task[None]] = []
        self._helpers: list[asyncio.Task[None]] = []  # the claims keeper of a shared inbox
        self._last_prune = 0.0
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port: int | None = None  # the webhook's port once listening
        self._io = ThreadPoolExecutor(INBOX_THREADS, thread_name_prefix="inbox")

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An inbox call, made in the inbox threads (it may wait on a disk or a database)."""
        return await asyncio.get_running_loop().run_in_executor(self._io, partial(method, *args, **kwargs))

    # --- in: store, then confirm -----------------------------------------------------------------

    async def accept(self, raws: Sequence[Any]) -> None:
        """Store the well-formed updates (the caller confirms them to Telegram after this) and handle them."""
        good = [raw for raw in raws if well_formed(raw)]
        if len(good) < len(raws):
            self.dropped += len(raws) - len(good)
            log.warning("ignored %d items that are not updates", len(raws) - len(good))
        await self._call(self.inbox.store, good)
        for raw in good:
            self._schedule(raw["update_id"])

    async def poll(self) -> None:
        """Long polling: fetch, store, and confirm with the next offset, until cancelled."""
        bot = self.application.bot
        await bot.delete_webhook()
        pause = 0.0
        polled = False  # a poll completed: a 409 now means a newcomer, not that another poller was first
        conflicts = 0
        while True:
            offset = await self._call(self.inbox.next_offset)
            timeout = POLL_SECONDS if polled else FIRST_POLL_SECONDS
            try:
                raws = await raw_call(
                    bot,
                    "getUpdates",
                    {"offset": offset, "timeout": timeout, "allowed_updates": self.allowed_updates},
                    read_timeout=timeout + 10,
                )
            except RetryAfter as exc:
                pause = float(exc.retry_after if isinstance(exc.retry_after, (int, float)) else 5)
            except InvalidToken:
                raise
            except Conflict as exc:
                if not polled:
                    raise  # another process polls for this bot already: this one is the second
                conflicts += 1
                pause = 0.0 if conflicts == 1 else min(2.0 ** (conflicts - 2), CONFLICT_PAUSE_MAX)
                log.warning(
                    "another process polls Telegram for this bot (%s); still polling, again in %.0f s: "
                    "stop the other process",
                    exc.message,
                    pause,
                )
            except TelegramError as exc:  # network trouble, a 5xx, an unreadable answer: try again later
                pause = min(max(pause * 2, 0.5), 30.0)
                log.warning("getUpdates failed (%s); again in %.1f s", exc, pause)
            else:
                pause = 0.0
                polled, conflicts = True, 0
                if not isinstance(raws, list):
                    log.warning("getUpdates answered with %s, not a list; ignored", type(raws).__name__)
                    raws = []
                try:
                    await self.accept(raws)
                except InboxError as exc:  # not stored: not confirmed either; fetched again next time
                    pause = STORE_RETRY
                    log.error("%s; fetching the same updates again in %.0f s", exc, pause)
            await self.prune_now_and_then()
            if pause:
                await asyncio.sleep(pause)

    async def resume(self) -> None:
        """Hand out again what a previous run stored and did not finish."""
        left = await self._call(self.inbox.pending, limit=1_000_000)
        if left:
            log.info("answering %d updates left pending by the previous run", len(left))
        for entry in left:
            self._schedule(entry.update_id)

    async def keep_claims(self, every: float) -> None:
        """A shared inbox: renew the claims on what this process handles, and take over what a
        dead replica left (its claims ran out), every `every` seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                await self._call(self.inbox.heartbeat, list(self._in_flight))
                orphans = [
                    e
                    for e in await self._call(self.inbox.pending, limit=MAX_IN_FLIGHT)
                    if e.update_id not in self._in_flight
                ]
            except InboxError as exc:
                log.warning("%s", exc)
                continue
            if orphans:
                log.info("taking over %d updates whose handling stopped elsewhere", len(orphans))
            for entry in orphans:
                self._schedule(entry.update_id)

    # --- out: handle from the store, mark done -----------------------------------------------------

    def _schedule(self, update_id: int) -> None:
        if update_id not in self._in_flight:
            self._in_flight[update_id] = asyncio.create_task(self._handle(update_id), name=f"update-{update_id}")

    async def _handle(self, update_id: int) -> None:
        try:
            async with self._slots:
                entry = await self._call(self.inbox.start, update_id)
                if entry is not None:
                    await self._process(entry)
        except InboxError as exc:  # the update stays pending: answered (again) at the next start
            log.error("%s", exc)
        finally:
            self._in_flight.pop(update_id, None)

    async def _process(self, entry: Entry) -> None:
        if entry.attempts > MAX_ATTEMPTS:
            log.error("gave up update %d: its handling was cut short %d times", entry.update_id, entry.attempts - 1)
            await self._call(self.inbox.mark_done, entry.update_id, "skipped")
            return
        update = readable(entry.payload, self.application.bot)
        if update is None:
            await self._call(self.inbox.mark_done, entry.update_id, "skipped")
            return
        await self.application.process_update(update)  # handler errors go to the error handler
        await self._call(self.inbox.mark_done, entry.update_id)

    async def prune_now_and_then(self) -> None:
        """Forget entries done more than INBOX_KEEP_HOURS ago, at most every PRUNE_EVERY seconds."""
        now = asyncio.get_running_loop().time()
        if now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            try:
                pruned = await self._call(self.inbox.prune, self.keep_seconds)
            except InboxError as exc:
                log.warning("%s", exc)
                return
            if pruned:
                log.info("pruned %d old entries from the inbox", pruned)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start_polling(self) -> None:
        """Be the one poller of this store (PollerBusy if not), answer what is pending, then poll in the background."""
        await self._call(self.inbox.hold_polling)
        await self._start()
        self._tasks.append(asyncio.create_task(self.poll(), name="getUpdates"))

    async def _start(self) -> None:
        await self.resume()
        if self.inbox.renew_every is not None:
            self._helpers.append(asyncio.create_task(self.keep_claims(self.inbox.renew_every), name="inbox-claims"))

    async def start_webhook(self, listen: str, port: int, url_path: str, webhook_url: str, secret: str | None) -> int:
        """Answer what is pending, serve POSTs on listen:port/url_path, tell Telegram; returns the port."""
        await self._start()
        await self.prune_now_and_then()
        app = tornado.web.Application([(rf"/{url_path}", WebhookHandler, {"feed": self, "secret": secret})])
        sockets = tornado.netutil.bind_sockets(port, listen)
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("webhook listening on %s:%d/%s", listen, self.port, url_path)
        await self.application.bot.set_webhook(
            webhook_url,
            secret_token=secret,
            allowed_updates=self.allowed_updates,
        )
        return self.port

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop taking updates; give the handlers `grace` seconds; what is unfinished stays pending."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
        running = list(self._in_flight.values())
        if running:
            done, left = await asyncio.wait(running, timeout=grace)
            unfinished = [update_id for update_id, task in self._in_flight.items() if task in left]
            for task in left:
                task.cancel()
            if left:
                log.info("%d updates stay pending in the inbox for the next start", len(left))
                await asyncio.gather(*left, return_exceptions=True)
                try:
                    await self._call(self.inbox.release, unfinished)  # other replicas may take them now
                except InboxError as exc:
                    log.warning("%s", exc)
        for task in self._helpers:  # claims kept until the handlers are through
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        self._helpers.clear()
        await asyncio.to_thread(self._io.shutdown, True)  # no inbox call runs when the caller closes the inbox

    @property
    def in_flight(self) -> int:
        """How many updates are being handled now."""
        return len(self._in_flight)

    def background(self) -> list[asyncio.Task[None]]:
        """The long-polling task (none in webhook mode): it ends only on a fatal error."""
        return list(self._tasks)

    async def drained(self) -> None:
        """Wait until nothing is being handled (for tests and benchmarks)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)


class WebhookHandler(tornado.web.RequestHandler):
    """POSTed updates: 200 only once the update is stored; a wrong secret gets 403."""

    def initialize(self, feed: Feed, secret: str | None) -> None:
        self.feed = feed
        self.secret = secret

    async def post(self) -> None:
        if self.secret is not None:
            given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), self.secret.encode()):
                raise tornado.web.HTTPError(403)
        try:
            raw = json.loads(self.request.body)
        except ValueError:
            raise tornado.web.HTTPError(400) from None
        if not well_formed(raw):
            raise tornado.web.HTTPError(400)
        try:
            await self.feed.accept([raw])  # stored (committed) before the 200 goes out
        except InboxError as exc:
            log.error("%s; Telegram will post the update again", exc)
            raise tornado.web.HTTPError(503) from None
        self.set_status(200)
        await self.feed.prune_now_and_then()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            log.warning("webhook request refused: HTTP %d", value.status_code)
        else:
            super().log_exception(typ, value, tb)
