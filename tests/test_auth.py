"""Logging in, API tokens and user changes, against a real PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from ingest_service.api import create_app
from ingest_service.auth import Role, ensure_admin
from ingest_service.auth.tokens import VerifiedTokenCache, issue_session
from ingest_service.auth.users import User
from ingest_service.settings import ConfigError, Settings
from ingest_service.storage import StorageMode

SECRET = "test-only-session-key-0123456789abcdef"
ADMIN_PASSWORD = "admin-password-for-tests"
MODE = StorageMode("postgresql", "test")


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password=ADMIN_PASSWORD)
    app = create_app(
        settings=Settings(secret_key=SECRET, _env_file=None),
        database_url=database_url,
        storage_mode=MODE,
        registry=CollectorRegistry(),
    )
    with TestClient(app) as c:  # runs the lifespan, which opens the pool
        yield c


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_user(client: TestClient, admin: dict[str, str], name: str, role: str) -> int:
    r = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": name, "password": f"{name}-password-long", "role": role},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_login_gives_a_bearer_session_that_names_the_user(client: TestClient) -> None:
    before = datetime.now(UTC)
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["role"] == "admin"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=11.9) < expires - before < timedelta(hours=12.1)  # session_hours
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["role"] == "admin"


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope" * 4})
    unknown = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope" * 4})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong username or password"
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_passwords_are_stored_only_as_argon2(client: TestClient, database_url: str) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    make_user(client, admin, "dora", "dock")
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE username = 'dora'"
        ).fetchone()
    assert stored.startswith("$argon2id$")
    assert "dora-password-long" not in stored
    login(client, "dora", "dora-password-long")


def test_user_creation_checks_password_length_and_unique_names(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    short = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "sam", "password": "short-pw", "role": "dock"},
    )
    assert short.status_code == 422
    assert "password" in short.json()["detail"]
    assert "short-pw" not in short.text  # a rejected password is not echoed back
    make_user(client, admin, "sam", "dock")
    again = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "sam", "password": "another-long-password", "role": "viewer"},
    )
    assert again.status_code == 409
    assert "'sam' is taken" in again.json()["detail"]


def test_api_token_works_until_revoked(client: TestClient, database_url: str) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    scraper = make_user(client, admin, "prometheus", "viewer")
    r = client.post("/api/v1/tokens", headers=admin, json={"user_id": scraper, "name": "scrape"})
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert re.fullmatch(rf"tlk_{created['id']}_[A-Za-z0-9_-]{{43}}", token)  # 256-bit secret
    secret = token.split("_", 2)[2]

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT * FROM api_tokens WHERE id = %s", (created["id"],)).fetchone()
    assert row is not None
    assert any(str(v).startswith("$argon2id$") for v in row)
    assert not any(secret in str(v) for v in row)  # the secret itself is kept nowhere

    assert client.get("/metrics", headers=bearer(token)).status_code == 200
    assert client.get("/metrics", headers=bearer(token)).status_code == 200  # cached path
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 403  # a viewer

    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert [t["name"] for t in listed] == ["scrape"]
    assert "token" not in listed[0]
    assert secret not in client.get("/api/v1/tokens", headers=admin).text
    assert listed[0]["last_used_at"] is not None

    assert client.delete(f"/api/v1/tokens/{created['id']}", headers=admin).status_code == 204
    # Refused at once, though the token was verified (and cached) a moment ago.
    refused = client.get("/metrics", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert client.delete("/api/v1/tokens/99999", headers=admin).status_code == 404


def test_forged_or_malformed_api_tokens_are_refused(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    r = client.post("/api/v1/tokens", headers=admin, json={"user_id": 1, "name": "ci"})
    token = r.json()["token"]
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    token_id = r.json()["id"]
    for forged in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character of the secret off
        f"tlk_{token_id + 1}_{token.split('_', 2)[2]}",  # right secret, other id
        "tlk_notanumber_x",
        "tlk_",
    ):
        refused = client.get("/api/v1/auth/me", headers=bearer(forged))
        assert refused.status_code == 401, forged
        assert "API token" in refused.json()["detail"]


def test_expired_api_token_is_refused(client: TestClient, database_url: str) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = client.post(
        "/api/v1/tokens", headers=admin, json={"user_id": 1, "name": "x", "expires_at": past}
    )
    assert r.status_code == 422
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = client.post(
        "/api/v1/tokens", headers=admin, json={"user_id": 1, "name": "x", "expires_at": soon}
    )
    token = r.json()["token"]
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    refused = client.get("/api/v1/auth/me", headers=bearer(token))
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


def test_disabled_user_is_refused_at_once(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    uid = make_user(client, admin, "dana", "dispatcher")
    session = login(client, "dana", "dana-password-long")
    token = client.post("/api/v1/tokens", headers=admin, json={"user_id": uid, "name": "t"})
    api = bearer(token.json()["token"])
    assert client.get("/api/v1/scans", headers=session).status_code == 200
    assert client.get("/api/v1/scans", headers=api).status_code == 200

    assert client.patch(f"/api/v1/users/{uid}", headers=admin, json={"active": False}).is_success
    for headers in (session, api):
        refused = client.get("/api/v1/scans", headers=headers)
        assert refused.status_code == 401
        assert "'dana' is disabled" in refused.json()["detail"]
    r = client.post(
        "/api/v1/auth/login", json={"username": "dana", "password": "dana-password-long"}
    )
    assert r.status_code == 401

    assert client.patch(f"/api/v1/users/{uid}", headers=admin, json={"active": True}).is_success
    assert client.get("/api/v1/scans", headers=session).status_code == 200


def test_role_change_takes_effect_on_the_next_request(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    uid = make_user(client, admin, "dave", "dispatcher")
    session = login(client, "dave", "dave-password-long")
    assert client.get("/api/v1/quarantine", headers=session).status_code == 200
    client.patch(f"/api/v1/users/{uid}", headers=admin, json={"role": "viewer"})
    refused = client.get("/api/v1/quarantine", headers=session)
    assert refused.status_code == 403
    assert "'dave' is viewer" in refused.json()["detail"]
    assert client.get("/api/v1/positions", headers=session).status_code == 200


def test_password_change_ends_old_sessions(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    uid = make_user(client, admin, "vic", "viewer")
    old = login(client, "vic", "vic-password-long")
    r = client.patch(
        f"/api/v1/users/{uid}", headers=admin, json={"password": "a-new-long-password"}
    )
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    new = login(client, "vic", "a-new-long-password")
    assert client.get("/api/v1/auth/me", headers=new).status_code == 200


def test_the_last_admin_cannot_lock_everyone_out(client: TestClient) -> None:
    admin = login(client, "admin", ADMIN_PASSWORD)
    for change in ({"active": False}, {"role": "viewer"}):
        r = client.patch("/api/v1/users/1", headers=admin, json=change)
        assert r.status_code == 409
        assert "last active admin" in r.json()["detail"]
    assert client.get("/api/v1/users", headers=admin).status_code == 200
    second = make_user(client, admin, "root2", "admin")
    assert client.patch("/api/v1/users/1", headers=admin, json={"role": "viewer"}).is_success
    assert client.get("/api/v1/users", headers=admin).status_code == 403
    assert second > 1


def test_session_with_wrong_signature_or_expired_is_refused(client: TestClient) -> None:
    user = User(
        id=1,
        username="admin",
        role=Role.ADMIN,
        active=True,
        created_at=datetime.now(UTC),
        password_stamp="",
    )

    forged, _ = issue_session(user=user, secret_key="another-key-of-enough-length-000", hours=1)
    r = client.get("/api/v1/auth/me", headers=bearer(forged))
    assert r.status_code == 401
    assert "not valid" in r.json()["detail"]

    long_ago = datetime.now(UTC) - timedelta(hours=13)
    expired, _ = issue_session(user=user, secret_key=SECRET, hours=12, now=long_ago)
    r = client.get("/api/v1/auth/me", headers=bearer(expired))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]

    unsigned = jwt.encode({"sub": "1", "iss": "tracklane"}, key=None, algorithm="none")
    assert client.get("/api/v1/auth/me", headers=bearer(unsigned)).status_code == 401
    assert (
        client.get("/api/v1/auth/me", headers={"Authorization": "Basic YWRtaW46eA=="}).status_code
        == 401
    )


def test_ensure_admin_creates_once(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert ensure_admin(conn, username="boss", password="boss-password-long") is True
        assert ensure_admin(conn, username="boss", password="different-password") is False
        rows = conn.execute(
            "SELECT role, password_hash FROM users WHERE username = 'boss'"
        ).fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "admin"
    assert rows[0][1].startswith("$argon2id$")


def test_create_app_without_secret_key_says_what_to_set(database_url: str) -> None:
    with pytest.raises(ConfigError, match="TRACKLANE_SECRET_KEY"):
        create_app(settings=Settings(_env_file=None), database_url=database_url, storage_mode=MODE)


def test_token_cache_expires_and_is_bound_to_the_stored_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("ingest_service.auth.tokens.time.monotonic", lambda: clock[0])
    cache = VerifiedTokenCache(ttl_s=60, max_entries=2)
    cache.remember("tlk_1_a", "$hash1")
    assert cache.matches("tlk_1_a", "$hash1")
    assert not cache.matches("tlk_1_a", "$hash-of-a-replaced-row")
    assert not cache.matches("tlk_1_b", "$hash1")
    clock[0] += 61
    assert not cache.matches("tlk_1_a", "$hash1")
    for n in range(5):  # bounded: never more than max_entries
        cache.remember(f"tlk_{n}_x", "$h")
    assert len(cache._entries) == 2
