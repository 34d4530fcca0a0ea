"""`tracklane db migrate`: apply the versioned schema, then the storage mode's features.

Migrations are plain SQL files in `migrations/`, applied by yoyo (which records what ran
and takes a lock, so two processes starting together do not both migrate). After them,
the time-series tables become hypertables when TimescaleDB can be had, and stay plain
tables with BRIN indexes otherwise. Both steps are idempotent: running again changes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

from . import timescale
from .mode import StorageMode

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _yoyo_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"database URL must start with postgresql://, not {parts.scheme}://")
    return urlunsplit(("postgresql+psycopg", *parts[1:]))


def pending_migrations(database_url: str) -> list[str]:
    backend = get_backend(_yoyo_url(database_url))
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))]


def migrate(
    database_url: str, *, retention_days: int = 365, compress_after_days: int = 7
) -> StorageMode:
    """Bring the database to the current schema and return the storage mode it runs in."""
    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        todo = backend.to_apply(migrations)
        if todo:
            log.info("applying migrations: %s", ", ".join(m.id for m in todo))
            backend.apply_migrations(todo)
    backend.connection.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        mode = timescale.apply_storage_mode(
            conn, retention_days=retention_days, compress_after_days=compress_after_days
        )
    log.info("storage mode: %s", mode.describe())
    return mode


def detect_mode(database_url: str) -> StorageMode:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return timescale.detect(conn)
