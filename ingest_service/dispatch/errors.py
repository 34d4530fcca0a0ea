"""Refusals the dispatch functions raise, each with the HTTP status the API answers with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi import HTTPException


class Refused(Exception):
    """A request that cannot be done as given; the message says what to do instead."""

    status = 422


class NotFound(Refused):
    status = 404


class Conflict(Refused):
    """Clashes with what is stored now (already departed, already resolved...)."""

    status = 409


@contextmanager
def as_http() -> Iterator[None]:
    """Turn a refusal into the API's problem document (status and the message as detail)."""
    try:
        yield
    except Refused as err:
        raise HTTPException(err.status, str(err)) from None


def utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
