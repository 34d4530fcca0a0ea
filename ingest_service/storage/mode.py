"""Which storage mode the database runs in: TimescaleDB features, or plain PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class StorageMode:
    name: Literal["timescaledb", "postgresql"]
    server_version: str
    timescaledb_version: str | None = None
    note: str = ""

    @property
    def timescale(self) -> bool:
        return self.name == "timescaledb"

    def describe(self) -> str:
        if self.timescale:
            return f"TimescaleDB {self.timescaledb_version} on PostgreSQL {self.server_version}"
        return f"plain PostgreSQL {self.server_version}" + (f" ({self.note})" if self.note else "")

    def as_dict(self) -> dict[str, str | None]:
        return {
            "mode": self.name,
            "postgresql": self.server_version,
            "timescaledb": self.timescaledb_version,
            "note": self.note or None,
        }
