"""Logging in, who am I, and API tokens for machines (Prometheus, integrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from ingest_service.auth import (
    ANY_ROLE,
    Argon2Dep,
    CurrentUser,
    PoolDep,
    Role,
    SettingsDep,
    ThrottleDep,
    client_address,
    requires,
)
from ingest_service.auth import tokens as token_store
from ingest_service.auth import users as user_store

from .users import UserOut

router = APIRouter(tags=["auth"])

_BAD_LOGIN = "wrong username or password"


class LoginRequest(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=128)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    expires_at: datetime
    role: Role


class TokenCreate(BaseModel):
    user_id: int = Field(description="the user the token acts as; it gets that user's role")
    name: Annotated[str, Field(min_length=1, max_length=128, examples=["prometheus"])]
    expires_at: AwareDatetime | None = Field(None, description="null: valid until revoked")


class TokenOut(BaseModel):
    id: int
    name: str
    user_id: int
    username: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="to within about a minute")
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; store it now, it cannot be read again")


_TOO_MANY = {
    status.HTTP_429_TOO_MANY_REQUESTS: {
        "description": "too many failed attempts, or the server is busy checking credentials;"
        " retry after the Retry-After header's seconds",
    }
}


@router.post("/auth/login", responses=_TOO_MANY)
async def login(
    body: LoginRequest,
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    gate: Argon2Dep,
    throttle: ThrottleDep,
) -> LoginResponse:
    """Exchange a username and password for a session token."""
    client = client_address(request)
    # Checked before any work, and even for the right password: a guesser must not be able
    # to tell a hit from a throttled miss.
    throttle.check(client=client, username=body.username)
    user = await user_store.authenticate(
        pool, username=body.username, password=body.password, gate=gate
    )
    if user is None:
        throttle.failed(client=client, username=body.username)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, _BAD_LOGIN, headers={"WWW-Authenticate": "Bearer"}
        )
    throttle.succeeded(username=body.username)
    if not user.active:
        # Only someone who knows the password learns this, and it tells them whom to ask.
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"user {user.username!r} is disabled; ask an admin"
        )
    assert settings.secret_key is not None  # create_app refuses to start without one
    token, expires_at = token_store.issue_session(
        user=user, secret_key=settings.secret_key.get_secret_value(), hours=settings.session_hours
    )
    return LoginResponse(access_token=token, expires_at=expires_at, role=user.role)


@router.get("/auth/me", dependencies=[Depends(requires(*ANY_ROLE))])
async def me(user: CurrentUser) -> UserOut:
    """The user the request's token belongs to."""
    return UserOut.of(user)


@router.post(
    "/tokens", status_code=status.HTTP_201_CREATED, dependencies=[Depends(requires(Role.ADMIN))]
)
async def create_token(body: TokenCreate, pool: PoolDep, gate: Argon2Dep) -> TokenCreated:
    """Create an API token for a user; the response is the only time the secret is shown."""
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "expires_at is in the past; pick a later time"
        )
    secret = await token_store.new_token_secret(gate=gate)  # before taking a connection
    async with pool.connection() as conn:
        target = await user_store.get_user(conn, user_id=body.user_id)
        if target is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user with id {body.user_id}")
        if not target.active:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"user {target.username!r} is disabled; enable it before giving it a token",
            )
        info, token = await token_store.create_api_token(
            conn, user_id=body.user_id, name=body.name, expires_at=body.expires_at, secret=secret
        )
    out = TokenOut.model_validate(info, from_attributes=True)
    return TokenCreated(**out.model_dump(), token=token)


@router.get("/tokens", dependencies=[Depends(requires(Role.ADMIN))])
async def list_tokens(pool: PoolDep) -> list[TokenOut]:
    """Every API token, revoked ones included; secrets are never shown again."""
    async with pool.connection() as conn:
        infos = await token_store.list_api_tokens(conn)
    return [TokenOut.model_validate(i, from_attributes=True) for i in infos]


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(requires(Role.ADMIN))],
)
async def revoke_token(token_id: int, pool: PoolDep) -> None:
    """Revoke an API token; requests using it are refused from now on."""
    async with pool.connection() as conn:
        info = await token_store.revoke_api_token(conn, token_id=token_id)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API token with id {token_id}")
