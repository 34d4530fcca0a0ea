"""The HTTP API over what ingest stored: `create_app` builds it, one router per domain."""

from .app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
