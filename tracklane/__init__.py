"""The `tracklane` command: wires the packages together (demo, serve, db, edge, bench).

Composition only: it depends on every other package and none depends on it.
"""
