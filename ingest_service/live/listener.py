"""One `LISTEN tracklane_live` connection per API process, kept up for the app's lifetime.

Notifications are handed to the hub in rounds: the first one of a round schedules the
hand-over `gather_s` (20 ms) later, and everything received until then goes with it. A
fan-out round costs about the same per client however many rows it carries, so at 10,000
positions a second rounds per arrival fell behind; gathered rounds keep up. When the
connection is lost (the database restarted, or someone ended the backend) the listener
reconnects with a capped doubling backoff and has the hub tell every client to `resync`:
whatever changed while nobody listened was never heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from .hub import Hub, LiveOptions

log = logging.getLogger(__name__)

APPLICATION_NAME = "tracklane-live"  # how to find the connection in pg_stat_activity
CONNECT_TIMEOUT_S = 10


class Listener:
    """Feeds `hub` from the database's notifications until `stop()`."""

    def __init__(self, database_url: str, hub: Hub, options: LiveOptions) -> None:
        self.database_url = database_url
        self.hub = hub
        self.options = options
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self.options.reconnect_min_s
        lost = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.database_url,
                    autocommit=True,
                    application_name=APPLICATION_NAME,
                    connect_timeout=CONNECT_TIMEOUT_S,
                )
                async with conn:
                    await conn.execute("LISTEN tracklane_live")
                    self._set_connected(True)
                    if lost:
                        log.info("live: listening again; telling every client to resync")
                        self.hub.resync_all("the server lost its database connection")
                    lost, delay = False, self.options.reconnect_min_s
                    await self._pump(conn)
            except (psycopg.Error, OSError, TimeoutError) as err:
                log.warning("live: LISTEN connection lost (%s); retrying in %.1f s", err, delay)
            except Exception:  # a listener that dies silently would freeze every live map
                log.exception("live: listener failed; retrying in %.1f s", delay)
            self._set_connected(False)
            lost = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.reconnect_max_s)

    async def _pump(self, conn: psycopg.AsyncConnection) -> None:
        loop = asyncio.get_running_loop()
        keepalive = self.options.keepalive_s
        while True:
            async for notify in conn.notifies(timeout=keepalive):
                if not self._pending:
                    loop.call_later(self.options.gather_s, self._hand_over)
                self._pending.append(notify.payload)
            # Quiet for a while (or the generator's period ended): make sure the connection
            # is still there, since a silently dropped one would never raise on its own.
            await asyncio.wait_for(conn.execute("SELECT 1"), keepalive)

    def _hand_over(self) -> None:
        payloads, self._pending = self._pending, []
        try:
            self.hub.publish(payloads)
        except Exception:
            log.exception("live: could not fan out %d notifications", len(payloads))

    def _set_connected(self, connected: bool) -> None:
        self.hub.metrics.listener_connected = connected
