"""The test suite's own PostgreSQL: it starts, and it has pgvector."""

from __future__ import annotations

import psycopg


def test_the_throwaway_server_has_pgvector(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        distance = connection.execute("SELECT '[1,0,0]'::vector <#> '[0.6,0.8,0]'::vector").fetchone()[0]
    assert abs(distance + 0.6) < 1e-6  # <#> is the negative inner product
