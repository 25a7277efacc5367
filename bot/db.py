"""PostgreSQL connection and schema migrations (DATABASE_URL).

Migrations are the SQL files of bot/migrations, applied in name order; each one runs in its
own transaction together with its row in `schema_migrations` (PostgreSQL's DDL is
transactional), so a failed migration leaves nothing half done. An advisory lock lets only one
process migrate at a time. `python -m bot db migrate` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# advisory lock keys (pg_advisory_lock(namespace, key)); the namespace is "cite" in ASCII
LOCK_NAMESPACE = 0x63697465
MIGRATE_LOCK = 1


class DatabaseProblem(RuntimeError):
    """The database cannot be used as configured; says what to do."""


@dataclass(frozen=True)
class Migration:
    name: str  # file name without .sql, e.g. 0001_store
    sql: str


def migrations(folder: Path = MIGRATIONS) -> list[Migration]:
    """The migration files in the order they are applied."""
    files = sorted(folder.glob("*.sql"))
    return [Migration(f.stem, f.read_text(encoding="utf-8")) for f in files]


def connect(url: str, **kwargs):
    """A psycopg connection with pgvector's numpy adapters, or a DatabaseProblem saying why not."""
    try:
        import psycopg
    except ImportError:
        raise DatabaseProblem(
            "DATABASE_URL is set but the PostgreSQL driver is not installed: pip install -e '.[postgres]'"
        ) from None
    try:
        connection = psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseProblem(f"Cannot connect to DATABASE_URL: {str(exc).strip()}") from None
    _register_vector(connection)
    return connection


def _register_vector(connection) -> None:
    """Teach the connection pgvector's type (when the extension exists already)."""
    import psycopg
    from pgvector.psycopg import register_vector

    try:
        register_vector(connection)
    except psycopg.ProgrammingError:  # "vector type not found": not migrated yet
        if not connection.autocommit:
            connection.rollback()


def migrate(url: str, folder: Path = MIGRATIONS) -> list[str]:
    """Apply the migrations not applied yet; returns their names (empty: already up to date)."""
    import psycopg

    applied: list[str] = []
    with connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
        try:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")}
            for migration in migrations(folder):
                if migration.name in done:
                    continue
                try:
                    with connection.transaction():
                        connection.execute(migration.sql.encode("utf-8"))
                        connection.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (migration.name,))
                except psycopg.Error as exc:
                    raise DatabaseProblem(
                        f"Migration {migration.name} failed and was rolled back: {str(exc).strip()}"
                        + _privilege_hint(exc)
                    ) from None
                applied.append(migration.name)
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
    return applied


def pending(url: str, folder: Path = MIGRATIONS) -> list[str]:
    """Names of the migrations not applied yet."""
    with connect(url, autocommit=True) as connection:
        exists = connection.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        done = {row[0] for row in connection.execute("SELECT name FROM schema_migrations")} if exists else set()
    return [m.name for m in migrations(folder) if m.name not in done]


def _privilege_hint(exc: Exception) -> str:
    text = str(exc)
    if "vector" in text and ("permission" in text or "not available" in text or "could not open" in text):
        return (
            " (the pgvector extension must be installed on the server, and CREATE EXTENSION vector"
            " needs a role allowed to create it: run it once as a superuser or the database owner)"
        )
    return ""
