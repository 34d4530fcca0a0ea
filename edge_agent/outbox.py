"""The durable outbox: every event is in a local SQLite (WAL) file before it counts as read.

Sources append; the publisher peeks batches, publishes them and acks (deletes) them once the
broker's PUBACK is in. Nothing is deleted before that, so a crash costs duplicates (ingest
dedups by event id), never events. Each device's seq counter lives in the same file and is
written in the same transaction as the events that use it, so seq keeps rising across restarts.

Durability: with `sync = "full"` every append is fsynced before it returns; a power loss
costs nothing that was appended. With `sync = "normal"` (the default) commits reach the
operating system at once, so a SIGKILL of the agent costs nothing, and the WAL is fsynced by a
checkpoint at least every `fsync_window_ms`: a power loss costs at most that window of events.

Overflow is counted (`dropped`, `refused`) in the same file, in the transaction that drops
or refuses: a gateway that lost events and restarted still reports it. Batches the broker
refuses for good (edge_agent/publish_policy.py) move to the `quarantine` table: out of the
queue, still on disk and counted, until `requeue_quarantined` after the cause is fixed.

Only the thread that opened an outbox may use it (the agent's event loop).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from event_contract import KIND_OF_TYPE, Event

from .outbox_sql import SCHEMA, Transaction, chunks

Overflow = Literal["drop_oldest", "refuse_new"]
SyncMode = Literal["normal", "full"]


@dataclass(frozen=True, slots=True)
class Stored:
    """One event as the outbox holds it: `body` is the event's contract JSON."""

    rowid: int
    kind: str
    device: str
    seq: int
    appended_at: float
    body: bytes


class Outbox:
    """`append(events)`, `peek_batch(kind, n)`, `ack(rowids)`; `close()` when done.

    A peeked row is not peeked again in this session until it is acked (deleted) or
    `release`d; after a reopen every row still here is peeked again, oldest first.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        max_events: int | None = 1_000_000,
        max_bytes: int | None = None,
        overflow: Overflow = "drop_oldest",
        sync: SyncMode = "normal",
        fsync_window_ms: int = 1000,
    ) -> None:
        self.path = str(path)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.overflow: Overflow = overflow
        self.sync: SyncMode = sync
        self.fsync_window_s = fsync_window_ms / 1000
        # `overflowed` is the alert: it stays True until read by the agent.
        self.overflowed = False
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each append or ack is one BEGIN..COMMIT.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.executescript(SCHEMA)
        self._seq: dict[str, int] = dict(self._db.execute("SELECT device, next_seq FROM seqs"))
        # Counted over the file's life, not since open: they survive a restart.
        saved = dict(self._db.execute("SELECT name, value FROM counters"))
        self.dropped: int = saved.get("dropped", 0)
        self.refused: int = saved.get("refused", 0)
        self._quarantined: int = self._db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        self._dirty: set[str] = set()
        self._cursor: dict[str, int] = {}  # per kind: highest rowid peeked in this session
        self._peeked: set[int] = set()
        self._released: dict[str, list[int]] = {}
        self._depth, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM events"
        ).fetchone()
        self._last_sync = time.monotonic()
        self._unsynced = False
        # Rows left by an earlier run are overdue: send them at once, not after a linger.
        last = self._db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        self._backlog_upto: int = last[0]

    def close(self) -> None:
        """Checkpoint and close; rows not acked stay for the next open."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_seq(self, device: str) -> int:
        """The device's next seq; persisted with the next append, so never reused after it."""
        seq = self._seq.get(device, 0)
        self._seq[device] = seq + 1
        self._dirty.add(device)
        return seq

    def depth(self) -> int:
        return self._depth

    def size_bytes(self) -> int:
        return self._bytes

    def counters(self) -> dict[str, int]:
        return {
            "outbox_depth": self._depth,
            "outbox_bytes": self._bytes,
            "outbox_dropped": self.dropped,
            "outbox_refused": self.refused,
            "outbox_quarantined": self._quarantined,
        }

    def quarantined(self) -> int:
        """Events the broker refused for good, kept aside (see the module docstring)."""
        return self._quarantined

    def append(self, events: Iterable[Event]) -> int:
        """Store events durably (see the module docstring); returns how many were kept."""
        now = time.time()
        rows = [
            (KIND_OF_TYPE[e.type], e.device, e.seq, now, e.model_dump_json(exclude_none=True))
            for e in events
        ]
        rows = [(k, d, s, t, b.encode()) for k, d, s, t, b in rows]
        kept = rows
        with self._transaction():
            if self.overflow == "refuse_new":
                kept, depth, size = [], self._depth, self._bytes
                for row in rows:
                    if self._fits(depth + 1, size + len(row[4])):
                        kept.append(row)
                        depth, size = depth + 1, size + len(row[4])
                    else:
                        self.refused += 1
                        self.overflowed = True
            else:
                self._make_room(len(rows), sum(len(r[4]) for r in rows))
            self._db.executemany(
                "INSERT INTO events (kind, device, seq, appended_at, body) VALUES (?, ?, ?, ?, ?)",
                kept,
            )
            self._depth += len(kept)
            self._bytes += sum(len(r[4]) for r in kept)
            if self.overflowed:
                self._save_counters()
            if self._dirty:
                self._db.executemany(
                    "INSERT OR REPLACE INTO seqs (device, next_seq) VALUES (?, ?)",
                    [(d, self._seq[d]) for d in self._dirty],
                )
                self._dirty.clear()
        self._maybe_sync()
        return len(kept)

    def ready(self, kind: str, limit: int) -> tuple[int, float | None]:
        """(unpeeked rows of `kind`, at most `limit`; when the oldest of them was appended)."""
        released = self._released.get(kind)
        if released:
            return min(limit, len(released)), 0.0
        after = self._cursor.get(kind, 0)
        rows = self._db.execute(
            "SELECT id, appended_at FROM events WHERE kind = ? AND id > ? ORDER BY id LIMIT ?",
            (kind, after, limit),
        ).fetchall()
        if not rows:
            return 0, None
        first, appended_at = rows[0]
        return len(rows), (0.0 if first <= self._backlog_upto else appended_at)

    def peek_batch(self, kind: str, max_events: int) -> list[Stored]:
        """The oldest rows of `kind` not yet peeked in this session, in append order."""
        released = self._released.get(kind)
        if released:
            ids, self._released[kind] = released[:max_events], released[max_events:]
            marks = ",".join("?" * len(ids))
            query = f"SELECT * FROM events WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
            rows = self._db.execute(query, ids).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM events WHERE kind = ? AND id > ? ORDER BY id LIMIT ?",
                (kind, self._cursor.get(kind, 0), max_events),
            ).fetchall()
            if rows:
                self._cursor[kind] = rows[-1][0]
        batch = [Stored(*row) for row in rows]
        self._peeked.update(s.rowid for s in batch)
        return batch

    def release(self, rowids: Sequence[int], kind: str) -> None:
        """Give peeked rows back (not delivered); they are peeked again before newer ones."""
        ids = sorted(set(rowids) & self._peeked)
        self._peeked.difference_update(ids)
        self._released[kind] = sorted(self._released.get(kind, []) + ids)

    def ack(self, rowids: Sequence[int]) -> None:
        """Delete delivered rows (call only after the broker's PUBACK)."""
        self._take_out(rowids, quarantine=None)

    def quarantine(self, rowids: Sequence[int], *, reason: int) -> None:
        """Move peeked rows the broker refused for good (PUBACK `reason`) out of the queue,
        keeping them; at most `max_events` are kept, the oldest dropped first (counted)."""
        self._take_out(rowids, quarantine=(reason, time.time()))

    def _take_out(self, rowids: Sequence[int], *, quarantine: tuple[int, float] | None) -> None:
        if not rowids:
            return
        self._peeked.difference_update(rowids)
        with self._transaction():
            for chunk in chunks(list(rowids), 500):
                where = f"WHERE id IN ({','.join('?' * len(chunk))})"
                count, size = self._db.execute(
                    f"SELECT count(*), coalesce(sum(length(body)), 0) FROM events {where}",  # noqa: S608
                    chunk,
                ).fetchone()
                if quarantine is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO quarantine SELECT id, kind, device, seq,"  # noqa: S608
                        f" appended_at, body, ?, ? FROM events {where}",
                        [*quarantine, *chunk],
                    )
                    self._quarantined += count
                self._db.execute(f"DELETE FROM events {where}", chunk)  # noqa: S608
                self._depth -= count
                self._bytes -= size
            excess = self._quarantined - (self.max_events or self._quarantined)
            if excess > 0:
                self._db.execute(
                    "DELETE FROM quarantine WHERE id IN "
                    "(SELECT id FROM quarantine ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._quarantined -= excess
                self.dropped += excess
                self._save_counters()
        self._maybe_sync()

    def requeue_quarantined(self) -> int:
        """Put quarantined events back in the queue (after fixing the cause); how many."""
        with self._transaction():
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM quarantine"
            ).fetchone()
            # New ids: they go to the back of the queue, behind what is waiting now.
            self._db.execute(
                "INSERT INTO events (kind, device, seq, appended_at, body)"
                " SELECT kind, device, seq, appended_at, body FROM quarantine ORDER BY id"
            )
            self._db.execute("DELETE FROM quarantine")
        self._depth += count
        self._bytes += size
        self._quarantined = 0
        self._maybe_sync()
        return count

    def _save_counters(self) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
            [("dropped", self.dropped), ("refused", self.refused)],
        )

    def _fits(self, depth: int, size: int) -> bool:
        if self.max_events is not None and depth > self.max_events:
            return False
        return self.max_bytes is None or size <= self.max_bytes

    def _make_room(self, events: int, size: int) -> None:
        while self._depth and not self._fits(self._depth + events, self._bytes + size):
            # Oldest first: the newest readings are the ones worth keeping. Status events go
            # last: they are few, and one of them is the alert that says data was dropped.
            excess = 1
            if self.max_events is not None:
                excess = max(excess, self._depth + events - self.max_events)
            victims = self._db.execute(
                "SELECT id, length(body) FROM events WHERE kind != 'status' ORDER BY id LIMIT ?",
                (excess,),
            ).fetchall()
            if not victims:
                victims = self._db.execute(
                    "SELECT id, length(body) FROM events ORDER BY id LIMIT ?", (excess,)
                ).fetchall()
            ids = [v[0] for v in victims]
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)  # noqa: S608
            self._peeked.difference_update(ids)
            gone = set(ids)
            for kind, released in self._released.items():
                self._released[kind] = [i for i in released if i not in gone]
            self._depth -= len(ids)
            self._bytes -= sum(v[1] for v in victims)
            self.dropped += len(ids)
            self.overflowed = True

    def _transaction(self) -> Transaction:
        return Transaction(self._db)

    def sync_due_in(self) -> float | None:
        """Seconds until unsynced commits must be fsynced (`sync_if_due`); None if none are."""
        if not self._unsynced:
            return None
        return max(0.0, self._last_sync + self.fsync_window_s - time.monotonic())

    def sync_if_due(self) -> None:
        now = time.monotonic()
        if self._unsynced and now - self._last_sync >= self.fsync_window_s:
            # A checkpoint fsyncs the WAL: everything committed so far survives a power loss.
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._last_sync = now
            self._unsynced = False

    def _maybe_sync(self) -> None:
        if self.sync == "full":
            return
        if not self._unsynced:
            self._unsynced = True
            self._last_sync = min(self._last_sync, time.monotonic())
        self.sync_if_due()
