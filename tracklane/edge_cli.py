"""`tracklane edge ...`: run a gateway's edge agent, check its config, see its quarantine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The edge agent that runs on a gateway.")


@app.command("run")
def edge_run(
    config: Annotated[Path, typer.Option("--config", "-c", exists=True, dir_okay=False)],
    mqtt_url: Annotated[str | None, typer.Option(help="overrides the config's mqtt_url")] = None,
) -> None:
    """Run an edge agent for the gateway described by CONFIG."""
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import GatewayConfigError, load_gateway_config
    from mqtt_client import parse_mqtt_url

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        gateway = load_gateway_config(config)
    except GatewayConfigError as err:
        typer.echo(f"tracklane: {err}", err=True)
        raise typer.Exit(2) from err
    url = mqtt_url or gateway.mqtt_url
    if not url:
        typer.echo("tracklane: no broker: set mqtt_url in the config or pass --mqtt-url", err=True)
        raise typer.Exit(2)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await EdgeAgent(gateway, parse_mqtt_url(url)).run(stop)

    asyncio.run(main())


@app.command("check-config")
def edge_check_config(
    files: list[Path],
    profiles_dir: Annotated[
        Path | None, typer.Option(help="default: the profiles/ folder beside each file")
    ] = None,
) -> None:
    """Validate gateway config files with their profiles, or profile files; unknown keys are
    errors."""
    from edge_agent.config import GatewayConfigError, load_gateway_config
    from edge_agent.profiles import load_profile

    failed = False
    for path in files:
        try:
            if path.parent.parent.name == "profiles":
                load_profile(path)
                typer.echo(f"ok: {path} ({path.parent.name[:-1]} profile)")
                continue
            config = load_gateway_config(path, profiles_dir=profiles_dir)
            used = sorted({s.profile for s in config.sources if getattr(s, "profile", None)})
            typer.echo(f"ok: {path}" + (f" (profiles: {', '.join(used)})" if used else ""))
        except GatewayConfigError as err:
            failed = True
            typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1 if failed else 0)


@app.command("quarantine")
def edge_quarantine(
    config: Annotated[Path, typer.Option("--config", "-c", exists=True, dir_okay=False)],
    requeue: Annotated[
        bool, typer.Option("--requeue", help="put them back in the queue (agent stopped!)")
    ] = False,
) -> None:
    """List the events the broker refused for good, which the outbox keeps aside: how many
    by PUBACK reason and kind, and the oldest. Listing is read-only and safe at any time.

    --requeue puts them back in the queue, sent on the agent's next run; fix the cause first.

    Stop the agent first: the outbox has no lock, and an agent on the same file would miscount.
    """
    import sqlite3

    from edge_agent.agent import open_outbox
    from edge_agent.config import GatewayConfigError, load_gateway_config
    from edge_agent.publish_policy import puback_verdict

    try:
        gateway = load_gateway_config(config)
    except GatewayConfigError as err:
        typer.echo(f"tracklane: {err}", err=True)
        raise typer.Exit(2) from err
    path = gateway.outbox.path
    if path is None:
        typer.echo(
            f"tracklane: gateway {gateway.gateway} keeps its outbox in memory (no [outbox] path "
            f"in {config}): nothing outlives the agent to list or requeue",
            err=True,
        )
        raise typer.Exit(2)
    if not path.is_file():
        typer.echo(f"tracklane: gateway {gateway.gateway}: no outbox at {path} yet", err=True)
        raise typer.Exit(2)
    try:
        rows = _quarantine_summary(path)
    except sqlite3.Error as err:
        typer.echo(f"tracklane: {path}: cannot read the outbox: {err}", err=True)
        raise typer.Exit(2) from None
    total = sum(row[2] for row in rows)
    typer.echo(f"{path}: {total} events in quarantine")
    for reason, kind, count, oldest in rows:
        when = datetime.fromtimestamp(oldest, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        why = puback_verdict(reason)[1]
        typer.echo(f"  0x{reason:02X} {kind}: {count}, the oldest refused {when} ({why})")
    if requeue:
        with contextlib.closing(open_outbox(gateway.outbox)) as outbox:
            moved = outbox.requeue_quarantined()
        typer.echo(f"requeued {moved} events: the agent sends them on its next run")


def _quarantine_summary(path: Path) -> list[tuple[int, str, int, float]]:
    """(reason, kind, events, oldest refused_at) of an outbox file's quarantine, read-only."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT reason, kind, count(*), min(refused_at) FROM quarantine"
            " GROUP BY reason, kind ORDER BY reason, kind"
        ).fetchall()
