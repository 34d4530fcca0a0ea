"""`tracklane demo`: the whole system on one machine, with simulated devices.

Embedded PostgreSQL and a private Mosquitto (unless URLs are configured), ingest and the
API in this process, and for each `firmware_configs/demo-*.toml` gateway its simulators
(`demo_devices`: NMEA over TCP, a scanner on a serial pty, an RFID reader over LLRP) and an
edge agent publishing over MQTT. The warehouse floor packs and loads a wave of orders
(`demo_warehouse`), then the fleet drives each loaded trip to its customers: the orders
move to in transit, arriving and arrived from the trucks' positions alone, and the drivers
confirm them delivered (`demo_fleet`); the trucks drive home, ingest completes their trips,
and the next wave starts, until the demo stops (`demo_waves`). The private broker admits
only provisioned users: each demo gateway is provisioned (a new password each run) and may
publish only under its own topics. A flaky link plays dock-a: now and then its last batch
is sent again, as after a lost PUBACK, and once a malformed message, as from a firmware
bug, so the summary shows duplicates and quarantine at work. At the end every event a
gateway had acknowledged is looked up in the database: `lost` counts those missing.
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
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from pydantic import SecretStr

from edge_agent.agent import EdgeAgent
from edge_agent.config import GatewayConfig, load_gateway_config
from event_contract import KIND_OF_TYPE, SCHEMA_VERSION, Batch, encode, event_topic
from ingest_service.auth.passwords import hash_secret
from ingest_service.auth.users import ensure_admin
from ingest_service.notify.mailbox import Mailbox
from ingest_service.orders.store import Numbering
from ingest_service.settings import Settings
from mqtt_client import BrokerAddress, make_client, parse_mqtt_url
from tracklane import demo_notify, runtime
from tracklane.demo_devices import DemoDevices, kinds_of_devices
from tracklane.demo_fleet import FENCE_DWELL_S
from tracklane.demo_inbound import InboundShipment
from tracklane.demo_waves import Waves
from tracklane.embedded.broker import free_port
from tracklane.gateways import Credentials, gateway_principal, provision
from tracklane.notifier import notifier_running
from tracklane.serve import api_in_thread, api_server, ingest_running, prepare_database

log = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "firmware_configs"
REPLAY_EVERY_S = 7.0
FLAKY_GATEWAY = ("wh1", "dock-a")  # the gateway whose link the demo plays as flaky
Key = tuple[str, str]  # (site, gateway)


# A batch cut off mid-event: what the flaky gateway's firmware bug sends once.
TRUNCATED = b'{"schema_version": 1, "site": "%s", "gateway": "%s", "events": [{"type":'


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


def provision_gateways(settings: Settings, gateways: list[GatewayConfig]) -> dict[Key, Credentials]:
    """Each demo gateway's login on the private broker, written before the broker starts so
    that it reads them at once; none when the broker is the operator's (TRACKLANE_MQTT_URL):
    then the gateways use that URL as it is."""
    if settings.mqtt_url:
        return {}
    folder = runtime.auth_dir(settings)
    return {
        (g.site, g.gateway): provision(folder, gateway_principal(g.site, g.gateway))
        for g in gateways
    }


def gateway_brokers(
    svc: runtime.Services, gateways: list[GatewayConfig], logins: dict[Key, Credentials]
) -> dict[Key, BrokerAddress]:
    """How each gateway reaches the broker: with its own credentials on the private one."""
    brokers = {}
    for g in gateways:
        login = logins.get((g.site, g.gateway))
        url = login.mqtt_url(svc.broker_url) if login else svc.mqtt_url
        brokers[(g.site, g.gateway)] = parse_mqtt_url(url)
    return brokers


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
    """Every event a gateway got a PUBACK for (with what kind of device made it), and the
    last batch per gateway to replay."""

    def __init__(self, gateways: list[GatewayConfig]) -> None:
        self.kind_of: dict[UUID, str] = {}
        self.last: dict[Key, list[Any]] = {}
        self._device_kinds = kinds_of_devices(gateways)
        self._lock = threading.Lock()

    @property
    def ids(self) -> set[UUID]:
        return set(self.kind_of)

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(self.kind_of.values()).items()))

    def recorder(self, gateway: GatewayConfig) -> Callable[[list[Any]], None]:
        site, name = gateway.site, gateway.gateway

        def record(events: list[Any]) -> None:
            with self._lock:
                for e in events:
                    kind = "device_status" if e.type == "status" else None
                    self.kind_of[e.event_id] = kind or self._device_kinds[(site, name, e.device)]
                self.last[(site, name)] = list(events)

        return record


async def _simulate(
    gateways: list[GatewayConfig],
    brokers: dict[Key, BrokerAddress],
    ledger: Ledger,
    stop: asyncio.Event,
    waves: Waves,
    inbound: InboundShipment | None,
) -> dict[str, int]:
    async with DemoDevices() as devices:
        agents = []
        for gateway in gateways:
            config = await devices.attach(gateway)
            broker = brokers[(gateway.site, gateway.gateway)]
            agents.append(EdgeAgent(config, broker, on_published=ledger.recorder(gateway)))
        tasks = [asyncio.create_task(a.run(stop), name=a.config.gateway) for a in agents]
        tasks.append(asyncio.create_task(waves.run(stop, devices), name="warehouse-waves"))
        if inbound is not None:
            receiving = devices.handles.get("receiving-scanner")
            tasks.append(asyncio.create_task(inbound.run(stop, receiving), name="inbound"))
        if FLAKY_GATEWAY in brokers:
            flaky = _flaky_link(brokers[FLAKY_GATEWAY], ledger, stop)
            tasks.append(asyncio.create_task(flaky, name="flaky-link"))
        done = await asyncio.gather(*tasks, return_exceptions=True)
    for task, outcome in zip(tasks, done, strict=True):
        if isinstance(outcome, BaseException):
            log.error("demo: %s failed: %s", task.get_name(), outcome)
    return {"replayed_batches": next((d for d in done if isinstance(d, int)), 0)}


async def _flaky_link(broker: BrokerAddress, ledger: Ledger, stop: asyncio.Event) -> int:
    """Play FLAKY_GATEWAY's link (with its login, so under its topics only): resend its last
    batch now and then; send one malformed message once."""
    site, gateway = FLAKY_GATEWAY
    client, props = make_client(broker, f"demo-flaky-link-{secrets.token_hex(3)}")
    client.connect(broker.host, broker.port, properties=props)
    client.loop_start()
    replayed = 0
    try:
        client.publish(
            event_topic(site, gateway, "scans"),
            TRUNCATED % (site.encode(), gateway.encode()),
            qos=1,
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPLAY_EVERY_S)
            events = ledger.last.get(FLAKY_GATEWAY)
            if events:
                batch = Batch(
                    schema_version=SCHEMA_VERSION,
                    site=site,
                    gateway=gateway,
                    sent_at=datetime.now(UTC),
                    events=events,
                )
                kind = KIND_OF_TYPE[events[0].type]
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
    logins = provision_gateways(settings, gateways)
    with runtime.services(settings) as svc:
        mode = prepare_database(settings, svc.database_url, run_migrations=True)
        demo_only: dict[str, Any] = {"secret_key": runtime.dev_secret(settings)}
        if "fence_min_dwell_s" not in settings.model_fields_set:
            demo_only["fence_min_dwell_s"] = FENCE_DWELL_S  # see demo_fleet.py
        api_port = _pick_port(port, settings.api_port)
        url = f"http://{settings.api_host}:{api_port}"
        # Customers' mail goes to a local SMTP sink (the dashboard's mail page shows it).
        mailbox = Mailbox()
        demo_only |= {"smtp_url": SecretStr(mailbox.start(free_port())), "public_url": url}
        settings = settings.model_copy(update=demo_only)
        password = demo_admin(settings, svc.database_url, may_reset=svc.embedded_database)
        demo_notify.prepare_customers(svc.database_url)
        with (
            contextlib.closing(mailbox),
            ingest_running(
                settings, database_url=svc.database_url, mqtt_url=svc.mqtt_url, storage_mode=mode
            ) as running,
            notifier_running(settings, svc.database_url),
        ):
            server = api_server(
                settings, database_url=svc.database_url, running=running, port=api_port,
                mailbox=mailbox,
            )  # fmt: skip
            with api_in_thread(server):
                who = (f"each gateway logs in as its own user from {svc.auth_dir}"
                       if svc.auth_dir else "the configured broker's login")  # fmt: skip
                print(
                    f"\nTracklane demo is running ({mode.describe()}).\n"
                    f"  Dashboard: {url}/   dock screens: {url}/dock.html?site=wh1&door=door-1\n"
                    f"  Customers' mail (a local SMTP sink): {url}/mail.html   "
                    f"analytics: {url}/analytics.html\n"
                    f"  API:    {url}/api/v1   (OpenAPI: {url}/docs, health: {url}/healthz)\n"
                    f"  Login:  {settings.admin_username} / {password}\n"
                    f"  Broker: {svc.broker_url}   gateways: "
                    f"{', '.join(g.gateway for g in gateways)} ({who})\n"
                    + ("  Press Ctrl-C to stop.\n" if run_for is None else
                       f"  Running for {run_for:g} s.\n"),
                    flush=True,
                )  # fmt: skip
                ledger = Ledger(gateways)
                brokers = gateway_brokers(svc, gateways, logins)
                numbering = Numbering(settings.gs1_company_prefix, settings.sscc_extension_digit)
                waves = Waves(svc.database_url, numbering)
                # Through the API as its users would; needs the admin login this run printed.
                inbound = (InboundShipment(url, settings.admin_username, password,
                                           svc.database_url)
                           if not password.startswith("(") else None)  # fmt: skip
                extra = asyncio.run(_run_until(gateways, brokers, ledger, run_for, waves, inbound))
                stored = _wait_until_stored(svc.database_url, ledger.ids)
                extra |= waves.summary()
                demo_notify.wait_for_outbox(svc.database_url)
                numbers = [n for r in waves.runs for n in r.wave.numbers]
                extra |= demo_notify.summary(svc.database_url, mailbox, numbers)
                extra |= inbound.summary() if inbound else {}
            snap = running.stats.snapshot()
    return {
        "events_published": len(ledger.ids),
        "events_stored": stored,
        "duplicates": snap["duplicates"],
        "quarantined": snap["quarantined"],
        "lost": len(ledger.ids) - stored,
        "events_by_kind": ledger.by_kind(),
        "storage_mode": mode.name,
        **extra,
    }


async def _run_until(
    gateways: list[GatewayConfig],
    brokers: dict[Key, BrokerAddress],
    ledger: Ledger,
    run_for: float | None,
    waves: Waves,
    inbound: InboundShipment | None,
) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if run_for is not None:
        loop.call_later(run_for, stop.set)
    return await _simulate(gateways, brokers, ledger, stop, waves, inbound)
