"""TimescaleDB when the server has it; plain PostgreSQL with BRIN indexes when it does not.

The base schema (migrations/) is plain PostgreSQL. When the `timescaledb` extension is
installed and preloaded, `apply_storage_mode` turns the time-series tables into hypertables
(migrating any rows already there), enables compression and adds compression and retention
policies. Every statement is guarded, so it runs on each `db migrate` and changes nothing
the second time. A database that gains the extension later is upgraded in place.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from .mode import StorageMode

log = logging.getLogger(__name__)

# (table, segment-by columns for compression). Each is partitioned on `time`.
HYPERTABLES: tuple[tuple[str, str], ...] = (
    ("positions", "gateway, device"),
    ("scans", "site, door"),
    ("device_status", "gateway, device"),
)
CHUNK_INTERVAL = "1 day"


def _server_version(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]


def detect(conn: psycopg.Connection) -> StorageMode:
    """What the database runs as now, without changing it."""
    version = _server_version(conn)
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row:
        return StorageMode("timescaledb", version, row[0])
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    note = (
        "timescaledb is installed on the server but not created in this database"
        if available
        else "timescaledb extension not available on this server"
    )
    return StorageMode("postgresql", version, None, note)


def _try_create_extension(conn: psycopg.Connection) -> str | None:
    """Create the extension if the server has it; return why not otherwise."""
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        return "timescaledb extension not available on this server"
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as err:
        # Most often: not in shared_preload_libraries, or no privilege to create it.
        return f"timescaledb is available but could not be created: {err.diag.message_primary}"
    return None


def apply_storage_mode(
    conn: psycopg.Connection, *, retention_days: int, compress_after_days: int
) -> StorageMode:
    """Turn on TimescaleDB features if the server has them; report the mode either way."""
    version = _server_version(conn)
    why_not = _try_create_extension(conn)
    if why_not:
        log.info("storage: plain PostgreSQL %s with BRIN time indexes (%s)", version, why_not)
        return StorageMode("postgresql", version, None, why_not)
    ts_version = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()[0]  # type: ignore[index]
    for table, segment_by in HYPERTABLES:
        _make_hypertable(conn, table, segment_by, retention_days, compress_after_days)
    log.info(
        "storage: TimescaleDB %s on PostgreSQL %s (hypertables: %s)",
        ts_version,
        version,
        ", ".join(t for t, _ in HYPERTABLES),
    )
    return StorageMode("timescaledb", version, ts_version)


def _make_hypertable(
    conn: psycopg.Connection,
    table: str,
    segment_by: str,
    retention_days: int,
    compress_after_days: int,
) -> None:
    ident = sql.Identifier(table)
    is_hyper = conn.execute(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", (table,)
    ).fetchone()
    with conn.transaction():
        if not is_hyper:
            # A hypertable's unique keys must include its time column: the plain-mode key on
            # event_id alone becomes (event_id, time). A redelivered event repeats both.
            pkey = sql.Identifier(f"{table}_event_id_key")
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(ident, pkey))
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE (event_id, time)").format(
                    ident, pkey
                )
            )
            conn.execute(
                "SELECT create_hypertable(%s, 'time', chunk_time_interval => %s::interval,"
                " migrate_data => true, if_not_exists => true)",
                (table, CHUNK_INTERVAL),
            )
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {},"
                    " timescaledb.compress_orderby = 'time DESC')"
                ).format(ident, sql.Literal(segment_by))
            )
        conn.execute(
            "SELECT add_compression_policy(%s, %s::interval, if_not_exists => true)",
            (table, f"{compress_after_days} days"),
        )
        conn.execute(
            "SELECT add_retention_policy(%s, %s::interval, if_not_exists => true)",
            (table, f"{retention_days} days"),
        )
