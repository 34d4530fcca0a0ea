"""`tracklane demo`: the whole system on one machine, with simulated devices.

Embedded PostgreSQL and a private Mosquitto (unless URLs are configured), ingest and the
API in this process, and for each `firmware_configs/demo-*.toml` gateway its simulators
(speaking NMEA or scanner lines over TCP) and an edge agent publishing over MQTT. A flaky
link is played too: now and then a gateway's batch is sent again, as after a lost PUBACK,
and one gateway with a firmware bug sends a malformed message, so the summary shows
duplicates and quarantine at work. At the end every event a gateway had acknowledged is
looked up in the database: `lost` counts those missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from edge_agent.agent import EdgeAgent
from edge_agent.config import GatewayConfig, NmeaTcpSourceConfig, load_gateway_config
from event_contract import KIND_OF_TYPE, SCHEMA_VERSION, Batch, encode, event_topic
from ingest_service.auth.passwords import hash_secret
from ingest_service.auth.users import ensure_admin
from ingest_service.settings import Settings
from mqtt_client import BrokerAddress, make_client, parse_mqtt_url
from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from tracklane import runtime
from tracklane.embedded.broker import free_port
from tracklane.serve import api_in_thread, api_server, ingest_running, prepare_database

log = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "firmware_configs"
REPLAY_EVERY_S = 7.0


def demo_gateways(data_dir: Path) -> list[GatewayConfig]:
    """The demo's gateways, each with its durable outbox in the data folder (what a gateway
    had not sent when the last demo stopped is sent first this time)."""
    gateways = []
    for path in sorted(CONFIG_DIR.glob("demo-*.toml")):
        config = load_gateway_config(path)
        outbox = config.outbox.model_copy(
            update={"path": data_dir / "outbox" / f"{config.site}-{config.gateway}.sqlite"}
        )
        gateways.append(config.model_copy(update={"outbox": outbox}))
    (data_dir / "outbox").mkdir(parents=True, exist_ok=True)
    return gateways


def demo_admin(settings: Settings, database_url: str, *, may_reset: bool) -> str:
    """The admin login to print: a fresh password for the demo's own embedded database (its
    data folder outlives runs); on anyone else's database an existing admin is left alone."""
    password = secrets.token_urlsafe(12)
    with psycopg.connect(database_url, autocommit=True) as conn:
        created = ensure_admin(conn, username=settings.admin_username, password=password)
        if not created and not may_reset:
            return "(unchanged: this database already has that user)"
        if not created:
            conn.execute(
                "UPDATE users SET password_hash = %s, role = 'admin', active = true"
                " WHERE username = %s",
                (hash_secret(password), settings.admin_username),
            )
    return password


def _pick_port(wanted: int | None, default: int) -> int:
    port = wanted or default
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return port
    except OSError:
        if wanted:
            raise SystemExit(f"tracklane demo: port {wanted} is in use; pick another") from None
        return free_port()


class Ledger:
    """Every event a gateway got a PUBACK for, and the last batch per gateway to replay."""

    def __init__(self) -> None:
        self.ids: set[UUID] = set()
        self.last: dict[tuple[str, str], list[Any]] = {}
        self._lock = threading.Lock()

    def recorder(self, gateway: GatewayConfig) -> Callable[[list[Any]], None]:
        def record(events: list[Any]) -> None:
            with self._lock:
                self.ids.update(e.event_id for e in events)
                self.last[(gateway.site, gateway.gateway)] = list(events)

        return record


async def _simulate(
    gateways: list[GatewayConfig], broker: BrokerAddress, ledger: Ledger, stop: asyncio.Event
) -> dict[str, int]:
    sims: list[GpsSimulator | ScannerSimulator] = []
    agents: list[EdgeAgent] = []
    try:
        for index, gateway in enumerate(gateways):
            endpoints = {}
            for source in gateway.sources:
                if isinstance(source, NmeaTcpSourceConfig):
                    sim: GpsSimulator | ScannerSimulator = GpsSimulator(
                        GpsSimConfig(rate_hz=2.0, speed_mps=12.0, noise_m=2.0, seed=index)
                    )
                else:
                    sim = ScannerSimulator(ScannerSimConfig(rate_hz=3.0, seed=index))
                await sim.start()
                sims.append(sim)
                endpoints[source.device] = (sim.host, sim.port)
            agents.append(
                EdgeAgent(gateway.with_endpoints(endpoints), broker,
                          on_published=ledger.recorder(gateway))
            )  # fmt: skip
        tasks = [asyncio.create_task(a.run(stop), name=a.config.gateway) for a in agents]
        tasks.append(asyncio.create_task(_flaky_link(broker, ledger, stop), name="flaky-link"))
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for task, outcome in zip(tasks, done, strict=True):
            if isinstance(outcome, BaseException):
                log.error("demo: %s failed: %s", task.get_name(), outcome)
        return {"replayed_batches": next((d for d in done if isinstance(d, int)), 0)}
    finally:
        for sim in sims:
            await sim.close()


async def _flaky_link(broker: BrokerAddress, ledger: Ledger, stop: asyncio.Event) -> int:
    """Resend a gateway's last batch now and then; send one malformed message once."""
    client, props = make_client(broker, f"demo-flaky-link-{secrets.token_hex(3)}")
    client.connect(broker.host, broker.port, properties=props)
    client.loop_start()
    replayed = 0
    try:
        client.publish(
            event_topic("wh1", "dock-a", "scans"),
            b'{"schema_version": 1, "site": "wh1", "gateway": "dock-a", "events": [{"type":',
            qos=1,
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPLAY_EVERY_S)
            for (site, gateway), events in list(ledger.last.items())[:1]:
                kind = KIND_OF_TYPE[events[0].type]
                batch = Batch(
                    schema_version=SCHEMA_VERSION,
                    site=site,
                    gateway=gateway,
                    sent_at=datetime.now(UTC),
                    events=events,
                )
                client.publish(event_topic(site, gateway, kind), encode(batch), qos=1)
                replayed += 1
    finally:
        client.loop_stop()
        client.disconnect()
    return replayed


def _wait_until_stored(database_url: str, ids: set[UUID], timeout: float = 30) -> int:
    """How many of `ids` are stored, waiting (up to `timeout`) for ingest to catch up."""
    deadline = time.monotonic() + timeout
    wanted = list(ids)
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            found = conn.execute(
                "SELECT count(*) FROM (SELECT event_id FROM positions UNION ALL"
                " SELECT event_id FROM scans UNION ALL SELECT event_id FROM device_status) e"
                " WHERE event_id = ANY(%s)",
                (wanted,),
            ).fetchone()[0]  # type: ignore[index]
            if found >= len(wanted) or time.monotonic() > deadline:
                return int(found)
            time.sleep(0.25)


def run_demo(settings: Settings, *, run_for: float | None, port: int | None) -> dict[str, Any]:
    if settings.mode == "production":
        raise SystemExit(
            "tracklane demo refuses production mode: it publishes simulated events and sets "
            "the admin's password. Unset TRACKLANE_MODE (and point it at a scratch database)."
        )
    gateways = demo_gateways(settings.data_dir)
    with runtime.services(settings) as svc:
        mode = prepare_database(settings, svc.database_url, run_migrations=True)
        settings = settings.model_copy(update={"secret_key": runtime.dev_secret(settings)})
        password = demo_admin(settings, svc.database_url, may_reset=svc.embedded_database)
        with ingest_running(
            settings, database_url=svc.database_url, mqtt_url=svc.mqtt_url, storage_mode=mode
        ) as running:
            api_port = _pick_port(port, settings.api_port)
            server = api_server(
                settings, database_url=svc.database_url, running=running, port=api_port
            )
            with api_in_thread(server):
                url = f"http://{settings.api_host}:{api_port}"
                print(
                    f"\nTracklane demo is running ({mode.describe()}).\n"
                    f"  API:    {url}/api/v1   (OpenAPI: {url}/docs, health: {url}/healthz)\n"
                    f"  Login:  {settings.admin_username} / {password}\n"
                    f"  Broker: {svc.mqtt_url}   gateways: "
                    f"{', '.join(g.gateway for g in gateways)}\n"
                    + ("  Press Ctrl-C to stop.\n" if run_for is None else
                       f"  Running for {run_for:g} s.\n"),
                    flush=True,
                )  # fmt: skip
                ledger = Ledger()
                extra = asyncio.run(
                    _run_until(gateways, parse_mqtt_url(svc.mqtt_url), ledger, run_for)
                )
                stored = _wait_until_stored(svc.database_url, ledger.ids)
            snap = running.stats.snapshot()
    return {
        "events_published": len(ledger.ids),
        "events_stored": stored,
        "duplicates": snap["duplicates"],
        "quarantined": snap["quarantined"],
        "lost": len(ledger.ids) - stored,
        "storage_mode": mode.name,
        **extra,
    }


async def _run_until(
    gateways: list[GatewayConfig], broker: BrokerAddress, ledger: Ledger, run_for: float | None
) -> dict[str, int]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if run_for is not None:
        loop.call_later(run_for, stop.set)
    return await _simulate(gateways, broker, ledger, stop)
