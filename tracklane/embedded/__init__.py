"""Services started for one machine when no URL is configured: PostgreSQL and Mosquitto."""

from .broker import EmbeddedBroker, MosquittoNotInstalled
from .postgres import EmbeddedPostgres

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "MosquittoNotInstalled"]
