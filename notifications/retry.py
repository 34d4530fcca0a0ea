"""When to try a failed notification again: capped exponential backoff with jitter.

Pure: the caller supplies the random draw (`jitter` in [0, 1)), so the schedule is a
function and property-testable. Attempt n (1-based: the attempt that just failed) waits
`min(cap, base * factor**(n-1))` shortened by up to `jitter_fraction` of itself; after
`max_attempts` failures the notification is dead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 30.0
    factor: float = 2.0
    cap_s: float = 6 * 3600.0
    jitter_fraction: float = 0.25
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.factor >= 1 and self.cap_s >= self.base_s):
            raise ValueError("need base_s > 0, factor >= 1 and cap_s >= base_s")
        if not 0 <= self.jitter_fraction < 1:
            raise ValueError("jitter_fraction must be in [0, 1)")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def envelope(self, attempt: int) -> float:
        """The delay after failed attempt `attempt` before jitter: non-decreasing, capped."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        # Compare exponents rather than compute factor**(attempt-1): it overflows for big n.
        delay = self.base_s
        for _ in range(attempt - 1):
            delay *= self.factor
            if delay >= self.cap_s:
                return self.cap_s
        return min(delay, self.cap_s)

    def is_dead(self, attempts: int) -> bool:
        """After this many failed attempts, give up."""
        return attempts >= self.max_attempts


def retry_delay(attempt: int, jitter: float, policy: RetryPolicy | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based), given a draw in [0, 1)."""
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    policy = policy or RetryPolicy()
    envelope = policy.envelope(attempt)
    return envelope * (1 - policy.jitter_fraction * jitter)
