"""Resolve where the database and broker are: configured URLs, or embedded ones started here."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from pydantic import SecretStr

from ingest_service.settings import Settings
from tracklane.embedded import EmbeddedBroker, EmbeddedPostgres

log = logging.getLogger(__name__)
EMBEDDED_DATABASE = "tracklane"


@dataclass(frozen=True)
class Services:
    database_url: str
    mqtt_url: str
    embedded_database: bool
    embedded_broker: bool


def _embedded_database(pg: EmbeddedPostgres) -> str:
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return pg.url(EMBEDDED_DATABASE)


@contextmanager
def services(settings: Settings, *, need_broker: bool = True) -> Iterator[Services]:
    """Yield URLs for the database and broker, starting embedded ones for those not set."""
    with ExitStack() as stack:
        data_dir = settings.data_dir
        if settings.database_url:
            database_url = settings.database_url
        else:
            pg = stack.enter_context(EmbeddedPostgres(data_dir / "postgres"))
            database_url = _embedded_database(pg)
            log.info(
                "no TRACKLANE_DATABASE_URL: using embedded PostgreSQL in %s", data_dir / "postgres"
            )
        if settings.mqtt_url or not need_broker:
            mqtt_url = settings.mqtt_url or ""
        else:
            broker = stack.enter_context(EmbeddedBroker(data_dir / "mosquitto"))
            mqtt_url = broker.url
            log.info("no TRACKLANE_MQTT_URL: using a private Mosquitto at %s", mqtt_url)
        yield Services(
            database_url=database_url,
            mqtt_url=mqtt_url,
            embedded_database=not settings.database_url,
            embedded_broker=not settings.mqtt_url and need_broker,
        )


def dev_secret(settings: Settings) -> SecretStr:
    """The configured secret; in dev mode a random one kept in the data folder."""
    if settings.secret_key is not None:
        return settings.secret_key
    if settings.mode == "production":
        raise RuntimeError("production mode without TRACKLANE_SECRET_KEY")  # check_production
    path: Path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return SecretStr(path.read_text().strip())
