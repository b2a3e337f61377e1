"""Throw-away PostgreSQL schemas for benchmarks and harnesses: a store URL pointed at a fresh
``?schema=``, and its ``DROP SCHEMA`` afterwards (so runs never see each other's state).

Imports asyncpg only inside :func:`drop_schema`; nothing else of keylane.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit, urlunsplit

__all__ = ["drop_schema", "with_schema"]


def with_schema(url: str, schema: str) -> str:
    """``url`` (PostgreSQL) with its ``?schema=`` set to ``schema``, other parameters kept."""
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("schema="))
    query = f"{query}&schema={schema}" if query else f"schema={schema}"
    return urlunsplit(parts._replace(query=query))


async def drop_schema(store_url: str, schema: str) -> None:
    """``DROP SCHEMA <schema> CASCADE`` on a PostgreSQL URL (best effort)."""
    with contextlib.suppress(Exception):
        import asyncpg

        connection = await asyncpg.connect(store_url.partition("?")[0])
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()
