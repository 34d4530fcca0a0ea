"""Resolve where the database and broker are: configured URLs, or embedded ones started here."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from pydantic import SecretStr

from ingest_service.settings import Settings
from tracklane.embedded import EmbeddedBroker, EmbeddedPostgres
from tracklane.gateways import ingest_principal, provision

log = logging.getLogger(__name__)
EMBEDDED_DATABASE = "tracklane"
INGEST_USERNAME = "ingest"


@dataclass(frozen=True)
class Services:
    database_url: str
    mqtt_url: str
    """What ingest connects with: the private broker's URL with ingest's credentials in it."""
    embedded_database: bool
    embedded_broker: bool
    broker_url: str = ""
    """The broker's address without credentials, for banners and gateways' URLs."""
    auth_dir: Path | None = None
    """The private broker's password and ACL files; None when the broker is not ours."""


def without_credentials(url: str) -> str:
    """`url` safe to print: the user and password dropped."""
    parts = urlsplit(url)
    if not parts.password and not parts.username:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def auth_dir(settings: Settings) -> Path:
    """Where the private broker keeps its password and ACL files: its own folder, which is
    also where `tracklane gateway provision` writes by default (and SIGHUPs the broker)."""
    return settings.data_dir / "mosquitto"


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
            # The operator's broker: its users and ACLs are the operator's business.
            mqtt_url, folder = settings.mqtt_url or "", None
            broker_url = without_credentials(mqtt_url)
        else:
            folder = auth_dir(settings)
            # A new password at every start: it lives only in this process's memory, so
            # nothing readable is left on disk and a leaked one dies with the process.
            ingest = provision(folder, ingest_principal(INGEST_USERNAME))
            broker = stack.enter_context(EmbeddedBroker(folder, auth_dir=folder))
            broker_url, mqtt_url = broker.url, ingest.mqtt_url(broker.url)
            log.info(
                "no TRACKLANE_MQTT_URL: using a private Mosquitto at %s; it admits only users "
                "in %s. Add a gateway with `tracklane gateway provision NAME --site SITE "
                "--broker-url %s` (the running broker picks it up).",
                broker_url, folder / "passwd", broker_url,
            )  # fmt: skip
        yield Services(
            database_url=database_url,
            mqtt_url=mqtt_url,
            embedded_database=not settings.database_url,
            embedded_broker=folder is not None,
            broker_url=broker_url,
            auth_dir=folder,
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
