"""PostgreSQL storage: migrations, the TimescaleDB-or-plain mode, the batch writer, reads."""

from .mode import StorageMode

__all__ = ["StorageMode"]
