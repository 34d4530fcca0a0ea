"""Decode a batch of MQTT messages and store it, so that every message can then be acked.

Three outcomes for each message, never a fourth: its events are stored, or it (or its bad
events) is quarantined with a reason, or, while the database is away, the whole batch is
held and retried. `process` returns only when the batch may be acknowledged, or when the
consumer is stopping (then nothing is acked and the broker redelivers to the session).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from event_contract import decode

from ..orders.matcher import Outgoing, ScanMatcher
from ..storage.writer import BatchWriter, Quarantined, WriteResult
from ..tracking import PositionTracker, open_stale_trackers
from .stats import IngestStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which broker connection delivered it; acks go only to that one


class DatabaseNotReady(psycopg.OperationalError):
    """Reachable, but not usable for writing yet (no schema, no privilege): wait, retry."""


class Stopping(Exception):
    """The consumer is stopping while the database is away: leave the batch unacked."""


def _raise_stopping(_state: RetryCallState) -> None:
    raise Stopping


@dataclass
class _Decoded:
    events: list[tuple[str, str, Any]] = field(default_factory=list)
    rejects: list[Quarantined] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)


def _clean(text: str) -> str:
    return text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL


class Processor:
    """Owns the ingest's database connection; used from one thread."""

    def __init__(
        self,
        database_url: str,
        *,
        max_future_s: int,
        stats: IngestStats,
        stopping: threading.Event,
        matcher: ScanMatcher | None = None,
        tracker: PositionTracker | None = None,
        stale_tracker_min: float | None = None,
    ):
        self.database_url = database_url
        self.matcher = matcher
        self.tracker = tracker
        self.stale_tracker_min = stale_tracker_min  # None: no stale-tracker check
        self._verdicts: list[Outgoing] = []
        self.max_future = timedelta(seconds=max_future_s)
        self.stats = stats
        self.stopping = stopping
        self.write_failing = False  # true while a batch is being retried
        self._writer: BatchWriter | None = None

    def connect(self) -> None:
        self._writer = self._connect()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.conn.close()

    def _connect(self) -> BatchWriter:
        conn = psycopg.connect(self.database_url, autocommit=False, connect_timeout=10)
        try:
            return BatchWriter(conn, self.matcher, self.tracker)
        except psycopg.OperationalError:
            conn.close()
            raise
        except psycopg.Error as err:
            conn.close()
            raise DatabaseNotReady(
                f"database reachable but not ready for ingest ({err}); "
                "has `tracklane db migrate` run against it?"
            ) from err

    # -- decode ---------------------------------------------------------------------------
    def _decode(self, messages: list[Inbound]) -> _Decoded:
        out = _Decoded()
        now = datetime.now(UTC)
        for msg in messages:
            try:
                decoded = decode(msg.topic, msg.payload, now=now, max_future=self.max_future)
            except Exception as err:  # decode promises not to raise; if it does, keep the bytes
                log.exception("ingest: decode failed on a message from %s", msg.topic)
                reason = f"ingest could not decode this message ({type(err).__name__}: {err})"
                out.rejects.append(Quarantined(msg.topic, _clean(reason), msg.payload))
                continue
            topic = decoded.topic
            for event in decoded.events:
                out.received[event.type] += 1
                out.events.append((topic.site, topic.gateway, event))  # type: ignore[union-attr]
            for reject in decoded.rejects:
                log.warning("quarantined from %s: %s", msg.topic, reject.reason)
                out.rejects.append(
                    Quarantined(msg.topic, _clean(reject.reason), reject.raw, reject.event_index)
                )
        return out

    # -- store ----------------------------------------------------------------------------
    def process(self, batch: list[Inbound]) -> bool:
        """Store or quarantine every message of `batch`; False if stopping first."""
        backoff = 0.5
        while True:
            try:
                self._process_once(batch)
                return True
            except Stopping:
                log.warning(
                    "ingest stopping with %d messages unwritten; the broker keeps them "
                    "for this session",
                    len(batch),
                )
                return False
            except Exception:
                # Not an outage (that is retried below) and not the data (that is
                # quarantined): something unforeseen. Keep trying, loudly, never skip.
                self.write_failing = True
                self.stats.add(db_errors=1)
                log.exception(
                    "ingest: unexpected failure on a batch of %d; retrying in %.1fs",
                    len(batch),
                    backoff,
                )
                if self.stopping.wait(backoff):
                    return False
                backoff = min(backoff * 2, 30)

    def _process_once(self, batch: list[Inbound]) -> None:
        decoded = self._decode(batch)
        try:
            result = self._write_with_retry(decoded.events, decoded.rejects)
        except (psycopg.OperationalError, Stopping):
            raise
        except Exception as err:
            # The database refused the data itself: find the message that carries it and
            # quarantine that one alone.
            log.error("ingest: database refused a batch (%s); writing message by message", err)
            result = self._write_each(batch)
        self._verdicts.extend(result.verdicts)
        self.stats.batch_events.observe(len(decoded.events))
        self.stats.add_counts(
            received=decoded.received, stored=result.stored, duplicates=result.duplicates
        )
        self.stats.add(quarantined=result.quarantined, messages=len(batch))
        if result.tracking:
            self.stats.add_tracking(result.tracking)

    def check_stale_trackers(self) -> None:
        """Open stale-tracker exceptions (deduplicated, so every worker may run it). Never
        raises: a failure is logged and the next check tries again."""
        if self.stale_tracker_min is None:
            return
        try:
            if self._writer is None or self._writer.conn.closed:
                self._writer = self._connect()
            conn = self._writer.conn
            with conn.transaction():
                opened = open_stale_trackers(conn, datetime.now(UTC), self.stale_tracker_min)
            self.stats.add_tracking({"stale_trackers_opened": opened})
        except Exception as err:
            log.exception("ingest: the stale-tracker check failed; trying again in a minute")
            if isinstance(err, psycopg.OperationalError) and self._writer is not None:
                self._writer.conn.close()  # the next write reconnects

    def take_verdicts(self) -> list[Outgoing]:
        """The verdicts of the batches committed since the last call."""
        verdicts, self._verdicts = self._verdicts, []
        return verdicts

    def _write_each(self, batch: list[Inbound]) -> WriteResult:
        total = WriteResult()
        for msg in batch:
            one = self._decode([msg])
            try:
                result = self._write_with_retry(one.events, one.rejects)
            except (psycopg.OperationalError, Stopping):
                raise
            except Exception as err:
                detail = getattr(getattr(err, "diag", None), "message_primary", None) or err
                reason = _clean(f"database refused the message: {detail}")
                log.warning("quarantined from %s: %s", msg.topic, reason)
                result = self._write_with_retry([], [Quarantined(msg.topic, reason, msg.payload)])
            total.merge(result)
        return total

    def _write_with_retry(
        self, events: list[tuple[str, str, Any]], rejects: list[Quarantined]
    ) -> WriteResult:
        def before_sleep(state: RetryCallState) -> None:
            self.write_failing = True
            self.stats.add(db_errors=1)
            log.error(
                "ingest: database unavailable (%s); holding %d events, retrying in %.1fs",
                state.outcome.exception() if state.outcome else "?",
                len(events),
                state.next_action.sleep if state.next_action else 0,
            )

        def give_up_when_stopping(state: RetryCallState) -> bool:
            return self.stopping.is_set() and state.attempt_number > 3

        for attempt in Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=give_up_when_stopping,
            before_sleep=before_sleep,
            retry_error_callback=_raise_stopping,
        ):
            with attempt:
                if self._writer is None or self._writer.conn.closed:
                    self._writer = self._connect()
                started = time.perf_counter()
                try:
                    result = self._writer.write(events, rejects)
                except psycopg.OperationalError:
                    self._writer.conn.close()
                    raise
                self.stats.commit_seconds.observe(time.perf_counter() - started)
                self.write_failing = False
                return result
        raise AssertionError("unreachable")
