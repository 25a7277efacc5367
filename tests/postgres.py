"""A throwaway PostgreSQL with pgvector, started by the tests themselves (the pgserver wheel).

pgserver ships PostgreSQL and pgvector. Run as root it creates a `pgserver` system user and
makes the parents of its data folder traversable by everyone, so the data folder lives in a
fresh temporary directory of its own, removed when the session ends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server (with the vector extension available), once per session."""
    try:
        import pgserver
    except ImportError as exc:  # the test extra installs it; say so rather than fail obscurely
        pytest.skip(f"pgserver is not installed ({exc}): pip install -e '.[test]'")
    folder = Path(tempfile.mkdtemp(prefix="citebot-pg-"))
    try:
        try:
            server = pgserver.get_server(folder / "data", cleanup_mode="stop")
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:  # e.g. no pgserver build here
            pytest.skip(f"pgserver could not start PostgreSQL here: {exc}")
        url = server.get_uri()
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            # a throwaway server: no durability needed, and the tests run faster without it
            connection.execute("ALTER SYSTEM SET fsync = off")
            connection.execute("ALTER SYSTEM SET synchronous_commit = off")
            connection.execute("SELECT pg_reload_conf()")
        yield url
        server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server for one test, dropped afterwards."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
