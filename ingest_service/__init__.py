"""The ingest service: MQTT in, validated and deduplicated into PostgreSQL, served over HTTP.

Stages, in order, each one file: `pipeline/decode` (bytes to events or quarantine),
`pipeline/consumer` (MQTT shared subscription, manual acks), `storage/writer` (binary COPY
through a staging table, dedup on event_id), then `api/` serves what was stored.
"""
