"""Geofences: which fences contain which points, and when a vehicle is confirmed in or out.

Pure (shapely only, no I/O). Empty until the geofencing issue; listed here so the package
map in docs/architecture.md matches the tree.
"""
