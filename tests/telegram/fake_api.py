"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of the unchanged bot.

It speaks HTTP like api.telegram.org: `/bot<TOKEN>/<method>` with form-encoded, multipart or JSON
bodies (python-telegram-bot sends form fields whose non-string values are JSON), and
`/file/bot<TOKEN>/<path>` for downloads. Tests push updates (served by getUpdates with long-poll
and offset semantics), then wait for and inspect the recorded calls.

Like Telegram, a getUpdates call ends the one still waiting (two pollers of one bot): the
waiting call gets 409 Conflict. `base_url_for(name)` gives a bot its own URL prefix, so that each
call records which of several bot processes made it (`Call.via`).

Fault injection: `fail_next(method, Fault(...), times=n)` makes the next n calls of a method fail
with that HTTP status and Bot API error, or (`DROP`, `Fault.hang(seconds)`) hang up without any
answer, at once or after a while (a client timeout); `handlers[method] = fn` replaces a method's
behaviour. A failed call is never carried out: a retry of it is not a duplicate.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

BOT_ID = 7000001
BOT_USERNAME = "CiteTestBot"
MESSAGE_LIMIT = 4096
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"

# Form fields that python-telegram-bot sends as raw strings; every other field is JSON.
STRING_FIELDS = {
    "text",
    "caption",
    "parse_mode",
    "query",
    "callback_query_id",
    "inline_query_id",
    "file_id",
    "action",
    "url",
    "next_offset",
    "secret_token",
    "inline_message_id",
    "language_code",
    "message_effect_id",
    "business_connection_id",
    "switch_pm_text",
    "switch_pm_parameter",
}
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-spoiler",
    "span",
    "tg-emoji",
}


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass(frozen=True)
class Fault:
    """What an injected failure answers, e.g. Fault(429, "Too Many Requests: retry after 1", {"retry_after": 1}).

    With `hang_up`, the server closes the connection without answering, after `delay` seconds.
    """

    status: int
    description: str
    parameters: dict[str, Any] | None = None
    hang_up: bool = False
    delay: float = 0.0

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """No answer for `seconds`, then the connection is closed (longer than the client's timeout: a timeout)."""
        return cls(0, f"no answer for {seconds}s", hang_up=True, delay=seconds)


DROP = Fault(0, "connection dropped", hang_up=True)  # the connection is closed without an answer


@dataclass(frozen=True)
class ChatLimit:
    """Telegram-like flood control per chat: a burst, then `per_second`; beyond it 429 retry_after."""

    burst: int = 3
    per_second: float = 1.0
    retry_after: int = 5
    methods: frozenset[str] = frozenset({"sendMessage", "sendChatAction"})


class HungUp(Exception):
    """Raised by `FakeBotApi.handle` when a fault closes the connection without an answer."""


@dataclass
class Call:
    """One request the bot made: method name, decoded parameters, what it got back."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    result: Any = None
    error: ApiError | None = None
    done_at: float | None = None  # when the answer (or error) was ready
    via: str | None = None  # the URL prefix the bot used (base_url_for), if any


class _EntityChecker(HTMLParser):
    """Checks Telegram HTML like the Bot API does: known tags, balanced; collects the plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problem = self.problem or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problem = self.problem or f'Unmatched end tag "{tag}"'
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(text: str) -> str:
    """The plain text of Telegram HTML, or ApiError 400 "can't parse entities"."""
    if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
        raise ApiError(400, "Bad Request: can't parse entities: unsupported entity at a lone '&'")
    if re.search(r"<(?![a-zA-Z/])", text):
        raise ApiError(400, "Bad Request: can't parse entities: unexpected '<' in text")
    checker = _EntityChecker()
    checker.feed(text)
    checker.close()
    if checker.problem or checker.stack:
        problem = checker.problem or f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
        raise ApiError(400, f"Bad Request: can't parse entities: {problem}")
    return "".join(checker.text)


def decode_form(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields as python-telegram-bot means them: JSON values except the string fields."""
    params: dict[str, Any] = {}
    for key, value in fields.items():
        if key in STRING_FIELDS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


class FakeBotApi:
    """The fake server: start(), push updates, wait for calls, stop()."""

    def __init__(self, token: str, username: str = BOT_USERNAME, bot_id: int = BOT_ID) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Cite Test",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.chat_members: dict[tuple[int, int], str] = {}  # (chat_id, user_id) -> status
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.chat_limit: ChatLimit | None = None  # set to make the server enforce per-chat flood limits
        self._chat_tokens: dict[int, tuple[float, float]] = {}  # chat -> (tokens, at)
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": lambda p: self.bot_user,
            "getUpdates": self._get_updates,
            "deleteWebhook": lambda p: True,
            "setWebhook": lambda p: True,
            "setMyCommands": lambda p: True,
            "getMyCommands": lambda p: [],
            "sendChatAction": lambda p: True,
            "answerCallbackQuery": lambda p: True,
            "answerInlineQuery": self._answer_inline_query,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "getChatMember": self._get_chat_member,
            "getFile": self._get_file,
            "close": lambda p: True,
            "logOut": lambda p: True,
        }
        self._cond = threading.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._closing = False
        self._polls = 0  # getUpdates calls so far: a waiting one that is not the latest was terminated
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """TELEGRAM_BASE_URL for python-telegram-bot (the token is appended to it)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """TELEGRAM_BASE_FILE_URL for python-telegram-bot."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def base_url_for(self, name: str) -> str:
        """TELEGRAM_BASE_URL for one of several bot processes: its calls are recorded with via=name."""
        if not re.fullmatch(r"[\w-]+", name) or name in ("bot", "file"):
            raise ValueError(f"a bot's name must be letters, digits, _ or -, got {name!r}")
        return f"http://127.0.0.1:{self.port}/{name}/bot"

    def start(self) -> FakeBotApi:
        api = self

        class Handler(_RequestHandler):
            fake = api

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what tests do -------------------------------------------------------------------------

    def push(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update of this kind (message, channel_post, inline_query…); returns its update_id."""
        with self._cond:
            update_id = next(self._update_ids)
            for obj in (payload, payload.get("message") or {}):
                chat = obj.get("chat")
                if chat:
                    self.chats[chat["id"]] = chat
            if "message_id" in payload and "chat" in payload:
                self.messages[(payload["chat"]["id"], payload["message_id"])] = payload
            self.updates.append({"update_id": update_id, kind: payload})
            self._cond.notify_all()
            return update_id

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def add_file(self, content: bytes, file_name: str) -> dict[str, Any]:
        """Store a file for getFile/download; returns a Document object for a message."""
        n = next(self._file_ids)
        file_id = f"file-{n}"
        self.files[file_id] = (f"documents/file_{n}.bin", content)
        return {
            "file_id": file_id,
            "file_unique_id": f"u{n}",
            "file_name": file_name,
            "mime_type": "text/plain",
            "file_size": len(content),
        }

    def fail_next(self, method: str, fault: Fault, times: int = 1) -> None:
        """Make the next `times` calls of `method` fail with `fault`."""
        with self._cond:
            self.faults[method].extend([fault] * times)

    def calls_of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self, method: str, where: Callable[[Call], bool] = lambda c: True, timeout: float = 10.0, count: int = 1
    ) -> list[Call]:
        """Block until `count` calls of `method` matching `where` were made (answered); returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method and where(c) and (c.result is not None or c.error)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.params) for c in self.calls if c.method != "getUpdates"]
                    raise AssertionError(f"no {count} x {method} within {timeout}s; calls: {seen}")
                self._cond.wait(left)

    def idle(self, seconds: float = 0.3) -> None:
        """Wait a little so that a reply that should not come would have come."""
        time.sleep(seconds)

    # --- the server side -------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], via: str | None = None) -> Any:
        """Run one API method: record the call, apply any injected fault, answer."""
        call = Call(method, params, via=via)
        with self._cond:
            self.calls.append(call)
            fault = self.faults[method].popleft() if self.faults.get(method) else None
        try:
            self._flood_check(method, params)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.hang_up:
                    raise HungUp(fault.description)
                raise ApiError(fault.status, fault.description, fault.parameters)
            handler = self.handlers.get(method)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = handler(params)
        except (ApiError, HungUp) as exc:
            with self._cond:
                call.error = exc if isinstance(exc, ApiError) else ApiError(0, str(exc))
                call.done_at = time.monotonic()
                self._cond.notify_all()
            raise
        with self._cond:
            call.result, call.done_at = result, time.monotonic()
            self._cond.notify_all()
        return result

    def _flood_check(self, method: str, params: dict[str, Any]) -> None:
        limit = self.chat_limit
        if limit is None or method not in limit.methods or "chat_id" not in params:
            return
        chat_id, now = int(params["chat_id"]), time.monotonic()
        with self._cond:
            tokens, at = self._chat_tokens.get(chat_id, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - at) * limit.per_second)
            if tokens < 1.0:
                self._chat_tokens[chat_id] = (tokens, now)
                raise ApiError(
                    429, f"Too Many Requests: retry after {limit.retry_after}", {"retry_after": limit.retry_after}
                )
            self._chat_tokens[chat_id] = (tokens - 1.0, now)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        with self._cond:
            self._polls += 1
            mine = self._polls
            self._cond.notify_all()  # a getUpdates still waiting is terminated by this one
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed
            while not self.updates and not self._closing and self._polls == mine:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._polls != mine:
                raise ApiError(409, POLL_CONFLICT)
            return list(self.updates[:limit])

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        chat_id = int(chat_id)
        return self.chats.get(chat_id, {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"})

    def _check_text(self, params: dict[str, Any]) -> str:
        text = str(params.get("text", ""))
        plain = check_html(text) if params.get("parse_mode") == "HTML" else text
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(plain) > MESSAGE_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        plain = self._check_text(params)
        chat = self._chat(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self.next_message_id(),
            "date": int(time.time()),
            "chat": chat,
            "text": plain,
        }
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = self.bot_user
        reply = params.get("reply_parameters") or (
            {"message_id": params["reply_to_message_id"]} if "reply_to_message_id" in params else None
        )
        if reply:
            original = self.messages.get((chat["id"], int(reply["message_id"])))
            if original is None and not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            if original is not None:
                message["reply_to_message"] = original
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        with self._cond:
            self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        plain = self._check_text(params)
        if "inline_message_id" in params:
            return True
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self._cond:
            message = self.messages.get(key)
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            message = dict(message, text=plain, edit_date=int(time.time()))
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self.messages[key] = message
        return message

    def _answer_inline_query(self, params: dict[str, Any]) -> bool:
        results = params.get("results")
        if not isinstance(results, list):
            raise ApiError(400, "Bad Request: results must be a JSON array")
        for result in results:
            content = result.get("input_message_content") or {}
            if "message_text" in content:
                self._check_text({"text": content["message_text"], "parse_mode": content.get("parse_mode")})
        return True

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = int(params["user_id"])
        status = self.chat_members.get((int(params["chat_id"]), user_id), "member")
        user = (
            self.bot_user if user_id == self.bot_user["id"] else {"id": user_id, "is_bot": False, "first_name": "User"}
        )
        return {"status": status, "user": user}

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(content), "file_path": path}

    def file_content(self, path: str) -> bytes | None:
        for file_path, content in self.files.values():
            if file_path == path:
                return content
        return None


class _Server(ThreadingHTTPServer):
    """The HTTP server; a client that hangs up mid-request is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    fake: FakeBotApi
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (Nagle + delayed ACK)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = unquote(self.path.split("?", 1)[0])
        via = None
        if not path.startswith(("/bot", "/file/")):  # a bot's own prefix (FakeBotApi.base_url_for)
            via, _, rest = path[1:].partition("/")
            path = "/" + rest
        api_prefix, file_prefix = f"/bot{self.fake.token}/", f"/file/bot{self.fake.token}/"
        body = self._body()
        if path.startswith(file_prefix):
            content = self.fake.file_content(path[len(file_prefix) :])
            if content is None:
                self._reply(404, b"Not Found", "text/plain")
            else:
                self._reply(200, content, "application/octet-stream")
            return
        if not path.startswith(api_prefix):
            self._json(
                401 if path.startswith(("/bot", "/file/bot")) else 404,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
            return
        method = path[len(api_prefix) :]
        try:
            result = self.fake.handle(method, self._params(body), via)
        except HungUp:
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return
        except ApiError as exc:
            answer: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                answer["parameters"] = exc.parameters
            self._json(exc.status, answer)
            return
        self._json(200, {"ok": True, "result": result})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _params(self, body: bytes) -> dict[str, Any]:
        kind = self.headers.get("Content-Type", "")
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        fields = dict(parse_qsl(query, keep_blank_values=True))
        if kind.startswith("application/json"):
            return {**fields, **(json.loads(body) if body else {})}
        if kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name and not part.get_filename():
                    fields[name] = part.get_payload(decode=True).decode("utf-8")
            return decode_form(fields)
        fields.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return decode_form(fields)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._reply(status, json.dumps(payload).encode("utf-8"), "application/json")

    def _reply(self, status: int, content: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):  # the bot hung up (e.g. a cancelled long poll)
            self.close_connection = True
