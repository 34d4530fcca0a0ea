"""The TimescaleDB path, against a server that has the extension.

TimescaleDB cannot be installed from the registries the project's machines reach, so this
runs only where TRACKLANE_TEST_TIMESCALE_URL names such a server (a maintenance database
URL; the test creates and drops its own databases there). The plain-PostgreSQL path is
covered everywhere by the rest of the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from yoyo import get_backend, read_migrations

from ingest_service.storage.migrate import MIGRATIONS_DIR, _yoyo_url, migrate
from ingest_service.storage.writer import BatchWriter
from simulators import synthetic
from tests.conftest import with_database

SERVER = os.environ.get("TRACKLANE_TEST_TIMESCALE_URL")
pytestmark = pytest.mark.skipif(
    not SERVER, reason="set TRACKLANE_TEST_TIMESCALE_URL to a PostgreSQL with timescaledb"
)


@pytest.fixture
def timescale_url() -> Iterator[str]:
    assert SERVER
    name = f"ts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(SERVER, name)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_hypertables_compression_and_retention(timescale_url: str) -> None:
    mode = migrate(timescale_url, retention_days=30, compress_after_days=3)
    assert mode.name == "timescaledb" and mode.timescaledb_version
    with psycopg.connect(timescale_url) as conn:
        hypertables = {
            r[0]
            for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        ).fetchall()
    assert hypertables == {"positions", "scans", "device_status"}
    for table in hypertables:
        assert (table, "policy_compression") in jobs
        assert (table, "policy_retention") in jobs
    assert migrate(timescale_url) == mode, "running again changes nothing"


def test_plain_schema_with_rows_is_upgraded_in_place_and_still_dedups(timescale_url: str) -> None:
    backend = get_backend(_yoyo_url(timescale_url))
    backend.apply_migrations(backend.to_apply(read_migrations(str(MIGRATIONS_DIR))))
    backend.connection.close()
    events = synthetic.positions(site="wh1", gateway="gw1", device="gps1", count=50)
    rows = [("wh1", "gw1", e) for e in events]
    with psycopg.connect(timescale_url) as conn:
        BatchWriter(conn).write(rows)  # stored while still plain
    migrate(timescale_url)
    with psycopg.connect(timescale_url) as conn:
        result = BatchWriter(conn).write(rows)  # the same events again
        assert result.stored == {"positions": 0} and result.duplicates == {"positions": 50}
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (50,)
