"""User accounts: list, create, change role, disable, reset password (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, StringConstraints

from ingest_service.auth import Argon2Dep, PoolDep, Role, User, requires
from ingest_service.auth import users as user_store
from ingest_service.auth.passwords import MIN_PASSWORD_LENGTH

router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(requires(Role.ADMIN))])

Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            active=user.active,
            created_at=user.created_at,
        )


class UserCreate(BaseModel):
    username: Username
    password: Password
    role: Role


class UserPatch(BaseModel):
    role: Role | None = None
    active: bool | None = None
    password: Password | None = None


@router.get("")
async def list_users(pool: PoolDep) -> list[UserOut]:
    async with pool.connection() as conn:
        return [UserOut.of(u) for u in await user_store.list_users(conn)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, pool: PoolDep, gate: Argon2Dep) -> UserOut:
    password_hash = await user_store.hash_new_password(body.password, gate=gate)
    try:
        async with pool.connection() as conn:
            user = await user_store.insert_user(
                conn, username=body.username, password_hash=password_hash, role=body.role
            )
    except user_store.UsernameTaken as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return UserOut.of(user)


@router.patch("/{user_id}")
async def update_user(user_id: int, body: UserPatch, pool: PoolDep, gate: Argon2Dep) -> UserOut:
    """Change a user's role, active flag or password; takes effect on their next request."""
    password_hash = None
    if body.password is not None:
        password_hash = await user_store.hash_new_password(body.password, gate=gate)
    try:
        async with pool.connection() as conn:
            user = await user_store.update_user(
                conn,
                user_id=user_id,
                role=body.role,
                active=body.active,
                password_hash=password_hash,
            )
    except user_store.UserNotFound as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
    except user_store.LastAdmin as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    return UserOut.of(user)
