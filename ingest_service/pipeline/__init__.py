"""Ingest stages: receive (consumer) → decode (event_contract) → store (storage.writer) → ack."""
