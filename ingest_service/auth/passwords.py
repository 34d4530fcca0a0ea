"""Argon2id hashing for passwords and API token secrets; nothing else is ever stored."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12

# The library's defaults (RFC 9106 low-memory profile): 64 MiB, 3 passes. Slow on purpose.
_hasher = PasswordHasher()


def hash_secret(secret: str) -> str:
    """An argon2id hash of `secret`, salt and parameters included."""
    return _hasher.hash(secret)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("no user has this password; it only costs time")


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Whether `secret` matches `stored_hash`; with no hash, still spends the same time.

    Verifying against a dummy hash when the user is unknown (or has no password) keeps the
    response time from telling an attacker which usernames exist.
    """
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), secret) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(stored_hash)


async def hash_secret_async(secret: str) -> str:
    """`hash_secret` off the event loop, for tools with a connection of their own.

    The API goes through `limits.Argon2Gate` instead, which bounds how many run at once.
    """
    # argon2 releases the GIL, so a worker thread keeps the event loop answering meanwhile.
    return await asyncio.to_thread(hash_secret, secret)
