"""Anonymous floods of bad credentials cannot take the API down, against a real PostgreSQL.

Requests go through httpx's ASGI transport on one event loop, so dozens run at once; each
client has its own address, as an attacker and a real user would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import httpx
import psycopg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ingest_service.api import create_app
from ingest_service.api.app import POOL_MAX_SIZE, POOL_TIMEOUT_S
from ingest_service.auth import AuthLimits, ensure_admin
from ingest_service.auth.limits import CredentialThrottle, FailureWindow
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode

SECRET = "test-only-session-key-0123456789abcdef"
ADMIN_PASSWORD = "admin-password-for-tests"
ATTACKER, USER = "203.0.113.66", "198.51.100.7"
# Below the 5 s a request waits for a database connection before it gets a 503. Under a
# flood, real requests share the CPU with argon2 and the flood's own request handling, so
# they take up to about half a second on two cores; the margin is for slow CI machines.
PROMPT_S = 3.0


def _app(database_url: str, limits: AuthLimits | None = None) -> FastAPI:
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password=ADMIN_PASSWORD)
    return create_app(
        settings=Settings(secret_key=SECRET, _env_file=None),
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
        registry=CollectorRegistry(),
        auth_limits=limits,
    )


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://tracklane.test")


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def bearer_session(client: httpx.AsyncClient, username: str, password: str) -> dict:
    r = await login(client, username, password)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def test_a_flood_of_bogus_api_tokens_leaves_real_users_and_health_alone(
    database_url: str,
) -> None:
    async def scenario() -> tuple[list[httpx.Response], list[tuple[httpx.Response, float]]]:
        app = _app(database_url)
        async with serving(app), client_at(app, ATTACKER) as bad, client_at(app, USER) as good:
            admin = await bearer_session(good, "admin", ADMIN_PASSWORD)
            r = await good.post(
                "/api/v1/tokens", headers=admin, json={"user_id": 1, "name": "scraper"}
            )
            token = {"Authorization": f"Bearer {r.json()['token']}"}
            assert (await good.get("/metrics", headers=token)).status_code == 200

            # More bogus checks than the pool has connections, six times over.
            flood = [
                asyncio.ensure_future(
                    bad.get("/api/v1/auth/me", headers={"Authorization": f"Bearer tlk_{n}_x"})
                )
                for n in range(6 * POOL_MAX_SIZE)
            ]
            # By now the flood has looked its tokens up and waits for, or runs, argon2.
            await asyncio.sleep(0.2)
            real = await asyncio.gather(
                timed(good.get("/healthz")),
                timed(good.get("/api/v1/auth/me", headers=admin)),
                timed(good.get("/api/v1/scans", headers=admin)),
                timed(good.get("/metrics", headers=token)),
            )
            async with asyncio.timeout(30):
                refused = await asyncio.gather(*flood)
        return refused, real

    refused, real = asyncio.run(scenario())
    for response, took in real:
        assert response.status_code == 200, (response.request.url, response.text)
        assert took < PROMPT_S, (response.request.url, took)
    assert real[0][0].json()["database"] == "ok"
    assert {r.status_code for r in refused} <= {401, 429}
    assert any(r.status_code == 401 for r in refused)  # some were checked, and refused


def test_when_every_argon2_slot_is_busy_callers_get_429_with_retry_after(
    database_url: str,
) -> None:
    limits = AuthLimits(argon2_slots=1, argon2_wait_s=0.05)

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        app = _app(database_url, limits)
        async with serving(app), client_at(app, ATTACKER) as bad, client_at(app, USER) as good:
            async with asyncio.timeout(30):
                # Distinct names, so only the gate can refuse them, not the login throttle.
                burst = await asyncio.gather(
                    *(login(bad, f"guess-{n}", "wrong-password-12") for n in range(8))
                )
                after = await login(good, "admin", ADMIN_PASSWORD)
        return burst, after

    burst, after = asyncio.run(scenario())
    busy = [r for r in burst if r.status_code == 429]
    assert busy, [r.status_code for r in burst]
    assert {r.status_code for r in burst} == {401, 429}
    assert busy[0].headers["retry-after"] == "1"
    assert busy[0].headers["content-type"] == "application/problem+json"
    assert "busy checking other credentials; retry" in busy[0].json()["detail"]
    assert after.status_code == 200  # the burst is over, so the gate is free again


def test_health_answers_while_the_api_pool_is_exhausted(database_url: str) -> None:
    async def scenario() -> tuple[httpx.Response, float]:
        app = _app(database_url)
        async with serving(app), client_at(app, USER) as client:
            pool = app.state.pool
            held: list[object] = []
            all_held, release = asyncio.Event(), asyncio.Event()

            async def hold() -> None:
                async with pool.connection() as conn:
                    held.append(conn)
                    if len(held) == POOL_MAX_SIZE:
                        all_held.set()
                    await release.wait()

            holders = [asyncio.ensure_future(hold()) for _ in range(POOL_MAX_SIZE)]
            async with asyncio.timeout(10):
                await all_held.wait()
            result = await timed(client.get("/healthz"))
            release.set()
            await asyncio.gather(*holders)
        return result

    response, took = asyncio.run(scenario())
    assert response.status_code == 200, response.text
    assert response.json()["database"] == "ok"
    assert took < PROMPT_S < POOL_TIMEOUT_S


def test_failed_logins_throttle_that_username_but_not_others(database_url: str) -> None:
    clock = [1000.0]
    limits = AuthLimits()

    async def scenario() -> None:
        app = _app(database_url, limits)
        app.state.throttle = CredentialThrottle(limits, clock=lambda: clock[0])
        async with serving(app), client_at(app, USER) as client:
            admin = await bearer_session(client, "admin", ADMIN_PASSWORD)
            r = await client.post(
                "/api/v1/users",
                headers=admin,
                json={"username": "vera", "password": "vera-password-long", "role": "viewer"},
            )
            assert r.status_code == 201, r.text

            for _ in range(limits.failures_per_username):
                r = await login(client, "admin", "not-the-password")
                assert r.status_code == 401
                clock[0] += 1
            # Refused even with the right password: a guesser cannot tell a hit from a miss.
            r = await login(client, "admin", ADMIN_PASSWORD)
            assert r.status_code == 429
            assert r.headers["content-type"] == "application/problem+json"
            wait = int(r.headers["retry-after"])
            assert limits.failure_window_s - limits.failures_per_username <= wait
            assert wait <= limits.failure_window_s
            assert "too many failed logins for 'admin'; wait" in r.json()["detail"]

            # Another user, from the same address, is not held up.
            assert (await login(client, "vera", "vera-password-long")).status_code == 200
            # Unknown names are throttled alike, so 429s do not reveal which names exist.
            for _ in range(limits.failures_per_username):
                assert (await login(client, "ghost", "not-the-password")).status_code == 401
            assert (await login(client, "ghost", "not-the-password")).status_code == 429

            clock[0] += wait
            assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 200
            # A success forgives the name's earlier failures.
            assert (await login(client, "admin", "not-the-password")).status_code == 401
            assert (await login(client, "admin", ADMIN_PASSWORD)).status_code == 200

    asyncio.run(scenario())


def test_one_address_with_many_failures_is_throttled_for_logins_and_tokens(
    database_url: str,
) -> None:
    limits = AuthLimits(failures_per_client=3)

    async def scenario() -> None:
        app = _app(database_url, limits)
        async with serving(app), client_at(app, ATTACKER) as bad, client_at(app, USER) as good:
            admin = await bearer_session(good, "admin", ADMIN_PASSWORD)
            r = await good.post("/api/v1/tokens", headers=admin, json={"user_id": 1, "name": "t"})
            token = {"Authorization": f"Bearer {r.json()['token']}"}

            # Spraying: one guess each at many names, then a made-up token.
            assert (await login(bad, "alice", "password-guess")).status_code == 401
            assert (await login(bad, "bob", "password-guess")).status_code == 401
            forged = {"Authorization": "Bearer tlk_1_made-up-secret"}
            assert (await bad.get("/api/v1/auth/me", headers=forged)).status_code == 401
            for attempt in (
                login(bad, "carol", "password-guess"),
                bad.get("/api/v1/auth/me", headers=forged),
            ):
                r = await attempt
                assert r.status_code == 429
                assert "from your address" in r.json()["detail"]
                assert 1 <= int(r.headers["retry-after"]) <= limits.failure_window_s

            assert (await good.get("/api/v1/auth/me", headers=token)).status_code == 200
            assert (await login(good, "admin", ADMIN_PASSWORD)).status_code == 200

    asyncio.run(scenario())


def test_failure_window_slides_and_stays_bounded() -> None:
    clock = [0.0]
    window = FailureWindow(limit=2, window_s=10, max_keys=100, clock=lambda: clock[0])
    window.failed("a")
    assert window.wait_s("a") is None
    clock[0] = 4
    window.failed("a")
    assert window.wait_s("a") == 6  # until the first failure is 10 s old
    clock[0] = 10
    assert window.wait_s("a") is None
    window.failed("a")
    assert window.wait_s("a") == 4  # the second failure, at t=4, now counts as the oldest
    for n in range(1000):
        window.failed(f"name-{n}")
    assert len(window) <= 100
