"""Geofences in PostgreSQL: fences, planned routes, trip stops and proof of delivery.

The shapes and their rules are the pure `geofence` package; this package stores and reads
them for the API. Moving orders from GPS fixes is the ingest pipeline's job, not this one's.
"""
