"""The live stream: an authenticated WebSocket at /api/v1/live (docs/live-map.md).

Browsers cannot set an Authorization header on a WebSocket, and a token in the URL would
land in access logs, so the first message carries the token. The route is marked with
`socket_requires(...)` so the route table and the startup check see who may use it; this
module does the check itself once the token is known.
"""

from __future__ import annotations

import asyncio
import json
import logging

import psycopg
from fastapi import APIRouter, Depends, WebSocket
from psycopg_pool import PoolTimeout

from ingest_service.auth import (
    CredentialError,
    Role,
    TooManyRequests,
    User,
    authenticate_token,
    socket_requires,
)
from ingest_service.live import Hub, LiveOptions, close_reason, run_session, streams_for

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])
WATCHERS = socket_requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)

# Close codes: the contract's 4401 and 4403, and the standard 1013 (try again later) when
# the credentials cannot be checked right now.
UNAUTHORIZED, FORBIDDEN, TRY_LATER = 4401, 4403, 1013
AUTH_HINT = 'send {"type": "auth", "token": "<session or API token>"} first'


@router.websocket("/live", dependencies=[Depends(WATCHERS)])
async def live(websocket: WebSocket) -> None:
    """Authenticate from the first message, then stream what the client subscribes to."""
    state = websocket.app.state
    hub: Hub = state.live_hub
    options: LiveOptions = state.live_options
    await websocket.accept()
    token = await _receive_token(websocket, options.auth_timeout_s)
    if token is None:
        return
    user = await _authenticate(websocket, token)
    if user is None:
        return
    client = hub.connect(role=user.role, username=user.username)
    client.send_control(
        {
            "type": "ready",
            "user": user.username,
            "role": user.role.value,
            "streams": [s.value for s in streams_for(user.role)],
        }
    )

    async def recheck() -> tuple[int, str] | None:
        return await _recheck(websocket, token, user)

    try:
        await run_session(
            websocket,
            client,
            min_interval_s=state.settings.live_min_frame_interval_ms / 1000,
            recheck=recheck,
            recheck_s=options.recheck_s,
        )
    finally:
        hub.disconnect(client)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.close(code, close_reason(reason))


async def _receive_token(websocket: WebSocket, timeout_s: float) -> str | None:
    """The token of the client's first message, or None once the socket is closed."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout_s)
    except TimeoutError:
        await _close(websocket, UNAUTHORIZED, f"no auth within {timeout_s:g} s: {AUTH_HINT}")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        first = json.loads(message.get("text") or "")
        token = first["token"] if first.get("type") == "auth" else None
    except (ValueError, AttributeError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        await _close(websocket, UNAUTHORIZED, f"the first message must be auth: {AUTH_HINT}")
        return None
    return token


async def _authenticate(websocket: WebSocket, token: str) -> User | None:
    """The user behind `token` if they may watch; else closes the socket and returns None."""
    try:
        user = await authenticate_token(websocket, token)
    except CredentialError as err:
        await _close(websocket, UNAUTHORIZED, str(err))
        return None
    except TooManyRequests as err:
        await _close(websocket, TRY_LATER, str(err))
        return None
    except (psycopg.OperationalError, PoolTimeout):
        log.warning("live: cannot check credentials, the database is unavailable")
        await _close(websocket, TRY_LATER, "the database is unavailable; retry in a few seconds")
        return None
    if not WATCHERS.admits(user):
        await _close(websocket, FORBIDDEN, WATCHERS.refusal(user))
        return None
    return user


async def _recheck(websocket: WebSocket, token: str, user: User) -> tuple[int, str] | None:
    """Why the client must go now (close code, reason), or None if it may stay."""
    try:
        now = await authenticate_token(websocket, token)
    except CredentialError as err:
        return UNAUTHORIZED, str(err)
    except (TooManyRequests, psycopg.OperationalError, PoolTimeout) as err:
        # Not the client's fault: keep it, and check again next time.
        log.warning("live: could not recheck %s (%s); keeping the session", user.username, err)
        return None
    if now.role is not user.role:
        return FORBIDDEN, f"your role changed to {now.role}; reconnect to continue"
    return None
