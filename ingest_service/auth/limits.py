"""Limits on checking credentials, so anonymous traffic cannot crowd out real users.

argon2 is slow on purpose (about 0.2 s of CPU and 64 MiB per check), which makes it a cheap
way to load a server: every made-up token or password costs us one check. Two things bound it:

* `Argon2Gate` runs every hash and verification on a few threads of its own, about one per
  core. A caller that cannot get one within a short wait is told to come back (HTTP 429 with
  Retry-After) instead of queueing without bound, and no database connection is held meanwhile.
* `CredentialThrottle` counts recent failures per username and per client address and refuses
  further attempts from either until old failures leave the window, which slows down password
  guessing and keeps one noisy client from using up the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from .passwords import hash_secret, verify_secret

T = TypeVar("T")


def _default_slots() -> int:
    # One check per core keeps latency at one argon2 run; two at least, so one slow
    # verification cannot hold up every login on a single-core box.
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """How much credential checking the API does at once, and how many failures it forgives."""

    argon2_slots: int = field(default_factory=_default_slots)
    # Long enough to ride out a short burst (two or three checks per slot), short enough that
    # a flood is answered with 429 at once rather than piling up waiting requests.
    argon2_wait_s: float = 0.5
    # Failed logins per username within the window: a person mistyping gets several tries,
    # a guesser gets 5 a minute.
    failures_per_username: int = 5
    # Failed logins and API tokens per client address: higher, since an office behind one
    # NAT address shares it, but low enough that one client cannot keep the gate busy.
    failures_per_client: int = 30
    failure_window_s: float = 60.0
    # Bounds memory when someone tries many different names or addresses.
    max_tracked_keys: int = 10_000


class TooManyRequests(Exception):
    """The caller must wait before trying again; the message says why and for how long."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


def _give_back(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
    # A closed loop raises RuntimeError; nobody is left waiting for the slot then.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(slots.release)


class Argon2Gate:
    """Runs argon2 hashes and verifications on `slots` threads, refusing callers who would wait.

    Create it inside the running app (the lifespan) and `close` it when the app stops.
    """

    def __init__(self, *, slots: int, wait_s: float) -> None:
        if slots < 1:
            raise ValueError(f"argon2_slots must be at least 1, not {slots}")
        self.slots = slots
        self.wait_s = wait_s
        self._free = asyncio.Semaphore(slots)
        self._threads = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="argon2")

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        try:
            async with asyncio.timeout(self.wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise TooManyRequests(
                "the server is busy checking other credentials; retry in a second"
                " (see the Retry-After header)",
                retry_after_s=1,
            ) from None
        loop = asyncio.get_running_loop()
        try:
            work: Future[T] = self._threads.submit(fn, *args)
        except BaseException:
            self._free.release()
            raise
        # The slot comes back when the thread finishes, not when the caller stops waiting: a
        # client that hangs up mid-check must not let another check start on a busy core.
        work.add_done_callback(lambda _: _give_back(loop, self._free))
        return await asyncio.wrap_future(work)

    async def hash(self, secret: str) -> str:
        """An argon2id hash of `secret`; raises TooManyRequests when every slot stays busy."""
        return await self._run(hash_secret, secret)

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """`verify_secret` on a gate thread; raises TooManyRequests when every slot stays busy."""
        return await self._run(verify_secret, stored_hash, secret)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class FailureWindow:
    """Recent failures per key (a username, a client address), over a sliding window."""

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        # Only the newest `limit` failures matter: the oldest of them says when the key is free.
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        times = self._failures.get(key)
        if times is None or len(times) < self.limit:
            return None
        wait = times[0] + self.window_s - self._clock()
        if wait <= 0:
            return None
        return wait

    def failed(self, key: str) -> None:
        times = self._failures.get(key)
        if times is None:
            self._make_room()
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(self._clock())

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _make_room(self) -> None:
        if len(self._failures) < self.max_keys:
            return
        since = self._clock() - self.window_s
        self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > since}
        # Still full of fresh keys: drop the oldest tenth, so this does not run on every call.
        excess = len(self._failures) - self.max_keys * 9 // 10
        for key in list(self._failures)[: max(0, excess)]:
            del self._failures[key]


class CredentialThrottle:
    """Refuses credential checks for a username or client address with too many recent failures."""

    def __init__(self, limits: AuthLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.by_username, self.by_client = (
            FailureWindow(
                limit=limit,
                window_s=limits.failure_window_s,
                max_keys=limits.max_tracked_keys,
                clock=clock,
            )
            for limit in (limits.failures_per_username, limits.failures_per_client)
        )

    def check(self, *, client: str, username: str | None = None) -> None:
        """Raise TooManyRequests if `client` (or `username`) must wait before another try."""
        if (wait := self.by_client.wait_s(client)) is not None:
            raise TooManyRequests(
                f"too many failed sign-in attempts from your address; wait {math.ceil(wait)} s"
                " and try again",
                retry_after_s=wait,
            )
        if username is not None and (wait := self.by_username.wait_s(username)) is not None:
            raise TooManyRequests(
                f"too many failed logins for {username!r}; wait {math.ceil(wait)} s and try"
                " again, or ask an admin to reset the password",
                retry_after_s=wait,
            )

    def failed(self, *, client: str, username: str | None = None) -> None:
        self.by_client.failed(client)
        if username is not None:
            self.by_username.failed(username)

    def succeeded(self, *, username: str) -> None:
        # Only the username is forgiven: a client address that also tried other names keeps
        # its count, so one known password does not reset a spraying client.
        self.by_username.forget(username)
