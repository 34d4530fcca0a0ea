"""The schema migrates from nothing, re-runs as a no-op, and reports its storage mode."""

from __future__ import annotations

import psycopg

from ingest_service.storage.migrate import detect_mode, migrate, pending_migrations


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrate_creates_schema_and_is_idempotent(empty_database_url: str) -> None:
    assert pending_migrations(empty_database_url)
    mode = migrate(empty_database_url)
    assert {"positions", "scans", "device_status", "quarantine", "users", "api_tokens"} <= _tables(
        empty_database_url
    )
    assert pending_migrations(empty_database_url) == []
    with psycopg.connect(empty_database_url) as conn:
        conn.execute("INSERT INTO quarantine (topic, reason, payload) VALUES ('t', 'r', 'x')")
    again = migrate(empty_database_url)
    assert again == mode
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)


def test_plain_postgres_mode_uses_brin_and_says_so(database_url: str) -> None:
    mode = detect_mode(database_url)
    assert mode.name == "postgresql"
    assert "timescaledb" in mode.note
    with psycopg.connect(database_url) as conn:
        methods = dict(
            conn.execute(
                "SELECT c.relname, am.amname FROM pg_class c JOIN pg_am am ON c.relam = am.oid"
                " WHERE c.relname LIKE '%_time_brin'"
            ).fetchall()
        )
    assert methods == {
        "positions_time_brin": "brin",
        "scans_time_brin": "brin",
        "device_status_time_brin": "brin",
    }


def test_an_older_schema_with_data_is_upgraded_in_place(empty_database_url: str) -> None:
    from yoyo import get_backend, read_migrations

    from ingest_service.storage.migrate import MIGRATIONS_DIR, _yoyo_url

    backend = get_backend(_yoyo_url(empty_database_url))
    first = read_migrations(str(MIGRATIONS_DIR))[:1]
    assert [m.id for m in first] == ["0001_events"]
    backend.apply_migrations(backend.to_apply(first))
    backend.connection.close()
    with psycopg.connect(empty_database_url) as conn:
        conn.execute("INSERT INTO quarantine (topic, reason, payload) VALUES ('t', 'kept', 'x')")
    assert pending_migrations(empty_database_url) == [
        "0002_auth",
        "0003_orders",
        "0004_geofencing",
        "0005_live",
        "0006_notifications",
        "0007_notify_channels",
        "0008_inbound",
        "0009_analytics",
    ]

    migrate(empty_database_url)

    assert pending_migrations(empty_database_url) == []
    assert "users" in _tables(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT reason FROM quarantine").fetchall() == [("kept",)]
