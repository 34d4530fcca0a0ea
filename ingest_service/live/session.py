"""One authenticated live client: read its subscriptions, write its frames, recheck it.

Three tasks per client. The writer is the only one that sends, so frames, answers and the
final close never interleave; the others leave messages in the client's queue and wake it.
The writer sends control messages at once and data at most once per `min_interval_s`; while
a send is blocked by a slow client, positions keep coalescing in the queue meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from .client_queue import ClientQueue
from .filters import NotAllowed, Subscribe, resolve

log = logging.getLogger(__name__)

# Checks the client's credentials again: None if still fine, else (close code, reason).
Recheck = Callable[[], Awaitable[tuple[int, str] | None]]
MAX_MESSAGE_BYTES = 64 * 1024  # a subscribe with 3 x 1000 keys fits several times over


def close_reason(text: str) -> str:
    """`text` cut to the 123 bytes a WebSocket close frame's reason may hold."""
    data = text.encode()
    return text if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


async def run_session(
    websocket: WebSocket,
    client: ClientQueue,
    *,
    min_interval_s: float,
    recheck: Recheck,
    recheck_s: float,
) -> None:
    """Serve `client` until it leaves, its credentials fail, or the server stops."""
    writer = asyncio.create_task(_write(websocket, client, min_interval_s))
    reader = asyncio.create_task(_read(websocket, client))
    # The recheck only asks the writer to close; the session ends when the writer or the
    # reader does.
    checker = asyncio.create_task(_recheck(client, recheck, recheck_s))
    try:
        done, _ = await asyncio.wait((writer, reader), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            err = task.exception()
            if err is None or isinstance(err, WebSocketDisconnect | OSError):
                continue  # the client went away
            log.error("live: session of %s failed", client.username, exc_info=err)
    finally:
        for task in (writer, reader, checker):
            task.cancel()
        for task in (writer, reader, checker):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _write(websocket: WebSocket, client: ClientQueue, min_interval_s: float) -> None:
    last_flush = -min_interval_s
    while True:
        await client.wake.wait()
        client.wake.clear()
        for message in client.take_control():
            await websocket.send_text(message)
        if client.close is not None:
            code, reason = client.close
            await websocket.close(code, close_reason(reason))
            return
        if not client.has_frames:
            continue
        wait = last_flush + min_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        last_flush = time.monotonic()
        for frame in client.take_frames():
            await websocket.send_text(frame)
            client.metrics.frames_sent += 1


async def _read(websocket: WebSocket, client: ClientQueue) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            client.send_control(_error("send JSON text frames, not binary ones"))
        elif len(text) > MAX_MESSAGE_BYTES:
            client.send_control(_error(f"a message may hold {MAX_MESSAGE_BYTES} bytes at most"))
        else:
            client.send_control(handle_message(client, text))


def handle_message(client: ClientQueue, text: str) -> dict[str, object]:
    """Apply one client message; returns the answer (`subscribed` or `error`)."""
    try:
        kind = json.loads(text).get("type")
    except (ValueError, AttributeError):
        return _error('messages are JSON objects, e.g. {"type": "subscribe", "streams": [...]}')
    if kind != "subscribe":
        return _error(f'unknown message type {kind!r}: after "ready" send "subscribe" messages')
    try:
        effective = resolve(Subscribe.model_validate_json(text), client.role)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in err.errors()
        )
        return _error(f"bad subscription ({problems}); the previous one stays in force")
    except NotAllowed as err:
        return _error(f"{err}; the previous subscription stays in force")
    client.filter = effective
    return {"type": "subscribed", **effective.describe()}


def _error(detail: str) -> dict[str, object]:
    return {"type": "error", "detail": detail}


async def _recheck(client: ClientQueue, recheck: Recheck, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        verdict = await recheck()
        if verdict is not None:
            client.close_with(*verdict)
            return
